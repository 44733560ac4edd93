/* shuffle.c: keyed map-reduce: pair tables with combiners, hash partitions, per-key reduce and sorted runs. */
#define _GNU_SOURCE /* qsort_r */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- Pair tables ----------------------------------------------------- */

/* An entry in a table's arena; key then value follow, each 8-byte aligned
 * so a combiner may treat the value as its struct. */
typedef struct entry_header {
    uint64_t hash;
    uint32_t key_size, value_size;
} entry_header;

static size_t round8(size_t size)
{
    return (size + 7) & ~(size_t)7;
}

static size_t entry_size(uint32_t key_size, uint32_t value_size)
{
    return sizeof(entry_header) + round8(key_size) + round8(value_size);
}

static unsigned char *entry_key(unsigned char *entry)
{
    return entry + sizeof(entry_header);
}

static unsigned char *entry_value(unsigned char *entry)
{
    return entry + sizeof(entry_header) + round8(((entry_header *)entry)->key_size);
}

/* A slot holds an entry's arena offset + 1 in its low bits and the top
 * bits of the entry's hash above them, so a probe passes over other keys
 * without loading their entries from memory. */
#define SLOT_OFFSET_BITS 40
#define SLOT_OFFSET_MASK (((uint64_t)1 << SLOT_OFFSET_BITS) - 1)

static uint64_t make_slot(uint64_t offset, uint64_t hash)
{
    return (hash & ~SLOT_OFFSET_MASK) | (offset + 1);
}

static unsigned char *slot_entry(const hpool__pair_table *table, uint64_t slot)
{
    return table->arena.data + (slot & SLOT_OFFSET_MASK) - 1;
}

static bool slot_may_hold(uint64_t slot, uint64_t hash)
{
    return ((slot ^ hash) & ~SLOT_OFFSET_MASK) == 0;
}

/* The same bytes hash the same on every rank: partitions depend on it. */
static uint64_t hash_key(const void *key, size_t size)
{
    const unsigned char *bytes = key;
    uint64_t hash = 0x9e3779b97f4a7c15u ^ (size * 0xff51afd7ed558ccdu);
    size_t i = 0;
    for (; i + 8 <= size; i += 8) {
        uint64_t word;
        memcpy(&word, bytes + i, 8);
        hash = (hash ^ word) * 0xbf58476d1ce4e5b9u;
        hash ^= hash >> 31;
    }
    /* The last 1 to 7 bytes without a variable-length copy (most keys are
     * short words): two overlapping 4-byte reads, or the bytes one by one. */
    size_t left = size - i;
    uint64_t tail = 0;
    if (left >= 4) {
        uint32_t low, high;
        memcpy(&low, bytes + i, 4);
        memcpy(&high, bytes + i + left - 4, 4);
        tail = (uint64_t)high << 32 | low;
    } else if (left > 0) {
        tail = (uint64_t)bytes[i] << 16 | (uint64_t)bytes[i + left / 2] << 8 | bytes[i + left - 1];
    }
    hash = (hash ^ tail) * 0x94d049bb133111ebu;
    hash ^= hash >> 29;
    hash *= 0xbf58476d1ce4e5b9u;
    return hash ^ (hash >> 32);
}

void hpool__pair_table_init(hpool__pair_table *table, const hpool_keyed_reducer *spec)
{
    memset(table, 0, sizeof *table);
    table->spec = spec;
    table->combining = spec != NULL && spec->combine != NULL;
}

void hpool__pair_table_release(hpool__pair_table *table)
{
    hpool__buffer_release(&table->arena);
    free(table->slots);
    table->slots = NULL;
    table->capacity = table->count = 0;
}

static int grow_slots(hpool__pair_table *table)
{
    size_t capacity = table->capacity ? 2 * table->capacity : 1024;
    /* Written before read, not calloc'd: a large calloc maps the shared
     * zero page on the first probe, and the first insert then faults again
     * to copy it and flushes the TLB of every thread of the process. */
    uint64_t *slots = malloc(capacity * sizeof *slots);
    if (slots == NULL)
        return HPOOL_ENOMEM;
    memset(slots, 0, capacity * sizeof *slots);
    for (size_t i = 0; i < table->capacity; i++) {
        if (table->slots[i] == 0)
            continue;
        const entry_header *entry = (const entry_header *)slot_entry(table, table->slots[i]);
        size_t at = entry->hash & (capacity - 1);
        while (slots[at] != 0)
            at = (at + 1) & (capacity - 1);
        slots[at] = table->slots[i];
    }
    free(table->slots);
    table->slots = slots;
    table->capacity = capacity;
    return 0;
}

static int append_entry(hpool__pair_table *table, uint64_t hash, const void *key, uint32_t key_size,
                        const void *value, uint32_t value_size, uint64_t *offset)
{
    size_t size = entry_size(key_size, value_size);
    if (hpool__buffer_reserve(&table->arena, size) != 0)
        return HPOOL_ENOMEM;
    unsigned char *entry = table->arena.data + table->arena.size;
    memset(entry, 0, size);
    *(entry_header *)entry = (entry_header){hash, key_size, value_size};
    if (key_size)
        memcpy(entry_key(entry), key, key_size);
    if (value_size)
        memcpy(entry_value(entry), value, value_size);
    *offset = table->arena.size;
    table->arena.size += size;
    table->count++;
    return 0;
}

/* Key equality without a call to memcmp for the short keys most tables
 * hold (words, tags): two overlapping loads from each side, never beyond
 * either key. */
static bool same_key(const unsigned char *a, const unsigned char *b, size_t size)
{
    if (size >= 8 && size <= 16) {
        uint64_t a0, a1, b0, b1;
        memcpy(&a0, a, 8);
        memcpy(&b0, b, 8);
        memcpy(&a1, a + size - 8, 8);
        memcpy(&b1, b + size - 8, 8);
        return ((a0 ^ b0) | (a1 ^ b1)) == 0;
    }
    if (size >= 4 && size < 8) {
        uint32_t a0, a1, b0, b1;
        memcpy(&a0, a, 4);
        memcpy(&b0, b, 4);
        memcpy(&a1, a + size - 4, 4);
        memcpy(&b1, b + size - 4, 4);
        return ((a0 ^ b0) | (a1 ^ b1)) == 0;
    }
    if (size < 4) {
        for (size_t i = 0; i < size; i++)
            if (a[i] != b[i])
                return false;
        return true;
    }
    return memcmp(a, b, size) == 0;
}

static int table_add_hashed(hpool__pair_table *table, uint64_t hash, const void *key, size_t key_size,
                            const void *value, size_t value_size)
{
    if (key_size > UINT32_MAX || value_size > UINT32_MAX)
        return HPOOL_EINVAL;
    uint64_t offset;
    if (!table->combining)
        return append_entry(table, hash, key, (uint32_t)key_size, value, (uint32_t)value_size, &offset);
    if (value_size != table->spec->value_size)
        return HPOOL_EINVAL;
    if (2 * (table->count + 1) > table->capacity && grow_slots(table) != 0)
        return HPOOL_ENOMEM;
    size_t at = hash & (table->capacity - 1);
    for (; table->slots[at] != 0; at = (at + 1) & (table->capacity - 1)) {
        if (!slot_may_hold(table->slots[at], hash))
            continue;
        unsigned char *entry = slot_entry(table, table->slots[at]);
        const entry_header *header = (const entry_header *)entry;
        if (header->hash == hash && header->key_size == key_size && same_key(entry_key(entry), key, key_size)) {
            table->spec->combine(entry_value(entry), value, table->spec->user);
            return 0;
        }
    }
    if (table->arena.size >= SLOT_OFFSET_MASK)
        return HPOOL_ENOMEM; /* a terabyte of pairs in one table */
    if (append_entry(table, hash, key, (uint32_t)key_size, value, (uint32_t)value_size, &offset) != 0)
        return HPOOL_ENOMEM;
    table->slots[at] = make_slot(offset, hash);
    return 0;
}

int hpool__pair_table_add(hpool__pair_table *table, const void *key, size_t key_size, const void *value,
                          size_t value_size)
{
    return table_add_hashed(table, hash_key(key, key_size), key, key_size, value, value_size);
}

/* Calls visit for each entry, in arena order. */
#define FOR_EACH_ENTRY(table, entry)                                                       \
    for (unsigned char *entry = (table)->arena.data;                                       \
         entry != NULL && entry < (table)->arena.data + (table)->arena.size;               \
         entry += entry_size(((entry_header *)entry)->key_size, ((entry_header *)entry)->value_size))

int hpool__pair_table_merge(hpool__pair_table *into, const hpool__pair_table *from)
{
    FOR_EACH_ENTRY(from, entry)
    {
        const entry_header *header = (const entry_header *)entry;
        int rc = table_add_hashed(into, header->hash, entry_key(entry), header->key_size, entry_value(entry),
                                  header->value_size);
        if (rc != 0)
            return rc;
    }
    return 0;
}

void hpool__emitter_flush(hpool_emitter *emitter)
{
    hpool__pair_table *table = emitter->table;
    size_t count = emitter->staged_count;
    size_t value_size = count > 0 ? table->spec->value_size : 0;
    /* The slots were prefetched as the pairs were staged; now the entries
     * they lead to, then the inserts. */
    for (size_t i = 0; i < count && table->capacity > 0; i++) {
        uint64_t hash = emitter->staged_hashes[i], slot = table->slots[hash & (table->capacity - 1)];
        if (slot != 0 && slot_may_hold(slot, hash))
            __builtin_prefetch(slot_entry(table, slot));
    }
    for (size_t i = 0; i < count; i++) {
        const unsigned char *key = emitter->staged + emitter->staged_at[i];
        size_t key_size = emitter->staged_key_sizes[i];
        int rc = table_add_hashed(table, emitter->staged_hashes[i], key, key_size, key + key_size, value_size);
        if (rc != 0 && emitter->error == 0)
            emitter->error = rc;
    }
    emitter->staged_count = emitter->staged_bytes = 0;
}

/* memcpy for the few bytes of most keys and values without a call: two
 * overlapping loads and stores, never beyond either end. */
static inline void copy_small(unsigned char *to, const unsigned char *from, size_t size)
{
    if (size >= 8 && size <= 16) {
        uint64_t head, tail;
        memcpy(&head, from, 8);
        memcpy(&tail, from + size - 8, 8);
        memcpy(to, &head, 8);
        memcpy(to + size - 8, &tail, 8);
    } else if (size >= 4 && size < 8) {
        uint32_t head, tail;
        memcpy(&head, from, 4);
        memcpy(&tail, from + size - 4, 4);
        memcpy(to, &head, 4);
        memcpy(to + size - 4, &tail, 4);
    } else if (size < 4) {
        for (size_t i = 0; i < size; i++)
            to[i] = from[i];
    } else {
        memcpy(to, from, size);
    }
}

int hpool_emit(hpool_emitter *emitter, const void *key, size_t key_size, const void *value, size_t value_size)
{
    if (emitter == NULL || (key == NULL && key_size > 0) || (value == NULL && value_size > 0))
        return HPOOL_EINVAL;
    hpool__pair_table *table = emitter->table;
    if (table->combining && key_size + value_size <= sizeof emitter->staged) {
        if (value_size != table->spec->value_size)
            return HPOOL_EINVAL;
        if (emitter->staged_bytes + key_size + value_size > sizeof emitter->staged)
            hpool__emitter_flush(emitter);
        uint64_t hash = hash_key(key, key_size);
        if (table->capacity > 0)
            __builtin_prefetch(&table->slots[hash & (table->capacity - 1)]);
        size_t i = emitter->staged_count, at = emitter->staged_bytes;
        emitter->staged_hashes[i] = hash;
        emitter->staged_key_sizes[i] = (uint32_t)key_size;
        emitter->staged_at[i] = (uint32_t)at;
        copy_small(emitter->staged + at, key, key_size);
        copy_small(emitter->staged + at + key_size, value, value_size);
        emitter->staged_bytes = at + key_size + value_size;
        if (++emitter->staged_count == HPOOL__STAGED_PAIRS)
            hpool__emitter_flush(emitter);
        return emitter->error;
    }
    int rc = hpool__pair_table_add(table, key, key_size, value, value_size);
    if (rc != 0 && emitter->error == 0)
        emitter->error = rc;
    return rc;
}

/* ---- Pair lists on the wire: u32 key size, u32 value size, key, value --- */

static int encode_pair(hpool__buffer *out, const void *key, uint32_t key_size, const void *value,
                       uint32_t value_size)
{
    uint32_t sizes[2] = {key_size, value_size};
    if (hpool__buffer_append(out, sizes, sizeof sizes) != 0 || hpool__buffer_append(out, key, key_size) != 0
        || hpool__buffer_append(out, value, value_size) != 0)
        return HPOOL_ENOMEM;
    return 0;
}

/* The pair encoded at data, which the caller knows to be whole. */
void hpool__decode_pair_at(const unsigned char *data, hpool_pair *pair)
{
    uint32_t sizes[2];
    memcpy(sizes, data, sizeof sizes);
    *pair = (hpool_pair){data + sizeof sizes, sizes[0], data + sizeof sizes + sizes[0], sizes[1]};
}

/* Walks an encoded list; 1 and the pair, 0 at the end, HPOOL_EPEER if cut. */
static int decode_pair(const unsigned char *data, size_t size, size_t *at, hpool_pair *pair)
{
    if (*at == size)
        return 0;
    uint32_t sizes[2];
    if (size - *at < sizeof sizes)
        return HPOOL_EPEER;
    memcpy(sizes, data + *at, sizeof sizes);
    if (size - *at - sizeof sizes < (uint64_t)sizes[0] + sizes[1])
        return HPOOL_EPEER;
    pair->key = data + *at + sizeof sizes;
    pair->key_size = sizes[0];
    pair->value = data + *at + sizeof sizes + sizes[0];
    pair->value_size = sizes[1];
    *at += sizeof sizes + sizes[0] + sizes[1];
    return 1;
}

int hpool__pair_table_partition(const hpool__pair_table *table, int partitions, hpool__buffer *out, int mine,
                                hpool__pair_table *owned)
{
    FOR_EACH_ENTRY(table, entry)
    {
        const entry_header *header = (const entry_header *)entry;
        /* the high bits: the low ones also pick the slot inside a table */
        int owner = (int)((header->hash >> 32) % (uint64_t)partitions);
        int rc = owned != NULL && owner == mine
                     ? table_add_hashed(owned, header->hash, entry_key(entry), header->key_size, entry_value(entry),
                                        header->value_size)
                     : encode_pair(&out[owner], entry_key(entry), header->key_size, entry_value(entry),
                                   header->value_size);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int hpool__pair_table_add_encoded(hpool__pair_table *table, const void *data, size_t size)
{
    size_t at = 0;
    hpool_pair pair;
    int rc;
    while ((rc = decode_pair(data, size, &at, &pair)) == 1) {
        rc = hpool__pair_table_add(table, pair.key, pair.key_size, pair.value, pair.value_size);
        if (rc != 0)
            return rc;
    }
    return rc;
}

/* ---- Reduce: key by key, then sort ------------------------------------ */

struct hpool_values {
    unsigned char **entries; /* the entries of one key */
    size_t count, next;
};

int hpool_values_next(hpool_values *values, const void **data, size_t *size)
{
    if (values == NULL || data == NULL || size == NULL)
        return HPOOL_EINVAL;
    if (values->next == values->count)
        return HPOOL_EOF;
    unsigned char *entry = values->entries[values->next++];
    *data = entry_value(entry);
    *size = ((entry_header *)entry)->value_size;
    return 0;
}

static int compare_bytes(const void *a, size_t a_size, const void *b, size_t b_size)
{
    int order = memcmp(a, b, a_size < b_size ? a_size : b_size);
    if (order != 0)
        return order;
    return a_size < b_size ? -1 : a_size > b_size;
}

static int compare_entry_keys(const void *a, const void *b)
{
    unsigned char *x = *(unsigned char *const *)a, *y = *(unsigned char *const *)b;
    return compare_bytes(entry_key(x), ((entry_header *)x)->key_size, entry_key(y), ((entry_header *)y)->key_size);
}

static hpool_pair entry_pair(unsigned char *entry)
{
    const entry_header *header = (const entry_header *)entry;
    return (hpool_pair){entry_key(entry), header->key_size, entry_value(entry), header->value_size};
}

int hpool__compare_pairs(const hpool_pair *a, const hpool_pair *b, const hpool_keyed_reducer *spec)
{
    if (spec->compare != NULL)
        return spec->compare(a, b, spec->user);
    int order = compare_bytes(a->key, a->key_size, b->key, b->key_size);
    return order != 0 ? order : compare_bytes(a->value, a->value_size, b->value, b->value_size);
}

static int compare_output_entries(const void *a, const void *b, void *spec)
{
    hpool_pair x = entry_pair(*(unsigned char *const *)a), y = entry_pair(*(unsigned char *const *)b);
    return hpool__compare_pairs(&x, &y, spec);
}

static unsigned char **entry_index(const hpool__pair_table *table)
{
    unsigned char **index = malloc((table->count + 1) * sizeof *index);
    if (index == NULL)
        return NULL;
    size_t n = 0;
    FOR_EACH_ENTRY(table, entry)
    index[n++] = entry;
    return index;
}

/* Reduces every key of table into output (a plain list): each entry is a key
 * of its own in a combining table; otherwise entries are grouped by key.
 * Without a reduce function the pairs pass through. */
int hpool__pair_table_reduce_into(hpool__pair_table *table, hpool__pair_table *output, int *code)
{
    const hpool_keyed_reducer *spec = table->spec;
    if (spec->reduce == NULL)
        return hpool__pair_table_merge(output, table);
    unsigned char **index = entry_index(table);
    if (index == NULL)
        return HPOOL_ENOMEM;
    if (!table->combining)
        qsort(index, table->count, sizeof *index, compare_entry_keys);
    hpool_emitter out = {.table = output};
    int rc = 0;
    for (size_t start = 0, end; start < table->count && rc == 0; start = end) {
        end = start + 1;
        while (end < table->count && compare_entry_keys(&index[start], &index[end]) == 0)
            end++;
        hpool_values values = {index + start, end - start, 0};
        const entry_header *header = (const entry_header *)index[start];
        int result = spec->reduce(entry_key(index[start]), header->key_size, &values, &out, spec->user);
        if (result != 0) {
            *code = result;
            rc = HPOOL_EFAILED;
        } else if (out.error != 0) {
            rc = out.error;
        }
    }
    free(index);
    return rc;
}

static int compare_entry_keys_r(const void *a, const void *b, void *unused)
{
    (void)unused;
    return compare_entry_keys(a, b);
}

/* Encodes the table's pairs into out, sorted by compare. */
static int encode_in_order(const hpool__pair_table *table, int (*compare)(const void *, const void *, void *),
                           void *context, hpool__buffer *out)
{
    unsigned char **index = entry_index(table);
    if (index == NULL)
        return HPOOL_ENOMEM;
    qsort_r(index, table->count, sizeof *index, compare, context);
    int rc = 0;
    for (size_t i = 0; i < table->count && rc == 0; i++) {
        hpool_pair pair = entry_pair(index[i]);
        rc = encode_pair(out, pair.key, (uint32_t)pair.key_size, pair.value, (uint32_t)pair.value_size);
    }
    free(index);
    return rc;
}

/* Encodes the table's pairs into run, in the order of spec's comparator. */
int hpool__pair_table_encode_sorted(const hpool__pair_table *table, const hpool_keyed_reducer *spec,
                                    hpool__buffer *run)
{
    return encode_in_order(table, compare_output_entries, (void *)spec, run);
}

/* Encodes the table's pairs sorted by key bytes: a spilled run. */
int hpool__pair_table_encode_by_key(const hpool__pair_table *table, hpool__buffer *out)
{
    return encode_in_order(table, compare_entry_keys_r, NULL, out);
}

/* Reduces every key of table and encodes the outputs, sorted, into run.
 * On a reduce function's failure, *code is its return. */
int hpool__pair_table_reduce(hpool__pair_table *table, hpool__buffer *run, int *code)
{
    const hpool_keyed_reducer *spec = table->spec;
    if (spec->reduce == NULL) /* pass-through: the table is what to sort */
        return hpool__pair_table_encode_sorted(table, spec, run);
    hpool__pair_table output;
    hpool__pair_table_init(&output, NULL);
    int rc = hpool__pair_table_reduce_into(table, &output, code);
    if (rc == 0)
        rc = hpool__pair_table_encode_sorted(&output, spec, run);
    hpool__pair_table_release(&output);
    return rc;
}

/* ---- The root's result: the ranks' sorted runs merged ------------------- */

struct hpool_pairs {
    uint64_t count;
    hpool_pair *pairs;
    void **runs; /* the buffers the pairs point into */
    size_t run_count;
};

uint64_t hpool_pairs_count(const hpool_pairs *pairs)
{
    return pairs ? pairs->count : 0;
}

int hpool_pairs_get(const hpool_pairs *pairs, uint64_t i, hpool_pair *pair)
{
    if (pairs == NULL || pair == NULL || i >= pairs->count)
        return HPOOL_EINVAL;
    *pair = pairs->pairs[i];
    return 0;
}

void hpool_pairs_free(hpool_pairs *pairs)
{
    if (pairs == NULL)
        return;
    for (size_t r = 0; r < pairs->run_count; r++)
        free(pairs->runs[r]);
    free(pairs->runs);
    free(pairs->pairs);
    free(pairs);
}

/* Merges run_count sorted runs; takes ownership of the run buffers. */
int hpool__merge_runs(void **runs, const size_t *sizes, size_t run_count, const hpool_keyed_reducer *spec,
                      hpool_pairs **out)
{
    hpool_pairs *pairs = calloc(1, sizeof *pairs);
    size_t *at = calloc(run_count + 1, sizeof *at);
    hpool_pair *heads = calloc(run_count + 1, sizeof *heads);
    bool *live = calloc(run_count + 1, sizeof *live);
    int rc = pairs && at && heads && live ? 0 : HPOOL_ENOMEM;
    uint64_t total = 0;
    for (size_t r = 0; rc == 0 && r < run_count; r++) {
        size_t position = 0;
        hpool_pair pair;
        int step;
        while ((step = decode_pair(runs[r], sizes[r], &position, &pair)) == 1)
            total++;
        if (step < 0)
            rc = step;
    }
    if (rc == 0) {
        pairs->pairs = malloc((total + 1) * sizeof *pairs->pairs);
        if (pairs->pairs == NULL)
            rc = HPOOL_ENOMEM;
    }
    for (size_t r = 0; rc == 0 && r < run_count; r++)
        live[r] = decode_pair(runs[r], sizes[r], &at[r], &heads[r]) == 1;
    /* The ranks' runs are few (one per rank): a linear pick of the least
     * head is cheaper than a heap at that size. */
    while (rc == 0 && pairs->count < total) {
        size_t least = run_count;
        for (size_t r = 0; r < run_count; r++)
            if (live[r] && (least == run_count || hpool__compare_pairs(&heads[r], &heads[least], spec) < 0))
                least = r;
        pairs->pairs[pairs->count++] = heads[least];
        live[least] = decode_pair(runs[least], sizes[least], &at[least], &heads[least]) == 1;
    }
    free(at);
    free(heads);
    free(live);
    if (rc != 0) {
        for (size_t r = 0; r < run_count; r++)
            free(runs[r]);
        if (pairs != NULL)
            free(pairs->pairs);
        free(pairs);
        return rc;
    }
    pairs->runs = malloc((run_count + 1) * sizeof *pairs->runs);
    if (pairs->runs == NULL) {
        for (size_t r = 0; r < run_count; r++)
            free(runs[r]);
        free(pairs->pairs);
        free(pairs);
        return HPOOL_ENOMEM;
    }
    memcpy(pairs->runs, runs, run_count * sizeof *runs);
    pairs->run_count = run_count;
    *out = pairs;
    return 0;
}
