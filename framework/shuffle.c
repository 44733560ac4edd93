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
static inline __attribute__((always_inline)) uint64_t hash_key(const void *key, size_t size)
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
    hpool__advise_huge_pages(slots, capacity * sizeof *slots);
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
static inline __attribute__((always_inline)) bool same_key(const unsigned char *a, const unsigned char *b, size_t size)
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

/* Adds a pair to a combining table: combined into its key's entry, or a
 * new entry. The caller checked the sizes. */
static inline __attribute__((always_inline)) int combine_hashed(hpool__pair_table *table, uint64_t hash,
                                                                const void *key, size_t key_size, const void *value,
                                                                size_t value_size)
{
    uint64_t offset;
    if (2 * (table->count + 1) > table->capacity && grow_slots(table) != 0)
        return HPOOL_ENOMEM;
    uint64_t *slots = table->slots;
    size_t mask = table->capacity - 1, at = hash & mask;
    for (uint64_t slot; (slot = slots[at]) != 0; at = (at + 1) & mask) {
        if (!slot_may_hold(slot, hash))
            continue;
        unsigned char *entry = slot_entry(table, slot);
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
    return combine_hashed(table, hash, key, key_size, value, value_size);
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
        int rc = combine_hashed(table, emitter->staged_hashes[i], key, key_size, key + key_size, value_size);
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

/* The rank a key belongs to: from the high half of its hash, since the low
 * bits pick its slot inside a table (and its share of the rank's keys). */
static int owner_of(uint64_t hash, int partitions)
{
    return (int)((hash >> 32) % (uint64_t)partitions);
}

int hpool__pair_table_partition(const hpool__pair_table *table, int partitions, hpool__buffer *out)
{
    FOR_EACH_ENTRY(table, entry)
    {
        const entry_header *header = (const entry_header *)entry;
        int rc = encode_pair(&out[owner_of(header->hash, partitions)], entry_key(entry), header->key_size,
                             entry_value(entry), header->value_size);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Puts each slot of a combining table's entries back, after they moved. */
static void rebuild_slots(hpool__pair_table *table)
{
    if (!table->combining || table->capacity == 0)
        return;
    memset(table->slots, 0, table->capacity * sizeof *table->slots);
    FOR_EACH_ENTRY(table, entry)
    {
        uint64_t hash = ((const entry_header *)entry)->hash;
        size_t at = hash & (table->capacity - 1);
        while (table->slots[at] != 0)
            at = (at + 1) & (table->capacity - 1);
        table->slots[at] = make_slot((uint64_t)(entry - table->arena.data), hash);
    }
}

/* ---- A rank's own pairs, in shares -------------------------------------- */

/* The share of a rank's keys that a key belongs to: from the low half of
 * its hash, since the high half picked the rank (owner_of), the same for
 * every key a rank owns. */
static int share_of(uint64_t hash, int shares)
{
    return (int)((uint32_t)hash % (uint32_t)shares);
}

int hpool__pair_tables_add_encoded(hpool__pair_table *tables, int shares, const void *data, size_t size)
{
    size_t at = 0;
    hpool_pair pair;
    int rc;
    while ((rc = decode_pair(data, size, &at, &pair)) == 1) {
        uint64_t hash = hash_key(pair.key, pair.key_size);
        rc = table_add_hashed(&tables[share_of(hash, shares)], hash, pair.key, pair.key_size, pair.value,
                              pair.value_size);
        if (rc != 0)
            return rc;
    }
    return rc;
}

/* Splits a thread's table in place: other ranks' pairs are encoded into
 * parts (a buffer per rank), this rank's pairs of other shares copied,
 * entries as they are, into moved (a buffer per share), and only this
 * rank's pairs of share keep stay, moved to the front, their slots
 * rebuilt. */
static int split_in_place(hpool__pair_table *table, int ranks, int me, hpool__buffer *parts, int shares, int keep,
                          hpool__buffer *moved)
{
    unsigned char *kept = table->arena.data, *end = table->arena.data + table->arena.size;
    size_t count = 0;
    int rc = 0;
    for (unsigned char *entry = kept, *next; entry < end; entry = next) {
        const entry_header *header = (const entry_header *)entry;
        size_t size = entry_size(header->key_size, header->value_size);
        next = entry + size;
        int owner = owner_of(header->hash, ranks), share = share_of(header->hash, shares);
        if (owner == me && share == keep) {
            if (kept != entry)
                memmove(kept, entry, size); /* may overwrite this header: read above */
            kept += size;
            count++;
        } else if (rc == 0 && owner == me) {
            rc = hpool__buffer_append(&moved[share], entry, size) != 0 ? HPOOL_ENOMEM : 0;
        } else if (rc == 0) {
            rc = encode_pair(&parts[owner], entry_key(entry), header->key_size, entry_value(entry),
                             header->value_size);
        }
    }
    if (count != table->count) {
        table->arena.size = (size_t)(kept - table->arena.data);
        table->count = count;
        rebuild_slots(table);
    }
    return rc;
}

typedef struct gather_job {
    hpool__pair_table *mapped, *owned; /* a table per thread, a table per share */
    int shares, ranks, me;
    hpool__buffer *parts;              /* thread × rank */
    hpool__buffer *moved;              /* thread × share */
    int *codes;                        /* each part's return */
} gather_job;

static void split_part(void *arg, int t, int parts)
{
    gather_job *job = arg;
    (void)parts;
    job->codes[t] = split_in_place(&job->mapped[t], job->ranks, job->me, &job->parts[(size_t)t * (size_t)job->ranks],
                                   job->shares, t, &job->moved[(size_t)t * (size_t)job->shares]);
}

/* Share s: thread s's table, which holds only share s's keys now, plus the
 * share's keys that the other threads' tables moved out. */
static void gather_share(void *arg, int s, int shares)
{
    gather_job *job = arg;
    hpool__pair_table *owned = &job->owned[s], *mapped = &job->mapped[s];
    int rc = 0;
    if (owned->count == 0 && owned->arena.size == 0) {
        hpool__pair_table_release(owned); /* taken whole */
        *owned = *mapped;
        hpool__pair_table_init(mapped, owned->spec);
    } else {
        rc = hpool__pair_table_merge(owned, mapped); /* pairs came from other ranks first */
    }
    for (int t = 0; t < shares && rc == 0; t++) {
        const hpool__buffer *from = &job->moved[(size_t)t * (size_t)shares + (size_t)s];
        for (unsigned char *entry = from->data; rc == 0 && entry != NULL && entry < from->data + from->size;
             entry += entry_size(((entry_header *)entry)->key_size, ((entry_header *)entry)->value_size)) {
            const entry_header *header = (const entry_header *)entry;
            rc = table_add_hashed(owned, header->hash, entry_key(entry), header->key_size, entry_value(entry),
                                  header->value_size);
        }
    }
    job->codes[s] = rc;
}

int hpool__pair_tables_gather(hpool__pair_table *mapped, hpool__pair_table *owned, int shares, int ranks, int me,
                              hpool__buffer *parts, hpool__team *team)
{
    int *codes = calloc((size_t)shares, sizeof *codes);
    hpool__buffer *moved = calloc((size_t)shares * (size_t)shares, sizeof *moved);
    int rc = codes != NULL && moved != NULL ? 0 : HPOOL_ENOMEM;
    gather_job job = {mapped, owned, shares, ranks, me, parts, moved, codes};
    if (rc == 0)
        hpool__team_run(team, split_part, &job, shares);
    for (int t = 0; t < shares && rc == 0; t++)
        rc = codes[t];
    if (rc == 0)
        hpool__team_run(team, gather_share, &job, shares);
    for (int s = 0; s < shares && rc == 0; s++)
        rc = codes[s];
    for (size_t m = 0; moved != NULL && m < (size_t)shares * (size_t)shares; m++)
        hpool__buffer_release(&moved[m]);
    free(moved);
    free(codes);
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

/* The user's order, with pairs it calls equal ordered by bytes: the output
 * must not depend on which thread or rank sorted which pairs. */
int hpool__compare_pairs(const hpool_pair *a, const hpool_pair *b, const hpool_keyed_reducer *spec)
{
    if (spec->compare != NULL) {
        int order = spec->compare(a, b, spec->user);
        if (order != 0)
            return order;
    }
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

/* Reduces the keys of count entries into output (a plain list): each entry
 * is a key of its own in a combining table; otherwise entries are grouped
 * by key first. */
static int reduce_entries(const hpool_keyed_reducer *spec, bool combining, unsigned char **index, size_t count,
                          hpool__pair_table *output, int *code)
{
    if (!combining)
        qsort(index, count, sizeof *index, compare_entry_keys);
    hpool_emitter out = {.table = output};
    int rc = 0;
    for (size_t start = 0, end; start < count && rc == 0; start = end) {
        end = start + 1;
        while (end < count && compare_entry_keys(&index[start], &index[end]) == 0)
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
    return rc;
}

/* Reduces every key of table into output (a plain list). Without a reduce
 * function the pairs pass through. */
int hpool__pair_table_reduce_into(hpool__pair_table *table, hpool__pair_table *output, int *code)
{
    const hpool_keyed_reducer *spec = table->spec;
    if (spec->reduce == NULL)
        return hpool__pair_table_merge(output, table);
    unsigned char **index = entry_index(table);
    if (index == NULL)
        return HPOOL_ENOMEM;
    int rc = reduce_entries(spec, table->combining, index, table->count, output, code);
    free(index);
    return rc;
}

static int compare_entry_keys_r(const void *a, const void *b, void *unused)
{
    (void)unused;
    return compare_entry_keys(a, b);
}

static int encode_entry(hpool__buffer *out, unsigned char *entry)
{
    hpool_pair pair = entry_pair(entry);
    return encode_pair(out, pair.key, (uint32_t)pair.key_size, pair.value, (uint32_t)pair.value_size);
}

/* Encodes the table's pairs sorted by key bytes: a spilled run. */
int hpool__pair_table_encode_by_key(const hpool__pair_table *table, hpool__buffer *out)
{
    unsigned char **index = entry_index(table);
    if (index == NULL)
        return HPOOL_ENOMEM;
    qsort_r(index, table->count, sizeof *index, compare_entry_keys_r, NULL);
    int rc = 0;
    for (size_t i = 0; i < table->count && rc == 0; i++)
        rc = encode_entry(out, index[i]);
    free(index);
    return rc;
}

/* ---- Reduce and sort on the team's threads ------------------------------ */

/* Tables smaller than this are reduced and sorted by one thread: waking the
 * others would cost more than it saves. */
#define PARALLEL_MIN_ENTRIES 8192

/* One thread's share of the keys: a table of its own, or the keys of one
 * table whose hash picks it. */
typedef struct reduce_share {
    hpool__pair_table output; /* its keys reduced, when there is a reduce function */
    hpool__buffer run;        /* its pairs encoded in output order */
    int rc, code;
} reduce_share;

typedef struct reduce_job {
    const hpool__pair_table *tables; /* one, split by hash, or one per part */
    int table_count;
    const hpool_keyed_reducer *spec; /* the output order, and the reduce function */
    bool reduce;
    reduce_share *shares;
} reduce_job;

static bool in_share(const unsigned char *entry, int part, int parts)
{
    return parts == 1 || share_of(((const entry_header *)entry)->hash, parts) == part;
}

static size_t encoded_size(const unsigned char *entry)
{
    const entry_header *header = (const entry_header *)entry;
    return 2 * sizeof(uint32_t) + header->key_size + header->value_size;
}

/* Selects, reduces, sorts and encodes one share. */
static int run_share(reduce_job *job, reduce_share *share, int part, int parts)
{
    const hpool__pair_table *table = job->table_count == 1 ? job->tables : &job->tables[part];
    if (job->table_count > 1)
        parts = 1; /* the whole table is this share */
    size_t capacity = table->count / (size_t)parts + table->count / (4 * (size_t)parts) + 16, count = 0;
    unsigned char **index = malloc(capacity * sizeof *index);
    if (index == NULL)
        return HPOOL_ENOMEM;
    FOR_EACH_ENTRY(table, entry)
    {
        if (!in_share(entry, part, parts))
            continue;
        if (count == capacity) {
            unsigned char **grown = hpool__grow_array(index, &capacity, count, sizeof *index);
            if (grown == NULL) {
                free(index);
                return HPOOL_ENOMEM;
            }
            index = grown;
        }
        index[count++] = entry;
    }
    if (job->reduce) {
        hpool__pair_table_init(&share->output, NULL);
        int rc = reduce_entries(job->spec, table->combining, index, count, &share->output, &share->code);
        free(index);
        if (rc != 0)
            return rc;
        if ((index = entry_index(&share->output)) == NULL)
            return HPOOL_ENOMEM;
        count = share->output.count;
    }
    qsort_r(index, count, sizeof *index, compare_output_entries, (void *)job->spec);
    size_t bytes = 0;
    for (size_t i = 0; i < count; i++)
        bytes += encoded_size(index[i]);
    int rc = hpool__buffer_reserve(&share->run, bytes);
    for (size_t i = 0; i < count && rc == 0; i++)
        rc = encode_entry(&share->run, index[i]);
    free(index);
    return rc;
}

static void run_share_part(void *arg, int part, int parts)
{
    reduce_job *job = arg;
    job->shares[part].rc = run_share(job, &job->shares[part], part, parts);
}

/* Appends the shares' runs to out, packed: the run count, each run's size
 * (u64s), then the runs one after another. */
static int pack_runs(const reduce_share *shares, int parts, hpool__buffer *out)
{
    uint64_t count = (uint64_t)parts, bytes = 0;
    for (int p = 0; p < parts; p++)
        bytes += shares[p].run.size;
    if (hpool__buffer_reserve(out, (1 + count) * sizeof count + bytes) != 0)
        return HPOOL_ENOMEM;
    hpool__buffer_append(out, &count, sizeof count);
    for (int p = 0; p < parts; p++) {
        uint64_t size = shares[p].run.size;
        hpool__buffer_append(out, &size, sizeof size);
    }
    for (int p = 0; p < parts; p++)
        hpool__buffer_append(out, shares[p].run.data, shares[p].run.size);
    return 0;
}

/* Sorts (reducing first if asked) the tables' entries on the team's
 * threads, a share each: one table per share, or one table split by hash;
 * appends the shares' sorted runs to out. */
static int sort_on_team(const hpool__pair_table *tables, int table_count, const hpool_keyed_reducer *spec,
                        bool reduce, hpool__team *team, hpool__buffer *out, int *code)
{
    int parts = table_count > 1 ? table_count : tables->count < PARALLEL_MIN_ENTRIES ? 1 : team->thread_count;
    reduce_share *shares = calloc((size_t)parts, sizeof *shares);
    if (shares == NULL)
        return HPOOL_ENOMEM;
    reduce_job job = {tables, table_count, spec, reduce, shares};
    hpool__team_run(team, run_share_part, &job, parts);
    int rc = 0;
    for (int p = 0; p < parts && rc == 0; p++)
        if ((rc = shares[p].rc) == HPOOL_EFAILED)
            *code = shares[p].code;
    if (rc == 0)
        rc = pack_runs(shares, parts, out);
    for (int p = 0; p < parts; p++) {
        hpool__buffer_release(&shares[p].run);
        hpool__pair_table_release(&shares[p].output);
    }
    free(shares);
    return rc;
}

int hpool__pair_table_encode_sorted(const hpool__pair_table *table, const hpool_keyed_reducer *spec,
                                    hpool__team *team, hpool__buffer *out)
{
    int unused = 0;
    return sort_on_team(table, 1, spec, false, team, out, &unused);
}

int hpool__pair_tables_reduce(const hpool__pair_table *shares, int count, hpool__team *team, hpool__buffer *out,
                              int *code)
{
    const hpool_keyed_reducer *spec = shares->spec;
    return sort_on_team(shares, count, spec, spec->reduce != NULL, team, out, code);
}

/* ---- Merging the ranks' runs into one sorted list ----------------------- */

typedef struct run_cursor {
    const unsigned char *data;
    size_t size, at;
    hpool_pair head;
} run_cursor;

/* Finds the runs packed in each buffer and checks that every pair in them
 * is whole; HPOOL_EPEER if not. */
static int open_runs(void *const *buffers, const size_t *sizes, size_t count, run_cursor **cursors,
                     size_t *cursor_count, uint64_t *pairs)
{
    size_t total_runs = 0;
    for (size_t b = 0; b < count; b++) {
        uint64_t runs;
        if (sizes[b] < sizeof runs)
            return HPOOL_EPEER;
        memcpy(&runs, buffers[b], sizeof runs);
        if (runs > (sizes[b] - sizeof runs) / sizeof runs)
            return HPOOL_EPEER;
        total_runs += runs;
    }
    run_cursor *all = calloc(total_runs + 1, sizeof *all);
    if (all == NULL)
        return HPOOL_ENOMEM;
    size_t n = 0;
    *pairs = 0;
    for (size_t b = 0; b < count; b++) {
        const unsigned char *data = buffers[b];
        uint64_t runs;
        memcpy(&runs, data, sizeof runs);
        size_t at = (1 + runs) * sizeof runs, left = sizes[b] - at;
        for (uint64_t r = 0; r < runs; r++) {
            uint64_t size;
            memcpy(&size, data + (1 + r) * sizeof size, sizeof size);
            if (size > left) {
                free(all);
                return HPOOL_EPEER;
            }
            all[n] = (run_cursor){.data = data + at, .size = size};
            size_t position = 0;
            hpool_pair pair;
            int step;
            while ((step = decode_pair(all[n].data, size, &position, &pair)) == 1)
                (*pairs)++;
            if (step < 0) {
                free(all);
                return step;
            }
            at += size;
            left -= size;
            n++;
        }
    }
    *cursors = all;
    *cursor_count = n;
    return 0;
}

static bool cursor_before(const run_cursor *a, const run_cursor *b, const hpool_keyed_reducer *spec)
{
    return hpool__compare_pairs(&a->head, &b->head, spec) < 0;
}

/* Moves heap[at] down to its place in a binary min-heap of size entries. */
static void sift_down(run_cursor **heap, size_t size, size_t at, const hpool_keyed_reducer *spec)
{
    run_cursor *moving = heap[at];
    for (;;) {
        size_t child = 2 * at + 1;
        if (child >= size)
            break;
        if (child + 1 < size && cursor_before(heap[child + 1], heap[child], spec))
            child++;
        if (!cursor_before(heap[child], moving, spec))
            break;
        heap[at] = heap[child];
        at = child;
    }
    heap[at] = moving;
}

int hpool__merge_packed_runs(void *const *buffers, const size_t *sizes, size_t count,
                             const hpool_keyed_reducer *spec, hpool_pair **pairs, uint64_t *pair_count)
{
    run_cursor *cursors = NULL;
    size_t cursor_count = 0;
    uint64_t total = 0;
    int rc = open_runs(buffers, sizes, count, &cursors, &cursor_count, &total);
    if (rc != 0)
        return rc;
    hpool_pair *merged = malloc((total + 1) * sizeof *merged);
    run_cursor **heap = malloc((cursor_count + 1) * sizeof *heap);
    if (merged == NULL || heap == NULL) {
        free(merged);
        free(heap);
        free(cursors);
        return HPOOL_ENOMEM;
    }
    size_t size = 0;
    for (size_t c = 0; c < cursor_count; c++)
        if (decode_pair(cursors[c].data, cursors[c].size, &cursors[c].at, &cursors[c].head) == 1)
            heap[size++] = &cursors[c];
    for (size_t at = size / 2; at-- > 0;)
        sift_down(heap, size, at, spec);
    uint64_t n = 0;
    while (size > 0) {
        run_cursor *least = heap[0];
        merged[n++] = least->head;
        if (decode_pair(least->data, least->size, &least->at, &least->head) != 1)
            heap[0] = heap[--size];
        if (size > 0)
            sift_down(heap, size, 0, spec);
    }
    free(heap);
    free(cursors);
    *pairs = merged;
    *pair_count = n;
    return 0;
}

/* ---- The root's result: the ranks' sorted runs merged ------------------- */

struct hpool_pairs {
    uint64_t count;
    hpool_pair *pairs;
    void **runs; /* the ranks' buffers the pairs point into */
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

/* Merges the runs packed in buffer_count buffers (a rank's each); takes
 * ownership of the buffers. */
int hpool__merge_runs(void **buffers, const size_t *sizes, size_t buffer_count, const hpool_keyed_reducer *spec,
                      hpool_pairs **out)
{
    hpool_pairs *pairs = calloc(1, sizeof *pairs);
    void **owned = malloc((buffer_count + 1) * sizeof *owned);
    int rc = pairs != NULL && owned != NULL ? 0 : HPOOL_ENOMEM;
    if (rc == 0)
        rc = hpool__merge_packed_runs(buffers, sizes, buffer_count, spec, &pairs->pairs, &pairs->count);
    if (rc != 0) {
        for (size_t b = 0; b < buffer_count; b++)
            free(buffers[b]);
        free(owned);
        free(pairs);
        return rc;
    }
    memcpy(owned, buffers, buffer_count * sizeof *buffers);
    pairs->runs = owned;
    pairs->run_count = buffer_count;
    *out = pairs;
    return 0;
}
