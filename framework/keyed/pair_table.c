/* pair_table.c: pair tables with combiners and merges, the emitter that fills them, encoded pairs, and partitions by key. */
#include "keyed_private.h"

#include <stdlib.h>
#include <string.h>

/* ---- Pair tables ----------------------------------------------------- */

#ifdef HPOOL_TESTING
uint64_t hpool__test_hash_mask = UINT64_MAX;
#endif

/* value's u64 into accumulator's, either at any alignment. */
static inline void add_u64_at(void *accumulator, const void *value)
{
    uint64_t sum, more;
    memcpy(&sum, accumulator, sizeof sum);
    memcpy(&more, value, sizeof more);
    sum += more;
    memcpy(accumulator, &sum, sizeof sum);
}

void hpool_combine_sum_u64(void *accumulator, const void *value, void *user)
{
    (void)user;
    add_u64_at(accumulator, value);
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

static inline uint64_t load64(const unsigned char *bytes)
{
    uint64_t word;
    memcpy(&word, bytes, sizeof word);
    return word;
}

static inline uint32_t load32(const unsigned char *bytes)
{
    uint32_t word;
    memcpy(&word, bytes, sizeof word);
    return word;
}

/* The 128-bit product's halves xor-ed: one multiply mixes every bit of
 * both words into every bit of the result (wyhash's "mum"). */
static inline uint64_t fold_multiply(uint64_t a, uint64_t b)
{
#ifdef __SIZEOF_INT128__
    unsigned __int128 product = (unsigned __int128)a * b;
    return (uint64_t)product ^ (uint64_t)(product >> 64);
#else /* a 32-bit target: the halves' four products */
    uint64_t a_low = (uint32_t)a, a_high = a >> 32, b_low = (uint32_t)b, b_high = b >> 32;
    uint64_t low_low = a_low * b_low, low_high = a_low * b_high, high_low = a_high * b_low;
    uint64_t middle = (low_low >> 32) + (uint32_t)low_high + (uint32_t)high_low;
    uint64_t low = (middle << 32) | (uint32_t)low_low;
    uint64_t high = a_high * b_high + (low_high >> 32) + (high_low >> 32) + (middle >> 32);
    return low ^ high;
#endif
}

/* The width (8 or 4) bytes at bytes as a little-endian word on every
 * host, so that "the first n bytes" is the word's low 8n bits. */
static inline uint64_t load_le(const unsigned char *bytes, size_t width)
{
    uint64_t word = width == 8 ? load64(bytes) : load32(bytes);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    word = width == 8 ? __builtin_bswap64(word) : __builtin_bswap32((uint32_t)word);
#endif
    return word;
}

/* masks16[n]: the bits of the first n of 16 bytes, as two little-endian
 * words (load_le). */
static const uint64_t masks16[17][2] = {
    {0, 0}, {0xff, 0}, {0xffff, 0}, {0xffffff, 0}, {0xffffffff, 0}, {0xffffffffff, 0}, {0xffffffffffff, 0},
    {0xffffffffffffff, 0}, {~0ull, 0}, {~0ull, 0xff}, {~0ull, 0xffff}, {~0ull, 0xffffff}, {~0ull, 0xffffffff},
    {~0ull, 0xffffffffff}, {~0ull, 0xffffffffffff}, {~0ull, 0xffffffffffffff}, {~0ull, ~0ull}};

/* The two 128-bit multiplies that end every key's hash. */
static inline uint64_t hash_finish(uint64_t a, uint64_t b, uint64_t seed, size_t size)
{
    uint64_t hash = fold_multiply(fold_multiply(a ^ 0xe7037ed1a0b428dbu, b ^ seed) ^ 0x8ebc6af09c88c6e3u,
                                  (uint64_t)size ^ 0x589965cc75374cc3u);
#ifdef HPOOL_TESTING
    hash &= hpool__test_hash_mask; /* a few bits: keys collide, and only their bytes tell them apart */
#endif
    return hash;
}

/* A key of at most 16 bytes as two zero-padded little-endian words,
 * from loads that stay inside the key (overlapping, and shifted into
 * place): the words the hash mixes, and what the emitter stores as the
 * staged copy, so that the hash never reloads bytes just stored (a load
 * that spans two smaller stores waits for both to retire: 19% of
 * hpool_emit's samples when the hash read the staged copy). */
static inline __attribute__((always_inline)) void short_key_words(const unsigned char *bytes, size_t size,
                                                                  uint64_t *a, uint64_t *b)
{
    if (size >= 8) {
        *a = load_le(bytes, 8);
        *b = size > 8 ? load_le(bytes + size - 8, 8) >> (8 * (16 - size)) : 0;
    } else if (size >= 4) {
        *a = load_le(bytes, 4) | (uint64_t)load_le(bytes + size - 4, 4) << (8 * (size - 4));
        *b = 0;
    } else {
        *a = size > 0 ? (uint64_t)bytes[size - 1] << (8 * (size - 1)) | (uint64_t)bytes[size / 2] << (8 * (size / 2)) |
                            bytes[0]
                      : 0;
        *b = 0;
    }
}

/* word's 8 bytes, little-endian, at bytes. */
static inline void store_le(unsigned char *bytes, uint64_t word)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    word = __builtin_bswap64(word);
#endif
    memcpy(bytes, &word, sizeof word);
}

#define HASH_SEED 0xa0761d6478bd642fu

/* The same bytes hash the same on every rank: partitions depend on it.
 * Two 128-bit multiplies for a key of up to 16 bytes, its bytes as two
 * zero-padded little-endian words (short_key_words); one more for each 16
 * bytes past that. It replaced a 64-bit multiply-xorshift per 8 bytes and
 * a finalizer of two more, which took a word count 2 ns more a word. */
static inline __attribute__((always_inline)) uint64_t hash_key(const void *key, size_t size)
{
    const unsigned char *bytes = key;
    uint64_t a, b, seed = HASH_SEED;
    if (size <= 16) {
        short_key_words(bytes, size, &a, &b);
    } else {
        size_t i = 0;
        for (; size - i > 16; i += 16)
            seed = fold_multiply(load64(bytes + i) ^ 0xe7037ed1a0b428dbu, load64(bytes + i + 8) ^ seed);
        a = load64(bytes + size - 16);
        b = load64(bytes + size - 8);
    }
    return hash_finish(a, b, seed, size);
}

void hpool__pair_table_init(hpool__pair_table *table, const hpool_keyed_reducer *spec)
{
    memset(table, 0, sizeof *table);
    table->spec = spec;
    table->combining = spec != NULL && (spec->combine != NULL || spec->merge != NULL);
    table->staging = spec != NULL && spec->combine != NULL;
    table->sum_u64 = table->staging && spec->combine == hpool_combine_sum_u64 && spec->value_size == sizeof(uint64_t);
    table->staged_value_size = table->staging ? spec->value_size : SIZE_MAX;
}

void hpool__pair_table_release(hpool__pair_table *table)
{
    hpool__buffer_release(&table->arena);
    hpool__buffer_release(&table->merged);
    free(table->slots);
    table->slots = NULL;
    table->capacity = table->count = table->dead_bytes = 0;
}

static void rebuild_slots(hpool__pair_table *table);

/* Twice the slots, filled from the arena: a walk in the arena's order
 * reads each entry's hash from memory that streams in, where a walk of the
 * old slots loaded each entry at random, a cache miss a key. */
static int grow_slots(hpool__pair_table *table)
{
    HPOOL__ASSERT(table->combining); /* only combining tables have slots, and rebuild_slots fills them */
    size_t capacity = table->capacity ? 2 * table->capacity : 1024;
    /* Written before read (by rebuild_slots), not calloc'd: a large calloc
     * maps the shared zero page on the first probe, and the first insert
     * then faults again to copy it and flushes the TLB of every thread of
     * the process. */
    uint64_t *slots = hpool__malloc(capacity * sizeof *slots);
    if (slots == NULL)
        return HPOOL_ENOMEM;
    hpool__advise_huge_pages(slots, capacity * sizeof *slots);
    free(table->slots);
    table->slots = slots;
    table->capacity = capacity;
    rebuild_slots(table);
    return 0;
}

static int append_entry(hpool__pair_table *table, uint64_t hash, const void *key, uint32_t key_size,
                        const void *value, uint32_t value_size, uint64_t *offset)
{
    size_t size = hpool__entry_size(key_size, value_size);
    if (hpool__buffer_reserve(&table->arena, size) != 0)
        return HPOOL_ENOMEM;
    unsigned char *entry = table->arena.data + table->arena.size;
    memset(entry, 0, size);
    *(hpool__entry_header *)entry = (hpool__entry_header){hash, key_size, value_size};
    if (key_size)
        memcpy(hpool__entry_key(entry), key, key_size);
    if (value_size)
        memcpy(hpool__entry_value(entry), value, value_size);
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
    /* Up to 64 bytes (HTML tokens, URLs) by words, the last one
     * overlapping: a call to memcmp cost a word count 4% of its samples. */
    if (size <= 64) {
        uint64_t differ = 0, a0, b0;
        for (size_t i = 0; i + 8 < size; i += 8) {
            memcpy(&a0, a + i, 8);
            memcpy(&b0, b + i, 8);
            differ |= a0 ^ b0;
        }
        memcpy(&a0, a + size - 8, 8);
        memcpy(&b0, b + size - 8, 8);
        return (differ | (a0 ^ b0)) == 0;
    }
    return memcmp(a, b, size) == 0;
}

/* same_key for keys of at most 16 bytes, without a branch on the size:
 * 16 bytes loaded from each side, the bytes past the key masked off. The
 * caller knows that 16 bytes can be read at both: an entry's key is
 * followed by its value (at least 8 bytes, rounded), and a staged key by
 * its value or the staged buffer's padding. */
static inline bool same_short_key(const unsigned char *a, const unsigned char *b, size_t size)
{
    const uint64_t *mask = masks16[size];
    return (((load_le(a, 8) ^ load_le(b, 8)) & mask[0]) | ((load_le(a + 8, 8) ^ load_le(b + 8, 8)) & mask[1])) == 0;
}

/* Adds a pair to a combining table: combined into its key's entry, or a
 * new entry. The caller checked the sizes. */
static inline __attribute__((always_inline)) int combine_hashed(hpool__pair_table *table, uint64_t hash,
                                                                const void *key, size_t key_size, const void *value,
                                                                size_t value_size, bool readable16)
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
        const hpool__entry_header *header = (const hpool__entry_header *)entry;
        bool same = header->hash == hash && header->key_size == key_size &&
                    (readable16 && key_size <= 16 ? same_short_key(hpool__entry_key(entry), key, key_size)
                                                  : same_key(hpool__entry_key(entry), key, key_size));
        if (same) {
            if (table->sum_u64) { /* the common count: no call, no copy to align */
                add_u64_at(hpool__entry_value(entry), value);
                return 0;
            }
            /* Encoded pairs (PAIRS, spill files, checkpoints) put a value
             * anywhere: the combiner gets it 8-byte aligned, as hpool.h
             * says, so it may read it as its type. */
            _Alignas(16) unsigned char aligned[256];
            if (((uintptr_t)value & 7) != 0 && value_size <= sizeof aligned) {
                memcpy(aligned, value, value_size);
                value = aligned;
            }
            table->spec->combine(hpool__entry_value(entry), value, table->spec->user);
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

/* ---- Merge tables: values of any size -------------------------------- */

/* The largest value a dead header spans: a multiple of 8 that fits its u32. */
#define DEAD_SPAN_MAX ((size_t)UINT32_MAX & ~(size_t)15)

/* Turns size bytes of the arena (whole entries) into dead stretches, more
 * than one if they are more than one header can span; each is at least a
 * header long. */
static void mark_dead(unsigned char *at, size_t size)
{
    while (size > 0) {
        size_t span = size - sizeof(hpool__entry_header);
        if (span > DEAD_SPAN_MAX) /* leave no remainder shorter than a header */
            span = span - DEAD_SPAN_MAX < sizeof(hpool__entry_header) ? DEAD_SPAN_MAX - 8 : DEAD_SPAN_MAX;
        *(hpool__entry_header *)at = (hpool__entry_header){0, 0, (uint32_t)span};
        at += sizeof(hpool__entry_header) + span;
        size -= sizeof(hpool__entry_header) + span;
    }
}

/* Moves the live entries to the front, in order, and points the slots at
 * their new places. */
static void compact(hpool__pair_table *table)
{
    unsigned char *kept = table->arena.data, *end = table->arena.data + table->arena.size;
    for (unsigned char *entry = kept, *next; entry < end; entry = next) {
        const hpool__entry_header *header = (const hpool__entry_header *)entry;
        size_t size = hpool__entry_size(header->key_size, header->value_size);
        next = entry + size;
        if (hpool__entry_is_dead(entry))
            continue;
        if (kept != entry)
            memmove(kept, entry, size); /* may overwrite this header: read above */
        kept += size;
    }
    table->arena.size = (size_t)(kept - table->arena.data);
    table->dead_bytes = 0;
    rebuild_slots(table);
}

static int merge_failed(hpool__pair_table *table, int code)
{
    if (table->merge_code == 0)
        table->merge_code = code;
    return HPOOL_EFAILED;
}

/* Merges value into the entry that slot at leads to. The merge writes
 * into the table's scratch buffer, then the result goes back in place if
 * it rounds to the same size, or else to a new entry at the end, the slot
 * following it. Compacting when half the arena is dead keeps the arena
 * within twice the live entries, and costs no more copying than the moves
 * did. */
static int merge_into_entry(hpool__pair_table *table, size_t at, const void *value, size_t value_size)
{
    const hpool_keyed_reducer *spec = table->spec;
    unsigned char *entry = slot_entry(table, table->slots[at]);
    hpool__entry_header *header = (hpool__entry_header *)entry;
    size_t old_size = header->value_size, room = old_size + value_size, merged_size;
    for (;;) {
        /* never a NULL out, even for two empty values */
        if (hpool__buffer_reserve(&table->merged, room > 8 ? room : 8) != 0)
            return HPOOL_ENOMEM;
        merged_size = room;
        int code = spec->merge(hpool__entry_value(entry), old_size, value, value_size, table->merged.data,
                               &merged_size, spec->user);
        if (code != 0)
            return merge_failed(table, code);
        if (merged_size <= room)
            break;
        if (merged_size > UINT32_MAX)
            return merge_failed(table, HPOOL_EINVAL);
        room = merged_size; /* it asked for more: again, with that much */
    }
    if (hpool__round8(merged_size) == hpool__round8(old_size)) {
        memcpy(hpool__entry_value(entry), table->merged.data, merged_size);
        header->value_size = (uint32_t)merged_size;
        return 0;
    }
    size_t from = (size_t)(entry - table->arena.data);
    hpool__entry_header moved = {header->hash, header->key_size, (uint32_t)merged_size};
    size_t size = hpool__entry_size(moved.key_size, moved.value_size);
    size_t dead = hpool__entry_size(moved.key_size, (uint32_t)old_size);
    if (table->arena.size + size >= SLOT_OFFSET_MASK)
        return HPOOL_ENOMEM; /* a terabyte of pairs in one table */
    if (hpool__buffer_reserve(&table->arena, size) != 0)
        return HPOOL_ENOMEM;
    entry = table->arena.data + from; /* the arena may have moved */
    unsigned char *to = table->arena.data + table->arena.size;
    memset(to, 0, size);
    *(hpool__entry_header *)to = moved;
    memcpy(hpool__entry_key(to), hpool__entry_key(entry), moved.key_size);
    memcpy(hpool__entry_value(to), table->merged.data, merged_size);
    table->slots[at] = make_slot(table->arena.size, moved.hash);
    table->arena.size += size;
    mark_dead(entry, dead);
    table->dead_bytes += dead;
    if (2 * table->dead_bytes > table->arena.size)
        compact(table);
    return 0;
}

/* Adds a pair to a merge table: merged into its key's entry, or a new
 * entry. The probe is combine_hashed's, kept apart so that the word
 * count's path stays as it is. */
static int merge_hashed(hpool__pair_table *table, uint64_t hash, const void *key, size_t key_size, const void *value,
                        size_t value_size)
{
    uint64_t offset;
    if (2 * (table->count + 1) > table->capacity && grow_slots(table) != 0)
        return HPOOL_ENOMEM;
    size_t mask = table->capacity - 1, at = hash & mask;
    for (uint64_t slot; (slot = table->slots[at]) != 0; at = (at + 1) & mask) {
        if (!slot_may_hold(slot, hash))
            continue;
        unsigned char *entry = slot_entry(table, slot);
        const hpool__entry_header *header = (const hpool__entry_header *)entry;
        if (header->hash == hash && header->key_size == key_size && same_key(hpool__entry_key(entry), key, key_size))
            return merge_into_entry(table, at, value, value_size);
    }
    if (table->arena.size >= SLOT_OFFSET_MASK)
        return HPOOL_ENOMEM;
    if (append_entry(table, hash, key, (uint32_t)key_size, value, (uint32_t)value_size, &offset) != 0)
        return HPOOL_ENOMEM;
    table->slots[at] = make_slot(offset, hash);
    return 0;
}

/* ---- Adding pairs ------------------------------------------------------ */

static int table_add_hashed(hpool__pair_table *table, uint64_t hash, const void *key, size_t key_size,
                            const void *value, size_t value_size)
{
    if (key_size > UINT32_MAX || value_size > UINT32_MAX)
        return hpool__fail(HPOOL_EINVAL, "hpool_emit: a %s of %zu bytes: keys and values are at most 4 GiB",
                           key_size > UINT32_MAX ? "key" : "value", key_size > UINT32_MAX ? key_size : value_size);
    uint64_t offset;
    if (!table->combining)
        return append_entry(table, hash, key, (uint32_t)key_size, value, (uint32_t)value_size, &offset);
    if (!table->staging)
        return merge_hashed(table, hash, key, key_size, value, value_size);
    if (value_size != table->spec->value_size)
        return hpool__fail(HPOOL_EINVAL, "hpool_emit: a value of %zu bytes, and the combiner of \"%s\" takes %zu",
                           value_size, table->spec->name, table->spec->value_size);
    return combine_hashed(table, hash, key, key_size, value, value_size, false);
}

int hpool__pair_table_add(hpool__pair_table *table, const void *key, size_t key_size, const void *value,
                          size_t value_size)
{
    return table_add_hashed(table, hash_key(key, key_size), key, key_size, value, value_size);
}

int hpool__pair_table_merge(hpool__pair_table *into, const hpool__pair_table *from)
{
    HPOOL__FOR_EACH_ENTRY(from, entry)
    {
        const hpool__entry_header *header = (const hpool__entry_header *)entry;
        int rc = table_add_hashed(into, header->hash, hpool__entry_key(entry), header->key_size, hpool__entry_value(entry),
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
    bool readable16 = value_size >= 8; /* see same_short_key */
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
        const unsigned char *value = emitter->staged + hpool__round8(emitter->staged_at[i] + key_size);
        int rc = combine_hashed(table, emitter->staged_hashes[i], key, key_size, value, value_size, readable16);
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
    } else if (size <= 32) { /* HTML's tokens, URLs */
        unsigned char head[16], tail[16];
        memcpy(head, from, 16);
        memcpy(tail, from + size - 16, 16);
        memcpy(to, head, 16);
        memcpy(to + size - 16, tail, 16);
    } else {
        memcpy(to, from, size);
    }
}

/* Stages a pair for a combining table; the caller checked that it fits
 * (HPOOL__STAGED_BYTES) and that the value has the combiner's size. */
static inline __attribute__((always_inline)) int stage_pair(hpool_emitter *emitter, const void *key, size_t key_size,
                                                            const void *value, size_t value_size)
{
    hpool__pair_table *table = emitter->table;
    size_t i = emitter->staged_count, at = emitter->staged_bytes;
    uint64_t hash;
    if (key_size <= 16) { /* staged as its two words: 16 bytes, which the buffer's padding has room for */
        uint64_t a, b;
        short_key_words(key, key_size, &a, &b);
        store_le(emitter->staged + at, a);
        store_le(emitter->staged + at + 8, b);
        hash = hash_finish(a, b, HASH_SEED, key_size);
    } else {
        copy_small(emitter->staged + at, key, key_size);
        hash = hash_key(key, key_size);
    }
    if (table->capacity > 0)
        __builtin_prefetch(&table->slots[hash & (table->capacity - 1)]);
    emitter->staged_hashes[i] = hash;
    emitter->staged_key_sizes[i] = (uint32_t)key_size;
    emitter->staged_at[i] = (uint32_t)at;
    size_t value_at = hpool__round8(at + key_size);
    copy_small(emitter->staged + value_at, value, value_size); /* 8-byte aligned: a combiner may read its type */
    emitter->staged_bytes = value_at + value_size;
    if (++emitter->staged_count == HPOOL__STAGED_PAIRS)
        hpool__emitter_flush(emitter);
    return emitter->error;
}

/* hpool_emit's every other case: its checks, their errors, and pairs
 * that are not staged. */
static __attribute__((noinline)) int emit_checked(hpool_emitter *emitter, const void *key, size_t key_size,
                                                  const void *value, size_t value_size)
{
    if (emitter == NULL)
        return hpool__fail(HPOOL_EINVAL, "hpool_emit: emitter is NULL: only keyed calls have one "
                                         "(task->emitter in hpool_map_reduce_keyed)");
    if ((key == NULL && key_size > 0) || (value == NULL && value_size > 0))
        return hpool__fail(HPOOL_EINVAL, "hpool_emit: %s is NULL with a size of %zu", key == NULL ? "key" : "value",
                           key == NULL ? key_size : value_size);
    hpool__pair_table *table = emitter->table;
    if (key_size > UINT32_MAX || value_size > UINT32_MAX) /* before any hash reads the key */
        return hpool__fail(HPOOL_EINVAL, "hpool_emit: a %s of %zu bytes: keys and values are at most 4 GiB",
                           key_size > UINT32_MAX ? "key" : "value", key_size > UINT32_MAX ? key_size : value_size);
    if (table->staging && key_size <= HPOOL__STAGED_BYTES && hpool__round8(key_size) + value_size <= HPOOL__STAGED_BYTES) {
        if (value_size != table->spec->value_size)
            return hpool__fail(HPOOL_EINVAL,
                               "hpool_emit: a value of %zu bytes, and the combiner of \"%s\" takes %zu", value_size,
                               table->spec->name, table->spec->value_size);
        if (hpool__round8(emitter->staged_bytes + key_size) + value_size > HPOOL__STAGED_BYTES)
            hpool__emitter_flush(emitter);
        return stage_pair(emitter, key, key_size, value, value_size);
    }
    int rc = hpool__pair_table_add(table, key, key_size, value, value_size);
    if (rc != 0 && emitter->error == 0)
        emitter->error = rc;
    return rc;
}

/* The common pair (a word and its count, for a combiner) in one test and
 * no call; the rest in emit_checked, so that this path saves no registers
 * it does not use. */
int hpool_emit(hpool_emitter *emitter, const void *key, size_t key_size, const void *value, size_t value_size)
{
    if (__builtin_expect(emitter != NULL && key != NULL && value != NULL && key_size <= HPOOL__STAGED_BYTES &&
                             value_size == emitter->table->staged_value_size && value_size <= HPOOL__STAGED_BYTES &&
                             hpool__round8(emitter->staged_bytes + key_size) + value_size <= HPOOL__STAGED_BYTES,
                         1))
        return stage_pair(emitter, key, key_size, value, value_size);
    return emit_checked(emitter, key, key_size, value, value_size);
}

/* ---- Pair lists on the wire: u32 key size, u32 value size, key, value --- */

int hpool__pair_encode(hpool__buffer *out, const void *key, uint32_t key_size, const void *value,
                       uint32_t value_size)
{
    uint32_t sizes[2] = {key_size, value_size};
    size_t size = sizeof sizes + (size_t)key_size + value_size;
    if (hpool__buffer_reserve(out, size) != 0)
        return HPOOL_ENOMEM;
    /* One reserve, then copies in place without calls: a word count
     * encodes every one of its pairs at least twice. */
    unsigned char *to = out->data + out->size;
    memcpy(to, sizes, sizeof sizes);
    copy_small(to + sizeof sizes, key, key_size);
    copy_small(to + sizeof sizes + key_size, value, value_size);
    out->size += size;
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
int hpool__pair_decode_next(const unsigned char *data, size_t size, size_t *at, hpool_pair *pair)
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
    HPOOL__FOR_EACH_ENTRY(table, entry)
    {
        const hpool__entry_header *header = (const hpool__entry_header *)entry;
        int rc = hpool__pair_encode(&out[owner_of(header->hash, partitions)], hpool__entry_key(entry), header->key_size,
                             hpool__entry_value(entry), header->value_size);
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
    HPOOL__FOR_EACH_ENTRY(table, entry)
    {
        uint64_t hash = ((const hpool__entry_header *)entry)->hash;
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
int hpool__share_of(uint64_t hash, int shares)
{
    return (int)((uint32_t)hash % (uint32_t)shares);
}

int hpool__pair_tables_add_encoded(hpool__pair_table *tables, int shares, const void *data, size_t size)
{
    size_t at = 0;
    hpool_pair pair;
    int rc;
    while ((rc = hpool__pair_decode_next(data, size, &at, &pair)) == 1) {
        uint64_t hash = hash_key(pair.key, pair.key_size);
        rc = table_add_hashed(&tables[hpool__share_of(hash, shares)], hash, pair.key, pair.key_size, pair.value,
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
        const hpool__entry_header *header = (const hpool__entry_header *)entry;
        size_t size = hpool__entry_size(header->key_size, header->value_size);
        next = entry + size;
        if (hpool__entry_is_dead(entry))
            continue;
        int owner = owner_of(header->hash, ranks), share = hpool__share_of(header->hash, shares);
        if (owner == me && share == keep) {
            if (kept != entry)
                memmove(kept, entry, size); /* may overwrite this header: read above */
            kept += size;
            count++;
        } else if (rc == 0 && owner == me) {
            rc = hpool__buffer_append(&moved[share], entry, size) != 0 ? HPOOL_ENOMEM : 0;
        } else if (rc == 0) {
            rc = hpool__pair_encode(&parts[owner], hpool__entry_key(entry), header->key_size, hpool__entry_value(entry),
                             header->value_size);
        }
    }
    if (kept != end) { /* pairs left, or dead entries dropped */
        table->arena.size = (size_t)(kept - table->arena.data);
        table->count = count;
        table->dead_bytes = 0;
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
             entry += hpool__entry_size(((hpool__entry_header *)entry)->key_size, ((hpool__entry_header *)entry)->value_size)) {
            const hpool__entry_header *header = (const hpool__entry_header *)entry;
            rc = table_add_hashed(owned, header->hash, hpool__entry_key(entry), header->key_size, hpool__entry_value(entry),
                                  header->value_size);
        }
    }
    job->codes[s] = rc;
}

int hpool__pair_tables_gather(hpool__pair_table *mapped, hpool__pair_table *owned, int shares, int ranks, int me,
                              hpool__buffer *parts, hpool__team *team)
{
    int *codes = hpool__calloc((size_t)shares, sizeof *codes);
    hpool__buffer *moved = hpool__calloc((size_t)shares * (size_t)shares, sizeof *moved);
    int rc = codes != NULL && moved != NULL ? 0 : HPOOL_ENOMEM;
    gather_job job = {mapped, owned, shares, ranks, me, parts, moved, codes};
    if (rc == 0)
        hpool__team_parallel(team, split_part, &job, shares);
    for (int t = 0; t < shares && rc == 0; t++)
        rc = codes[t];
    if (rc == 0)
        hpool__team_parallel(team, gather_share, &job, shares);
    for (int s = 0; s < shares && rc == 0; s++)
        rc = codes[s];
    for (size_t m = 0; moved != NULL && m < (size_t)shares * (size_t)shares; m++)
        hpool__buffer_release(&moved[m]);
    free(moved);
    free(codes);
    return rc;
}

