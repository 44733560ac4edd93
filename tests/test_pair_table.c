/* test_pair_table.c: the keyed pair table on its own: combining, merging values of any size, growing, partitioning and its encoding. */
#include "check.h"
#include "keyed/keyed_private.h"

#include <stdlib.h>
#include <string.h>

#define KEYS 20000 /* enough to grow the slots many times */

static void add_u64(void *accumulator, const void *value, void *user)
{
    uint64_t sum, more;
    memcpy(&sum, accumulator, sizeof sum);
    memcpy(&more, value, sizeof more);
    sum += more;
    memcpy(accumulator, &sum, sizeof sum);
}

static const hpool_keyed_reducer summing = {.name = "sum", .value_size = sizeof(uint64_t), .combine = add_u64};
static const hpool_keyed_reducer listing = {.name = "list"};

static size_t key_of(int i, char *key)
{
    return (size_t)snprintf(key, 32, "key-%d", i);
}

/* The sums a table holds, by key number; false if a key is unknown or seen twice. */
static bool read_sums(const hpool__pair_table *table, uint64_t *sums, unsigned char *seen)
{
    bool fine = true;
    HPOOL__FOR_EACH_ENTRY(table, entry)
    {
        const hpool__entry_header *header = (const hpool__entry_header *)entry;
        char key[32] = {0};
        memcpy(key, hpool__entry_key(entry), header->key_size < 31 ? header->key_size : 31);
        int i = atoi(key + 4);
        if (strncmp(key, "key-", 4) != 0 || i < 0 || i >= KEYS || seen[i] || header->value_size != 8) {
            fine = false;
            continue;
        }
        seen[i] = 1;
        memcpy(&sums[i], hpool__entry_value(entry), sizeof sums[i]);
    }
    return fine;
}

/* Every key three times, through the emitter's staging and through plain
 * adds: one entry per key holding the sum. */
static void test_combining(void)
{
    hpool__pair_table table;
    hpool__pair_table_init(&table, &summing);
    hpool_emitter *emitter = calloc(1, sizeof *emitter);
    emitter->table = &table;
    char key[32];
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < KEYS; i++) {
            uint64_t value = (uint64_t)i;
            size_t size = key_of(i, key);
            if (round == 1)
                CHECK_RC(0, hpool__pair_table_add(&table, key, size, &value, sizeof value));
            else
                CHECK_RC(0, hpool_emit(emitter, key, size, &value, sizeof value));
        }
    hpool__emitter_flush(emitter);
    CHECK_RC(0, emitter->error);
    CHECK(table.count == KEYS);
    uint64_t *sums = calloc(KEYS, sizeof *sums);
    unsigned char *seen = calloc(KEYS, 1);
    CHECK(read_sums(&table, sums, seen));
    for (int i = 0; i < KEYS; i++)
        if (!seen[i] || sums[i] != 3 * (uint64_t)i) {
            CHECK(seen[i] && sums[i] == 3 * (uint64_t)i);
            break;
        }
    /* A value of the wrong size is refused, not folded. */
    uint32_t small = 1;
    CHECK_RC(HPOOL_EINVAL, hpool_emit(emitter, "key-1", 5, &small, sizeof small));
    /* Sizes past 4 GiB are refused before anything reads them (a size
     * near SIZE_MAX rounded up to 0, and was copied). */
    static const size_t vast[] = {SIZE_MAX, SIZE_MAX - 6, (size_t)UINT32_MAX + 1};
    uint64_t eight = 8;
    for (size_t v = 0; v < sizeof vast / sizeof vast[0]; v++) {
        CHECK_RC(HPOOL_EINVAL, hpool_emit(emitter, "key-1", vast[v], &eight, sizeof eight));
        CHECK_RC(HPOOL_EINVAL, hpool_emit(emitter, "key-1", 5, &eight, vast[v]));
    }

    /* Merging a table into another combines their keys. */
    hpool__pair_table other;
    hpool__pair_table_init(&other, &summing);
    for (int i = 0; i < KEYS; i += 2) {
        uint64_t one = 1;
        CHECK_RC(0, hpool__pair_table_add(&other, key, key_of(i, key), &one, sizeof one));
    }
    CHECK_RC(0, hpool__pair_table_merge(&table, &other));
    memset(seen, 0, KEYS);
    CHECK(read_sums(&table, sums, seen));
    CHECK(table.count == KEYS && sums[10] == 31 && sums[11] == 33);

    hpool__pair_table_release(&other);
    hpool__pair_table_release(&table);
    free(emitter);
    free(sums);
    free(seen);
}

/* A key of size bytes for number i: i's digits, then NUL bytes and a
 * filler up to size, so the NULs and the tail tell keys apart. */
static size_t odd_key(int i, size_t size, unsigned char *key)
{
    memset(key, 0, size);
    char digits[16];
    int n = snprintf(digits, sizeof digits, "%d", i);
    memcpy(key, digits, (size_t)n < size ? (size_t)n : size);
    for (size_t at = (size_t)n + 1; at < size; at += 3)
        key[at] = (unsigned char)(i * 7 + (int)at);
    return size;
}

/* The built-in u64 sum, added in place with no call, against the same
 * sums through a combiner called by pointer: short keys, keys past any
 * inline size, keys with NUL bytes, the empty key, values at odd
 * addresses (as encoded pairs put them), across many growths. */
static void test_sum_builtin(void)
{
    static const hpool_keyed_reducer builtin = {.name = "builtin", .value_size = 8,
                                                .combine = hpool_combine_sum_u64};
    hpool__pair_table fast, slow;
    hpool__pair_table_init(&fast, &builtin);
    hpool__pair_table_init(&slow, &summing);
    CHECK(fast.sum_u64 && !slow.sum_u64);
    hpool_emitter *emitter = calloc(1, sizeof *emitter);
    emitter->table = &fast;
    static const size_t sizes[] = {0, 1, 3, 7, 8, 9, 16, 17, 24, 25, 40, 64, 300, 5000};
    const size_t kinds = sizeof sizes / sizeof sizes[0];
    unsigned char *key = malloc(5000);
    unsigned char odd[9]; /* a value at an odd address */
    hpool__buffer encoded = {0};
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < KEYS; i++) {
            size_t size = odd_key(i, sizes[i % kinds], key);
            if (size == 0 && i >= (int)kinds)
                continue; /* one empty key is enough */
            uint64_t value = (uint64_t)i * 1000003u + (uint64_t)round;
            memcpy(odd + 1, &value, 8);
            if (round == 0) {
                CHECK_RC(0, hpool_emit(emitter, key, size, &value, 8));
            } else if (round == 1) {
                CHECK_RC(0, hpool__pair_table_add(&fast, key, size, odd + 1, 8));
            } else {
                CHECK_RC(0, hpool__pair_encode(&encoded, key, (uint32_t)size, &value, 8));
            }
            CHECK_RC(0, hpool__pair_table_add(&slow, key, size, &value, 8));
        }
    hpool__emitter_flush(emitter);
    CHECK_RC(0, emitter->error);
    CHECK_RC(0, hpool__pair_tables_add_encoded(&fast, 1, encoded.data, encoded.size)); /* values unaligned */
    /* Sums wrap at 2^64. */
    uint64_t big = UINT64_MAX;
    CHECK_RC(0, hpool__pair_table_add(&fast, "wrap", 4, &big, 8));
    CHECK_RC(0, hpool__pair_table_add(&slow, "wrap", 4, &big, 8));
    uint64_t two = 2;
    CHECK_RC(0, hpool__pair_table_add(&fast, "wrap", 4, &two, 8));
    CHECK_RC(0, hpool__pair_table_add(&slow, "wrap", 4, &two, 8));
    CHECK(fast.count == slow.count && fast.count > (size_t)KEYS / 2);
    CHECK(fast.arena.size == slow.arena.size);

    /* The same keys with the same sums: the same bytes encoded by key.
     * (Not the same arenas: the emitter adds a key too long to stage at
     * once, ahead of the pairs it holds.) */
    hpool__buffer by_key_fast = {0}, by_key_slow = {0};
    CHECK_RC(0, hpool__pair_table_encode_by_key(&fast, &by_key_fast));
    CHECK_RC(0, hpool__pair_table_encode_by_key(&slow, &by_key_slow));
    CHECK(by_key_fast.size == by_key_slow.size && memcmp(by_key_fast.data, by_key_slow.data, by_key_fast.size) == 0);
    hpool__buffer_release(&by_key_fast);
    hpool__buffer_release(&by_key_slow);
    uint64_t wrapped = 0;
    HPOOL__FOR_EACH_ENTRY(&fast, entry)
    {
        const hpool__entry_header *header = (const hpool__entry_header *)entry;
        if (header->key_size == 4 && memcmp(hpool__entry_key(entry), "wrap", 4) == 0)
            memcpy(&wrapped, hpool__entry_value(entry), 8);
    }
    CHECK(wrapped == 1);

    /* Keys that differ only after a NUL, or only in length, stay apart. */
    hpool__pair_table nul;
    hpool__pair_table_init(&nul, &builtin);
    uint64_t one = 1;
    CHECK_RC(0, hpool__pair_table_add(&nul, "a\0b", 3, &one, 8));
    CHECK_RC(0, hpool__pair_table_add(&nul, "a\0c", 3, &one, 8));
    CHECK_RC(0, hpool__pair_table_add(&nul, "a", 1, &one, 8));
    CHECK_RC(0, hpool__pair_table_add(&nul, "a\0", 2, &one, 8));
    CHECK_RC(0, hpool__pair_table_add(&nul, "a\0b", 3, &one, 8));
    CHECK(nul.count == 4);
    HPOOL__FOR_EACH_ENTRY(&nul, entry)
    {
        const hpool__entry_header *header = (const hpool__entry_header *)entry;
        uint64_t sum;
        memcpy(&sum, hpool__entry_value(entry), 8);
        CHECK(sum == (header->key_size == 3 && hpool__entry_key(entry)[2] == 'b' ? 2u : 1u));
    }
    /* A value of the wrong size is refused, not added. */
    uint32_t small = 1;
    emitter->table = &nul;
    CHECK_RC(HPOOL_EINVAL, hpool_emit(emitter, "a", 1, &small, sizeof small));
    CHECK_RC(HPOOL_EINVAL, hpool__pair_table_add(&nul, "a", 1, &small, sizeof small));

    /* The function itself, as a plain reducer's combine would call it. */
    uint64_t accumulator = 40, more = 2;
    hpool_combine_sum_u64(&accumulator, &more, NULL);
    CHECK(accumulator == 42);

    /* Only with 8-byte values is it taken for the built-in sum. */
    static const hpool_keyed_reducer narrow = {.name = "narrow", .value_size = 4, .combine = hpool_combine_sum_u64};
    hpool__pair_table other;
    hpool__pair_table_init(&other, &narrow);
    CHECK(!other.sum_u64);
    hpool__pair_table_release(&other);

    hpool__pair_table_release(&nul);
    hpool__buffer_release(&encoded);
    hpool__pair_table_release(&fast);
    hpool__pair_table_release(&slow);
    free(key);
    free(emitter);
}

/* Without a combiner every pair is kept, in the order emitted. */
static void test_listing(void)
{
    hpool__pair_table table;
    hpool__pair_table_init(&table, &listing);
    for (int i = 0; i < 5; i++)
        CHECK_RC(0, hpool__pair_table_add(&table, "same", 4, &i, sizeof i));
    CHECK(table.count == 5);
    int expected = 0;
    HPOOL__FOR_EACH_ENTRY(&table, entry)
    {
        int value;
        memcpy(&value, hpool__entry_value(entry), sizeof value);
        CHECK(value == expected);
        expected++;
    }
    CHECK(expected == 5);
    hpool__pair_table_release(&table);
}

/* Partitions: every key goes to exactly one owner, the same owner from any
 * table, and the encoded partitions decode back to the same sums. */
static void test_partition(void)
{
    enum { RANKS = 3 };
    hpool__pair_table a, b, owned[RANKS];
    hpool__pair_table_init(&a, &summing);
    hpool__pair_table_init(&b, &summing);
    char key[32];
    for (int i = 0; i < KEYS; i++) {
        uint64_t value = 1;
        size_t size = key_of(i, key);
        CHECK_RC(0, hpool__pair_table_add(&a, key, size, &value, sizeof value));
        value = 2;
        CHECK_RC(0, hpool__pair_table_add(&b, key, size, &value, sizeof value));
    }
    hpool__buffer parts_a[RANKS] = {{0}}, parts_b[RANKS] = {{0}};
    CHECK_RC(0, hpool__pair_table_partition(&a, RANKS, parts_a));
    CHECK_RC(0, hpool__pair_table_partition(&b, RANKS, parts_b));
    uint64_t *sums = calloc(KEYS, sizeof *sums);
    unsigned char *seen = calloc(KEYS, 1);
    size_t total = 0;
    for (int r = 0; r < RANKS; r++) {
        hpool__pair_table_init(&owned[r], &summing);
        CHECK_RC(0, hpool__pair_tables_add_encoded(&owned[r], 1, parts_a[r].data, parts_a[r].size));
        CHECK_RC(0, hpool__pair_tables_add_encoded(&owned[r], 1, parts_b[r].data, parts_b[r].size));
        total += owned[r].count;
        CHECK(read_sums(&owned[r], sums, seen)); /* a key in two partitions shows as seen twice */
        CHECK(owned[r].count > KEYS / RANKS / 2); /* the hash spreads keys */
    }
    CHECK(total == KEYS);
    for (int i = 0; i < KEYS; i++)
        if (sums[i] != 3) {
            CHECK(sums[i] == 3);
            break;
        }

    /* A cut encoding is refused at every length but whole pairs. */
    const unsigned char *data = parts_a[0].data;
    size_t size = parts_a[0].size;
    size_t first_pair_end = 0;
    hpool_pair pair;
    CHECK(hpool__pair_decode_next(data, size, &first_pair_end, &pair) == 1);
    for (size_t cut = 1; cut < first_pair_end; cut++) {
        size_t at = 0;
        CHECK_RC(HPOOL_EPEER, hpool__pair_decode_next(data, cut, &at, &pair));
    }
    hpool__pair_table spoiled;
    hpool__pair_table_init(&spoiled, &summing);
    CHECK_RC(HPOOL_EPEER, hpool__pair_tables_add_encoded(&spoiled, 1, data, first_pair_end - 1));
    hpool__pair_table_release(&spoiled);

    for (int r = 0; r < RANKS; r++) {
        hpool__buffer_release(&parts_a[r]);
        hpool__buffer_release(&parts_b[r]);
        hpool__pair_table_release(&owned[r]);
    }
    hpool__pair_table_release(&a);
    hpool__pair_table_release(&b);
    free(sums);
    free(seen);
}

/* Out of memory while growing: HPOOL_ENOMEM, and the table still holds
 * every pair it took before. */
static void test_out_of_memory(void)
{
    hpool__pair_table table;
    hpool__pair_table_init(&table, &summing);
    char key[32];
    int added = 0;
    hpool__test_fail_allocation(3, true);
    int rc = 0;
    for (int i = 0; i < KEYS && rc == 0; i++) {
        uint64_t value = 1;
        rc = hpool__pair_table_add(&table, key, key_of(i, key), &value, sizeof value);
        if (rc == 0)
            added++;
    }
    hpool__test_fail_allocation(-1, false);
    CHECK_RC(HPOOL_ENOMEM, rc);
    CHECK(added > 0 && table.count == (size_t)added);
    uint64_t *sums = calloc(KEYS, sizeof *sums);
    unsigned char *seen = calloc(KEYS, 1);
    CHECK(read_sums(&table, sums, seen));
    hpool__pair_table_release(&table);
    free(sums);
    free(seen);
}

/* ---- Merge tables ----------------------------------------------------- */

static uint64_t merge_calls;

/* The sorted union of two sorted lists of u64 ids. */
static int union_ids(const void *a, size_t a_size, const void *b, size_t b_size, void *out, size_t *out_size,
                     void *user)
{
    const unsigned char *x = a, *y = b;
    unsigned char *to = out;
    size_t i = 0, j = 0, n = 0;
    merge_calls++;
    while (i < a_size || j < b_size) {
        uint64_t u = UINT64_MAX, v = UINT64_MAX;
        if (i < a_size)
            memcpy(&u, x + i, 8);
        if (j < b_size)
            memcpy(&v, y + j, 8);
        uint64_t next = i < a_size && (j == b_size || u <= v) ? u : v;
        i += i < a_size && u == next ? 8 : 0;
        j += j < b_size && v == next ? 8 : 0;
        memcpy(to + n, &next, 8);
        n += 8;
    }
    *out_size = n;
    return 0;
}

/* The larger of two u64s: same size, new content, so merged in place. */
static int larger(const void *a, size_t a_size, const void *b, size_t b_size, void *out, size_t *out_size, void *user)
{
    uint64_t x, y;
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    memcpy(out, x > y ? &x : &y, 8);
    *out_size = 8;
    return 0;
}

/* Asks for 100 bytes more than offered, then writes a union padded to that. */
static int union_asking(const void *a, size_t a_size, const void *b, size_t b_size, void *out, size_t *out_size,
                        void *user)
{
    if (*out_size < a_size + b_size + 100) {
        *out_size = a_size + b_size + 100;
        (*(int *)user)++;
        return 0;
    }
    size_t room = *out_size;
    union_ids(a, a_size, b, b_size, out, out_size, NULL);
    return *out_size <= room ? 0 : 1;
}

static int failing(const void *a, size_t a_size, const void *b, size_t b_size, void *out, size_t *out_size, void *user)
{
    return 66;
}

static int too_big(const void *a, size_t a_size, const void *b, size_t b_size, void *out, size_t *out_size, void *user)
{
    *out_size = (size_t)UINT32_MAX + 1;
    return 0;
}

static const hpool_keyed_reducer merging = {.name = "union", .merge = union_ids};

/* True if every key of table holds the ids 0 .. ids-1 and no key shows twice. */
static bool holds_ids(const hpool__pair_table *table, size_t keys, uint64_t ids)
{
    unsigned char *seen = calloc(keys, 1);
    bool fine = true;
    size_t visited = 0;
    HPOOL__FOR_EACH_ENTRY(table, entry)
    {
        const hpool__entry_header *header = (const hpool__entry_header *)entry;
        char key[32] = {0};
        memcpy(key, hpool__entry_key(entry), header->key_size < 31 ? header->key_size : 31);
        int i = atoi(key + 4);
        fine = fine && i >= 0 && (size_t)i < keys && !seen[i] && header->value_size == 8 * ids;
        if (i >= 0 && (size_t)i < keys)
            seen[i] = 1;
        for (uint64_t k = 0; fine && k < ids; k++) {
            uint64_t id;
            memcpy(&id, hpool__entry_value(entry) + 8 * k, 8);
            fine = id == k;
        }
        visited++;
    }
    free(seen);
    return fine && visited == keys && table->count == keys;
}

/* Lists that grow with every id: each merge moves its key to a new entry
 * and leaves the old one dead; iteration, counts, partitions and sorted
 * runs see only the live ones, and compaction keeps the arena within twice
 * what is live. */
static void test_merging(void)
{
    enum { MERGE_KEYS = 3000, IDS = 12 };
    hpool__pair_table table;
    hpool__pair_table_init(&table, &merging);
    CHECK(table.combining && !table.staging);
    hpool_emitter *emitter = calloc(1, sizeof *emitter);
    emitter->table = &table;
    char key[32];
    size_t live_bytes = 0;
    for (uint64_t id = IDS; id-- > 0;) /* newest first: each union puts it in front */
        for (int i = 0; i < MERGE_KEYS; i++) {
            size_t size = key_of(i, key);
            if (id % 2)
                CHECK_RC(0, hpool_emit(emitter, key, size, &id, sizeof id));
            else
                CHECK_RC(0, hpool__pair_table_add(&table, key, size, &id, sizeof id));
            CHECK(2 * table.dead_bytes <= table.arena.size);
        }
    for (int i = 0; i < MERGE_KEYS; i++)
        live_bytes += hpool__entry_size((uint32_t)key_of(i, key), 8 * IDS);
    CHECK(holds_ids(&table, MERGE_KEYS, IDS));
    CHECK(table.arena.size <= 2 * live_bytes + 1024 && table.arena.size >= live_bytes);
    /* an id the lists hold already: the same size, merged in place */
    size_t arena_size = table.arena.size, calls = merge_calls;
    uint64_t zero = 0;
    CHECK_RC(0, hpool__pair_table_add(&table, "key-7", 5, &zero, sizeof zero));
    CHECK(merge_calls == calls + 1 && table.arena.size == arena_size && holds_ids(&table, MERGE_KEYS, IDS));

    /* Dead entries are not shipped: the partitions decode into a table that
     * holds the same lists, and the sorted run has one pair per key. */
    enum { RANKS = 2 };
    hpool__buffer parts[RANKS] = {{0}};
    CHECK_RC(0, hpool__pair_table_partition(&table, RANKS, parts));
    hpool__pair_table owned;
    hpool__pair_table_init(&owned, &merging);
    for (int r = 0; r < RANKS; r++)
        CHECK_RC(0, hpool__pair_tables_add_encoded(&owned, 1, parts[r].data, parts[r].size));
    CHECK(holds_ids(&owned, MERGE_KEYS, IDS));
    hpool__buffer sorted = {0};
    CHECK_RC(0, hpool__pair_table_encode_by_key(&table, &sorted));
    size_t at = 0, pairs = 0;
    hpool_pair pair;
    while (hpool__pair_decode_next(sorted.data, sorted.size, &at, &pair) == 1)
        pairs += pair.value_size == 8 * IDS;
    CHECK(pairs == MERGE_KEYS);
    /* merging one merge table into another merges the lists */
    CHECK_RC(0, hpool__pair_table_merge(&owned, &table));
    CHECK(holds_ids(&owned, MERGE_KEYS, IDS));

    /* The empty key hashes to non-zero, so no live entry looks dead. */
    hpool__pair_table plain;
    hpool__pair_table_init(&plain, &listing);
    CHECK_RC(0, hpool__pair_table_add(&plain, "", 0, "", 0));
    CHECK(((const hpool__entry_header *)plain.arena.data)->hash != 0 && !hpool__entry_is_dead(plain.arena.data));

    for (int r = 0; r < RANKS; r++)
        hpool__buffer_release(&parts[r]);
    hpool__buffer_release(&sorted);
    hpool__pair_table_release(&plain);
    hpool__pair_table_release(&owned);
    hpool__pair_table_release(&table);
    free(emitter);
}

/* New bytes of the same size stay in place; a merge asking for more room
 * gets it on a second call; a failing merge and one past UINT32_MAX bytes
 * fail with HPOOL_EFAILED, their code kept and the value as it was. */
static void test_merge_calls(void)
{
    hpool_keyed_reducer largest = {.name = "max", .merge = larger};
    hpool__pair_table table;
    hpool__pair_table_init(&table, &largest);
    uint64_t values[] = {5, 3, 9, 1};
    for (int i = 0; i < 4; i++)
        CHECK_RC(0, hpool__pair_table_add(&table, "k", 1, &values[i], 8));
    uint64_t got = 0;
    memcpy(&got, hpool__entry_value(table.arena.data), 8);
    CHECK(got == 9 && table.count == 1 && table.arena.size == hpool__entry_size(1, 8));
    hpool__pair_table_release(&table);

    int asks = 0;
    hpool_keyed_reducer asking = {.name = "asking", .merge = union_asking, .user = &asks};
    hpool__pair_table_init(&table, &asking);
    for (uint64_t id = 0; id < 3; id++)
        CHECK_RC(0, hpool__pair_table_add(&table, "k", 1, &id, 8));
    CHECK(asks == 2 && table.count == 1);
    HPOOL__FOR_EACH_ENTRY(&table, entry)
    {
        const unsigned char *ids = hpool__entry_value(entry);
        uint64_t second = 0;
        memcpy(&second, ids + 8, 8);
        CHECK(((const hpool__entry_header *)entry)->value_size == 24 && second == 1);
    }
    hpool__pair_table_release(&table);

    hpool_merge_fn *failures[] = {failing, too_big};
    const int codes[] = {66, HPOOL_EINVAL};
    for (int f = 0; f < 2; f++) {
        hpool_keyed_reducer spec = {.name = "failing", .merge = failures[f]};
        hpool__pair_table_init(&table, &spec);
        hpool_emitter emitter = {.table = &table};
        uint64_t id = 1;
        CHECK_RC(0, hpool_emit(&emitter, "k", 1, &id, 8));
        CHECK_RC(HPOOL_EFAILED, hpool_emit(&emitter, "k", 1, &id, 8));
        CHECK(table.merge_code == codes[f] && table.count == 1);
        CHECK(hpool__entry_value(table.arena.data)[0] == 1);
        /* the first code stays */
        CHECK_RC(HPOOL_EFAILED, hpool__pair_table_add(&table, "k", 1, &id, 8));
        CHECK(table.merge_code == codes[f]);
        hpool__pair_table_release(&table);
    }
}

/* Keys whose hashes collide (the test build keeps 3 bits of each): only
 * their bytes tell them apart, so every compare path is on trial. Keys of
 * 0 to 40 bytes and 64, each also with one byte changed at each place,
 * the last included; staged pairs follow longer ones, so the staging
 * buffer holds stale bytes past each key. Each key is emitted twice and
 * added once, through the built-in sum and a combiner called by pointer:
 * every entry must be one of the keys, once, holding 3. */
static void test_colliding_hashes(void)
{
    enum { LONGEST = 64, MOST = 1 + 41 * 42 / 2 + 65 };
    static unsigned char keys[MOST][LONGEST];
    static size_t sizes[MOST];
    size_t count = 0;
    for (size_t size = 0; size <= LONGEST; size = size == 40 ? LONGEST : size + 1)
        for (size_t changed = 0; changed <= size; changed++) { /* changed == size: the key as it is */
            for (size_t at = 0; at < size; at++)
                keys[count][at] = (unsigned char)('a' + (at * 7 + size) % 26);
            if (changed < size)
                keys[count][changed] ^= 0x20;
            sizes[count++] = size;
        }
    CHECK(count <= MOST);
    static const hpool_keyed_reducer builtin = {.name = "builtin", .value_size = 8, .combine = hpool_combine_sum_u64};
    const hpool_keyed_reducer *specs[] = {&builtin, &summing};
    hpool__test_hash_mask = 0x7;
    for (size_t s = 0; s < 2; s++) {
        hpool__pair_table table;
        hpool__pair_table_init(&table, specs[s]);
        hpool_emitter *emitter = calloc(1, sizeof *emitter);
        emitter->table = &table;
        uint64_t one = 1;
        for (int round = 0; round < 3; round++)
            for (size_t k = 0; k < count; k++) {
                size_t i = round == 1 ? count - 1 - k : k; /* long keys before short ones, too */
                if (round < 2)
                    CHECK_RC(0, hpool_emit(emitter, keys[i], sizes[i], &one, sizeof one));
                else
                    CHECK_RC(0, hpool__pair_table_add(&table, keys[i], sizes[i], &one, sizeof one));
            }
        hpool__emitter_flush(emitter);
        CHECK_RC(0, emitter->error);
        CHECK(table.count == count);
        unsigned char *seen = calloc(count, 1);
        HPOOL__FOR_EACH_ENTRY(&table, entry)
        {
            const hpool__entry_header *header = (const hpool__entry_header *)entry;
            size_t found = count;
            for (size_t i = 0; i < count && found == count; i++)
                if (sizes[i] == header->key_size && memcmp(keys[i], hpool__entry_key(entry), sizes[i]) == 0)
                    found = i;
            uint64_t sum = 0;
            memcpy(&sum, hpool__entry_value(entry), sizeof sum);
            CHECK(found < count && !seen[found] && sum == 3);
            if (found < count)
                seen[found] = 1;
        }
        free(seen);
        free(emitter);
        hpool__pair_table_release(&table);
    }
    hpool__test_hash_mask = UINT64_MAX;
}

int main(void)
{
    test_colliding_hashes();
    test_combining();
    test_sum_builtin();
    test_listing();
    test_partition();
    test_out_of_memory();
    test_merging();
    test_merge_calls();
    if (check_failures == 0)
        printf("pair table: all checks passed\n");
    return check_failures ? 1 : 0;
}
