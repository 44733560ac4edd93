/* test_pair_table.c: the keyed pair table on its own: combining, growing, merging, partitioning and its encoding. */
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

int main(void)
{
    test_combining();
    test_listing();
    test_partition();
    test_out_of_memory();
    if (check_failures == 0)
        printf("pair table: all checks passed\n");
    return check_failures ? 1 : 0;
}
