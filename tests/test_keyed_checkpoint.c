/* test_keyed_checkpoint.c: a rank's map-side pairs saved to a checkpoint and restored into another store: the same pairs, and every way a file is refused. */
#define _GNU_SOURCE /* truncate, mkdtemp under -std=c11 */
#include "check.h"
#include "keyed/keyed_private.h"

#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void add_u64(void *accumulator, const void *value, void *user)
{
    (void)user;
    uint64_t sum, more;
    memcpy(&sum, accumulator, sizeof sum);
    memcpy(&more, value, sizeof more);
    sum += more;
    memcpy(accumulator, &sum, sizeof sum);
}

/* The poisoned element: a merge that meets it fails, to test a restore
 * whose merge fails. */
#define POISON 666u
#define MERGE_FAILURE 42

/* Values are sorted sets of u32; the merge is their union. */
static int union_u32(const void *a, size_t a_size, const void *b, size_t b_size, void *out, size_t *out_size,
                     void *user)
{
    (void)user;
    size_t na = a_size / 4, nb = b_size / 4, n = 0, i = 0, j = 0;
    if (*out_size < a_size + b_size) {
        *out_size = a_size + b_size;
        return 0;
    }
    uint32_t x = 0, y = 0;
    unsigned char *to = out;
    while (i < na || j < nb) {
        if (i < na)
            memcpy(&x, (const unsigned char *)a + 4 * i, 4);
        if (j < nb)
            memcpy(&y, (const unsigned char *)b + 4 * j, 4);
        if ((i < na && x == POISON) || (j < nb && y == POISON))
            return MERGE_FAILURE;
        uint32_t next;
        if (j >= nb || (i < na && x < y))
            next = x, i++;
        else if (i >= na || y < x)
            next = y, j++;
        else
            next = x, i++, j++;
        memcpy(to + 4 * n++, &next, 4);
    }
    *out_size = 4 * n;
    return 0;
}

static int emit_nothing(hpool_task *task, void *user)
{
    (void)task;
    (void)user;
    return 0;
}

static const hpool_function functions[] = {{.name = "emit_nothing", .map = emit_nothing}};
static const hpool_keyed_reducer reducers[] = {
    {.name = "sum", .value_size = sizeof(uint64_t), .combine = add_u64},
    {.name = "union", .merge = union_u32},
    {.name = "list"},
};
enum { SUM, UNION, LIST };

static char directory[] = "/tmp/hpool-test-checkpoint-XXXXXX";

static char *path_in_directory(const char *name)
{
    static char paths[8][512];
    static int next;
    char *path = paths[next++ % 8];
    snprintf(path, sizeof paths[0], "%s/%s", directory, name);
    return path;
}

static bool detail_has(int code, const char *needle)
{
    char detail[512];
    hpool_error_detail(code, detail, sizeof detail);
    if (strstr(detail, needle) != NULL)
        return true;
    fprintf(stderr, "detail \"%s\" lacks \"%s\"\n", detail, needle);
    return false;
}

static bool store_exists(hpool_pool *pool, uint32_t call_id)
{
    for (hpool__keyed_store *store = pool->keyed_stores; store != NULL; store = store->next)
        if (store->call_id == call_id)
            return true;
    return false;
}

static hpool__keyed_store *store_of(hpool_pool *pool, uint32_t call_id)
{
    for (hpool__keyed_store *store = pool->keyed_stores; store != NULL; store = store->next)
        if (store->call_id == call_id)
            return store;
    return NULL;
}

static void free_store(hpool_pool *pool, uint32_t call_id)
{
    for (hpool__keyed_store **link = &pool->keyed_stores; *link != NULL; link = &(*link)->next)
        if ((*link)->call_id == call_id) {
            hpool__keyed_store *store = *link;
            *link = store->next;
            hpool__keyed_store_free(store);
            return;
        }
}

/* ---- The pairs a store holds, as a sorted list --------------------------- */

typedef struct pair_list {
    hpool__buffer encoded; /* hpool__pair_encode's layout */
    hpool_pair *pairs;
    size_t count;
} pair_list;

static int compare_pair_bytes(const void *a, const void *b)
{
    const hpool_pair *x = a, *y = b;
    int order = hpool__compare_bytes(x->key, x->key_size, y->key, y->key_size);
    return order != 0 ? order : hpool__compare_bytes(x->value, x->value_size, y->value, y->value_size);
}

/* Combines encoded pairs as spec does (so duplicates across tables and
 * spill files count once per key), then sorts them by key and value. */
static void list_of(const hpool_keyed_reducer *spec, const hpool__buffer *encoded, pair_list *list)
{
    hpool__pair_table table;
    hpool__pair_table_init(&table, spec);
    CHECK_RC(0, hpool__pair_tables_add_encoded(&table, 1, encoded->data, encoded->size));
    memset(list, 0, sizeof *list);
    HPOOL__FOR_EACH_ENTRY(&table, entry)
    {
        const hpool__entry_header *header = (const hpool__entry_header *)entry;
        CHECK_RC(0, hpool__pair_encode(&list->encoded, hpool__entry_key(entry), header->key_size,
                                       hpool__entry_value(entry), header->value_size));
    }
    size_t count = table.count;
    hpool__pair_table_release(&table);
    list->pairs = calloc(count + 1, sizeof *list->pairs);
    size_t at = 0;
    hpool_pair pair;
    while (hpool__pair_decode_next(list->encoded.data, list->encoded.size, &at, &pair) == 1)
        list->pairs[list->count++] = pair;
    qsort(list->pairs, list->count, sizeof *list->pairs, compare_pair_bytes);
}

/* Every map-side pair of a store: its mapped tables and its outbox files,
 * whose positions go back to their ends. */
static void list_store(hpool__keyed_store *store, pair_list *list)
{
    hpool__buffer encoded = {0};
    for (int t = 0; t < store->thread_count; t++) {
        hpool__emitter_flush(&store->emitters[t]);
        CHECK_RC(0, hpool__pair_table_partition(&store->mapped[t], 1, &encoded));
    }
    for (int rank = 0; store->outbox != NULL && rank < store->ranks; rank++) {
        FILE *file = store->outbox[rank];
        bool ended = false;
        CHECK_RC(0, hpool__spill_rewind(store, file));
        while (!ended)
            CHECK_RC(0, hpool__spill_read_piece(store, file, &encoded, SIZE_MAX, &ended));
        CHECK(fseek(file, 0, SEEK_END) == 0);
    }
    list_of(store->mapped[0].spec, &encoded, list);
    hpool__buffer_release(&encoded);
}

static void list_release(pair_list *list)
{
    hpool__buffer_release(&list->encoded);
    free(list->pairs);
}

static bool lists_equal(const pair_list *a, const pair_list *b)
{
    if (a->count != b->count) {
        fprintf(stderr, "%zu pairs, and %zu expected\n", a->count, b->count);
        return false;
    }
    for (size_t i = 0; i < a->count; i++)
        if (compare_pair_bytes(&a->pairs[i], &b->pairs[i]) != 0) {
            fprintf(stderr, "pair %zu differs (key of %zu bytes)\n", i, a->pairs[i].key_size);
            return false;
        }
    return true;
}

/* ---- Pairs to emit -------------------------------------------------------- */

/* The i-th pair of a run for reducer: keys repeat (so they combine), and
 * include the empty key and keys with NUL bytes. */
static void pair_number(int reducer, int i, int keys, unsigned char *key, size_t *key_size, unsigned char *value,
                        size_t *value_size)
{
    int k = i % keys;
    if (k == 0) {
        *key_size = 0;
    } else if (k == 1) {
        memcpy(key, "\0", 1);
        *key_size = 1;
    } else if (k == 2) {
        memcpy(key, "a\0b\0", 4);
        *key_size = 4;
    } else {
        *key_size = (size_t)snprintf((char *)key, 32, "key-%d", k);
        key[*key_size / 2] = '\0'; /* a NUL inside most keys too */
    }
    if (reducer == SUM) {
        uint64_t count = (uint64_t)(i % 7) + 1;
        memcpy(value, &count, sizeof count);
        *value_size = sizeof count;
    } else if (reducer == UNION) {
        uint32_t element = (uint32_t)(i % 13);
        memcpy(value, &element, sizeof element);
        *value_size = sizeof element;
    } else {
        *value_size = (size_t)(i % 5); /* the empty value too */
        memset(value, 'a' + i % 26, *value_size);
    }
}

/* Emits count pairs into a store, spread over its threads a chunk at a
 * time, and into expected, encoded. */
static void emit_pairs(hpool__keyed_store *store, int reducer, int first, int count, int keys, hpool__buffer *expected)
{
    unsigned char key[32], value[16];
    size_t key_size, value_size;
    for (int i = first; i < first + count; i++) {
        int thread = (i / 100) % store->thread_count;
        pair_number(reducer, i, keys, key, &key_size, value, &value_size);
        CHECK_RC(0, hpool_emit(hpool__keyed_emitter(store, thread), key, key_size, value, value_size));
        CHECK_RC(0, hpool__pair_encode(expected, key, (uint32_t)key_size, value, (uint32_t)value_size));
        if (i % 100 == 99 || i == first + count - 1)
            CHECK_RC(0, hpool__keyed_chunk_done(store, thread, 0));
    }
}

static void check_store_holds(hpool__keyed_store *store, const hpool__buffer *expected)
{
    pair_list want, have;
    list_of(store->mapped[0].spec, expected, &want);
    list_store(store, &have);
    CHECK(lists_equal(&have, &want));
    list_release(&want);
    list_release(&have);
}

static uint32_t next_call = 100;

/* A store for reducer, filled, checkpointed and restored into another
 * store; both hold the pairs emitted, the first still after more emits
 * (its spill files still append), and the restored one spills as a chunk
 * would under a small budget. */
static void test_round_trip(hpool_pool *pool, int reducer, int count, int keys, size_t budget)
{
    uint32_t original = next_call++, restored = next_call++;
    hpool__keyed_store *store = hpool__keyed_store_get(pool, original, reducer);
    CHECK(store != NULL);
    if (store == NULL)
        return;
    store->budget = budget;
    hpool__buffer expected = {0};
    emit_pairs(store, reducer, 0, count, keys, &expected);
    CHECK(budget == 0 ? store->outbox == NULL : store->outbox != NULL);
    /* Pairs a combiner's emitter still stages (no chunk_done yet): the
     * checkpoint flushes them into the table first. */
    for (int i = 0; i < 10; i++) {
        unsigned char key[32], value[16];
        size_t key_size, value_size;
        pair_number(reducer, i, keys, key, &key_size, value, &value_size);
        CHECK_RC(0, hpool_emit(hpool__keyed_emitter(store, 1), key, key_size, value, value_size));
        CHECK_RC(0, hpool__pair_encode(&expected, key, (uint32_t)key_size, value, (uint32_t)value_size));
    }
    CHECK(reducer != SUM || store->emitters[1].staged_count == 10);

    const char *path = path_in_directory("round-trip.keyed");
    uint64_t bytes = 0, checksum = 0;
    CHECK_RC(0, hpool__keyed_checkpoint(pool, original, reducer, path, &bytes, &checksum));
    struct stat status;
    CHECK(stat(path, &status) == 0 && (uint64_t)status.st_size == bytes);
    CHECK(access(path_in_directory("round-trip.keyed.tmp"), F_OK) != 0);

    /* The restore into a store with the same small budget (set before it
     * fills: the restore makes the store, so it is made here first). */
    hpool__keyed_store *copy = hpool__keyed_store_get(pool, restored, reducer);
    CHECK(copy != NULL);
    if (copy == NULL)
        return;
    copy->budget = budget;
    CHECK_RC(0, hpool__keyed_restore(pool, restored, reducer, path, bytes, checksum));
    CHECK(budget == 0 ? copy->outbox == NULL : copy->outbox != NULL);
    check_store_holds(copy, &expected);

    /* The original goes on: more pairs, spilled after the ones before. */
    emit_pairs(store, reducer, count, count / 2 + 1, keys, &expected);
    check_store_holds(store, &expected);
    hpool__buffer_release(&expected);
    free_store(pool, original);
    free_store(pool, restored);
}

/* A pair bigger than a piece of the read-back, and a file of several
 * pieces, with no combiner. */
static void test_large_pairs(hpool_pool *pool)
{
    uint32_t original = next_call++, restored = next_call++;
    hpool__keyed_store *store = hpool__keyed_store_get(pool, original, LIST);
    hpool__buffer expected = {0};
    size_t big = (3u << 20) / 2;
    unsigned char *value = malloc(big);
    for (size_t i = 0; i < big; i++)
        value[i] = (unsigned char)(i * 31);
    CHECK_RC(0, hpool_emit(hpool__keyed_emitter(store, 0), "big", 3, value, big));
    CHECK_RC(0, hpool__pair_encode(&expected, "big", 3, value, (uint32_t)big));
    CHECK_RC(0, hpool__keyed_chunk_done(store, 0, 0));
    emit_pairs(store, LIST, 0, 150000, 50000, &expected);
    const char *path = path_in_directory("large.keyed");
    uint64_t bytes, checksum;
    CHECK_RC(0, hpool__keyed_checkpoint(pool, original, LIST, path, &bytes, &checksum));
    CHECK(bytes > (3u << 20));
    CHECK_RC(0, hpool__keyed_restore(pool, restored, LIST, path, bytes, checksum));
    hpool__keyed_store *copy = store_of(pool, restored);
    CHECK(copy != NULL);
    if (copy != NULL)
        check_store_holds(copy, &expected);
    hpool__buffer_release(&expected);
    free(value);
    free_store(pool, original);
    free_store(pool, restored);
}

/* A rank with no store writes a file with no pairs, which restores to an
 * empty store. */
static void test_no_store(hpool_pool *pool)
{
    uint32_t absent = next_call++;
    const char *path = path_in_directory("empty.keyed");
    uint64_t bytes = 0, checksum = 0;
    CHECK_RC(0, hpool__keyed_checkpoint(pool, absent, SUM, path, &bytes, &checksum));
    CHECK(bytes == 8 + 4 + 4 + strlen("sum"));
    CHECK(!store_exists(pool, absent));
    CHECK_RC(0, hpool__keyed_restore(pool, absent, SUM, path, bytes, checksum));
    hpool__keyed_store *store = store_of(pool, absent);
    CHECK(store != NULL);
    if (store != NULL) {
        hpool__buffer none = {0};
        check_store_holds(store, &none);
    }
    free_store(pool, absent);
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    CHECK(in != NULL && out != NULL);
    char buffer[65536];
    size_t got;
    while (in != NULL && out != NULL && (got = fread(buffer, 1, sizeof buffer, in)) > 0)
        CHECK(fwrite(buffer, 1, got, out) == got);
    if (in != NULL)
        fclose(in);
    if (out != NULL)
        fclose(out);
}

/* Every refusal is HPOOL_EJOURNAL naming the path, and leaves no store. */
static void expect_refused(hpool_pool *pool, int reducer, const char *path, uint64_t bytes, uint64_t checksum,
                           const char *why)
{
    uint32_t call = next_call++;
    int rc = hpool__keyed_restore(pool, call, reducer, path, bytes, checksum);
    CHECK_RC(HPOOL_EJOURNAL, rc);
    CHECK(detail_has(rc, path));
    CHECK(detail_has(rc, why));
    CHECK(!store_exists(pool, call));
}

static void test_refusals(hpool_pool *pool)
{
    uint32_t original = next_call++;
    hpool__keyed_store *store = hpool__keyed_store_get(pool, original, SUM);
    hpool__buffer expected = {0};
    emit_pairs(store, SUM, 0, 5000, 300, &expected);
    hpool__buffer_release(&expected);
    const char *path = path_in_directory("good.keyed");
    uint64_t bytes, checksum;
    CHECK_RC(0, hpool__keyed_checkpoint(pool, original, SUM, path, &bytes, &checksum));

    /* Cut short by one byte. */
    const char *truncated = path_in_directory("truncated.keyed");
    copy_file(path, truncated);
    CHECK(truncate(truncated, (off_t)bytes - 1) == 0);
    expect_refused(pool, SUM, truncated, bytes, checksum, "changed since it was written");
    /* Cut short, and recorded so: whole by its size and hash, but no
     * checkpoint a writer makes. */
    FILE *cut = fopen(truncated, "rb");
    unsigned char *content = malloc(bytes);
    CHECK(cut != NULL && fread(content, 1, bytes, cut) == bytes - 1);
    fclose(cut);
    expect_refused(pool, SUM, truncated, bytes - 1, hpool__hash64(HPOOL__HASH64_START, content, bytes - 1),
                   "ends inside a pair");
    free(content);
    /* One byte changed, in the pairs and in the header's name. */
    const char *changed = path_in_directory("changed.keyed");
    uint64_t offsets[] = {bytes / 2, bytes - 1, 16};
    for (size_t o = 0; o < sizeof offsets / sizeof offsets[0]; o++) {
        copy_file(path, changed);
        FILE *file = fopen(changed, "r+b");
        CHECK(file != NULL && fseek(file, (long)offsets[o], SEEK_SET) == 0);
        int byte = fgetc(file);
        CHECK(fseek(file, (long)offsets[o], SEEK_SET) == 0 && fputc(byte ^ 0x20, file) != EOF);
        fclose(file);
        expect_refused(pool, SUM, changed, bytes, checksum, "changed since it was written");
    }
    /* Another reducer's pairs, the file itself whole. */
    expect_refused(pool, LIST, path, bytes, checksum, "holds the pairs of keyed reducer \"sum\", not of \"list\"");
    /* A file that is no checkpoint, even with its own size and hash. */
    const char *other = path_in_directory("other.keyed");
    static const char text[] = "HPOOLKC? this is some other file, not a checkpoint";
    FILE *file = fopen(other, "wb");
    fwrite(text, 1, sizeof text, file);
    fclose(file);
    expect_refused(pool, SUM, other, sizeof text, hpool__hash64(HPOOL__HASH64_START, text, sizeof text),
                   "is not an hpool keyed checkpoint");
    /* A checkpoint of another format version (a byte-swapped one reads so). */
    copy_file(path, changed);
    file = fopen(changed, "r+b");
    uint32_t version = 2;
    CHECK(file != NULL && fseek(file, 8, SEEK_SET) == 0 && fwrite(&version, 4, 1, file) == 1);
    fclose(file);
    expect_refused(pool, SUM, changed, bytes, checksum, "not an hpool keyed checkpoint of format 1");
    /* Gone. */
    expect_refused(pool, SUM, path_in_directory("missing.keyed"), bytes, checksum, "it is gone");

    /* The good one still restores. */
    CHECK_RC(0, hpool__keyed_restore(pool, next_call++, SUM, path, bytes, checksum));
    free_store(pool, next_call - 1);
    free_store(pool, original);
}

/* Directories that take no file: HPOOL_EIO naming the path, no file left. */
static void test_unwritable(hpool_pool *pool)
{
    uint64_t bytes = 0, checksum = 0;
    int rc = hpool__keyed_checkpoint(pool, next_call++, SUM, "/nonexistent/hpool/x.keyed", &bytes, &checksum);
    CHECK_RC(HPOOL_EIO, rc);
    CHECK(detail_has(rc, "/nonexistent/hpool/x.keyed.tmp"));
    CHECK(detail_has(rc, "No such file or directory"));
    /* A parent that is a file: root cannot write there either. */
    const char *file = path_in_directory("a-file");
    fclose(fopen(file, "wb"));
    char *under = path_in_directory("a-file/x.keyed");
    rc = hpool__keyed_checkpoint(pool, next_call++, SUM, under, &bytes, &checksum);
    CHECK_RC(HPOOL_EIO, rc);
    CHECK(detail_has(rc, under));
    CHECK(detail_has(rc, "Not a directory"));
    if (geteuid() != 0) { /* permissions bind all but root */
        char *locked = path_in_directory("locked");
        CHECK(mkdir(locked, 0555) == 0);
        char *inside = path_in_directory("locked/x.keyed");
        rc = hpool__keyed_checkpoint(pool, next_call++, SUM, inside, &bytes, &checksum);
        CHECK_RC(HPOOL_EIO, rc);
        CHECK(detail_has(rc, "Permission denied"));
        rmdir(locked);
    }
    /* A restore that cannot open a file that is there is HPOOL_EIO, not a
     * changed checkpoint. */
    uint32_t call = next_call++;
    rc = hpool__keyed_restore(pool, call, SUM, directory, 1, 1); /* a directory opens, and fails to read */
    CHECK_RC(HPOOL_EIO, rc);
    CHECK(detail_has(rc, "Is a directory"));
    CHECK(!store_exists(pool, call));
}

/* A write that fails midway (a file size limit: EFBIG) leaves the old
 * checkpoint whole and no .tmp file. */
static void test_failed_write_keeps_old(hpool_pool *pool)
{
    uint32_t call = next_call++;
    hpool__keyed_store *store = hpool__keyed_store_get(pool, call, LIST);
    hpool__buffer expected = {0};
    emit_pairs(store, LIST, 0, 1000, 1000, &expected);
    const char *path = path_in_directory("kept.keyed");
    uint64_t bytes, checksum;
    CHECK_RC(0, hpool__keyed_checkpoint(pool, call, LIST, path, &bytes, &checksum));
    hpool__buffer more = {0};
    emit_pairs(store, LIST, 1000, 100000, 1000, &more);
    hpool__buffer_release(&more);

    struct rlimit old_limit, limit;
    getrlimit(RLIMIT_FSIZE, &old_limit);
    limit = old_limit;
    limit.rlim_cur = 256 << 10;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &limit) == 0);
    uint64_t new_bytes = 0, new_checksum = 0;
    int rc = hpool__keyed_checkpoint(pool, call, LIST, path, &new_bytes, &new_checksum);
    setrlimit(RLIMIT_FSIZE, &old_limit);
    signal(SIGXFSZ, old_handler);
    CHECK_RC(HPOOL_EIO, rc);
    CHECK(detail_has(rc, "kept.keyed.tmp"));
    CHECK(detail_has(rc, "File too large"));
    CHECK(access(path_in_directory("kept.keyed.tmp"), F_OK) != 0);
    uint32_t restored = next_call++;
    CHECK_RC(0, hpool__keyed_restore(pool, restored, LIST, path, bytes, checksum));
    hpool__keyed_store *copy = store_of(pool, restored);
    if (copy != NULL)
        check_store_holds(copy, &expected);
    hpool__buffer_release(&expected);
    free_store(pool, call);
    free_store(pool, restored);
}

/* A merge that fails on the restored pairs: HPOOL_EFAILED, its code in the detail. */
static void test_merge_failure(hpool_pool *pool)
{
    uint32_t call = next_call++, restored = next_call++;
    hpool__keyed_store *store = hpool__keyed_store_get(pool, call, UNION);
    uint32_t poison = POISON;
    CHECK_RC(0, hpool_emit(hpool__keyed_emitter(store, 0), "bad", 3, &poison, sizeof poison));
    CHECK_RC(0, hpool__keyed_chunk_done(store, 0, 0));
    const char *path = path_in_directory("poison.keyed");
    uint64_t bytes, checksum;
    CHECK_RC(0, hpool__keyed_checkpoint(pool, call, UNION, path, &bytes, &checksum));
    hpool__keyed_store *copy = hpool__keyed_store_get(pool, restored, UNION);
    uint32_t one = 1;
    CHECK_RC(0, hpool_emit(hpool__keyed_emitter(copy, 0), "bad", 3, &one, sizeof one));
    CHECK_RC(0, hpool__keyed_chunk_done(copy, 0, 0));
    int rc = hpool__keyed_restore(pool, restored, UNION, path, bytes, checksum);
    CHECK_RC(HPOOL_EFAILED, rc);
    CHECK(detail_has(rc, "failed with 42"));
    CHECK(copy->mapped[0].merge_code == 0 && copy->emitters[0].error == 0); /* the next chunk starts clean */
    free_store(pool, call);
    free_store(pool, restored);
}

/* Each allocation of a checkpoint and of a restore failing in turn:
 * HPOOL_ENOMEM or success, never a crash or a leak (ASan), and the file
 * a failed checkpoint leaves is the old one. */
static void test_no_memory(hpool_pool *pool)
{
    uint32_t call = next_call++;
    hpool__keyed_store *store = hpool__keyed_store_get(pool, call, UNION);
    store->budget = 4096;
    hpool__buffer expected = {0};
    emit_pairs(store, UNION, 0, 3000, 500, &expected);
    hpool__buffer_release(&expected);
    const char *path = path_in_directory("no-memory.keyed");
    uint64_t bytes, checksum;
    CHECK_RC(0, hpool__keyed_checkpoint(pool, call, UNION, path, &bytes, &checksum));
    int failed = 0;
    for (long skip = 0; skip < 400; skip++) {
        uint64_t new_bytes = 0, new_checksum = 0;
        hpool__test_fail_allocation(skip, false);
        int rc = hpool__keyed_checkpoint(pool, call, UNION, path, &new_bytes, &new_checksum);
        hpool__test_fail_allocation(-1, false);
        CHECK(rc == 0 || rc == HPOOL_ENOMEM);
        CHECK(rc != 0 || (new_bytes == bytes && new_checksum == checksum));
        failed += rc != 0;

        uint32_t restored = next_call++;
        hpool__test_fail_allocation(skip, false);
        rc = hpool__keyed_restore(pool, restored, UNION, path, bytes, checksum);
        hpool__test_fail_allocation(-1, false);
        /* A spill that found no memory is the store's error, and the restore's. */
        CHECK(rc == 0 || rc == HPOOL_ENOMEM);
        failed += rc != 0;
        free_store(pool, restored);
    }
    CHECK(failed > 0);
    struct stat status;
    CHECK(stat(path, &status) == 0 && (uint64_t)status.st_size == bytes);
    free_store(pool, call);
}

/* End to end: pairs restored into the store of the call the pool makes
 * next, which maps nothing, come out of its shuffle and reduce summed. */
static void test_keyed_call(hpool_pool *pool)
{
    uint32_t original = next_call++;
    hpool__keyed_store *store = hpool__keyed_store_get(pool, original, SUM);
    hpool__buffer expected = {0};
    emit_pairs(store, SUM, 0, 20000, 1000, &expected);
    const char *path = path_in_directory("call.keyed");
    uint64_t bytes, checksum;
    CHECK_RC(0, hpool__keyed_checkpoint(pool, original, SUM, path, &bytes, &checksum));
    free_store(pool, original);

    pthread_mutex_lock(&pool->lock);
    uint32_t next = pool->next_call_id;
    pthread_mutex_unlock(&pool->lock);
    CHECK_RC(0, hpool__keyed_restore(pool, next, SUM, path, bytes, checksum));
    hpool_source *empty;
    hpool_source_range(&empty, 0, 0);
    hpool_pairs *pairs = NULL;
    hpool_call call = HPOOL_CALL_INIT;
    call.function = 0;
    call.source = empty;
    call.reducer = SUM;
    call.pairs = &pairs;
    CHECK_RC(0, hpool_map_reduce_keyed(pool, &call, NULL));
    pair_list want;
    list_of(&reducers[SUM], &expected, &want);
    CHECK(pairs != NULL && hpool_pairs_count(pairs) == want.count);
    pair_list have = {0};
    have.pairs = calloc(want.count + 1, sizeof *have.pairs);
    for (uint64_t i = 0; pairs != NULL && i < hpool_pairs_count(pairs) && i < want.count; i++)
        CHECK_RC(0, hpool_pairs_get(pairs, i, &have.pairs[have.count++]));
    qsort(have.pairs, have.count, sizeof *have.pairs, compare_pair_bytes);
    CHECK(lists_equal(&have, &want));
    free(have.pairs);
    list_release(&want);
    hpool_pairs_free(pairs);
    hpool_source_free(empty);
    hpool__buffer_release(&expected);
}

static void remove_directory(void)
{
    char command[600];
    snprintf(command, sizeof command, "rm -rf '%s'", directory);
    if (system(command) != 0)
        fprintf(stderr, "could not remove %s\n", directory);
}

int main(void)
{
    if (mkdtemp(directory) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = functions;
    options.function_count = 1;
    options.keyed_reducers = reducers;
    options.keyed_reducer_count = sizeof reducers / sizeof reducers[0];
    options.threads = 3;
    options.placement = -1;
    options.temp_dir = directory;
    hpool_pool *pool = NULL;
    int rc = hpool_pool_create(&pool, &options);
    CHECK_RC(0, rc);
    if (rc == 0) {
        for (int reducer = SUM; reducer <= LIST; reducer++) {
            test_round_trip(pool, reducer, 20000, 3000, 0);
            test_round_trip(pool, reducer, 20000, 3000, 4096); /* every chunk spills */
        }
        test_large_pairs(pool);
        test_no_store(pool);
        test_refusals(pool);
        test_unwritable(pool);
        test_failed_write_keeps_old(pool);
        test_merge_failure(pool);
        test_no_memory(pool);
        test_keyed_call(pool);
        CHECK_RC(0, hpool_pool_join(pool));
        hpool_pool_free(pool);
    }
    remove_directory();
    if (check_failures)
        fprintf(stderr, "test_keyed_checkpoint: %d checks failed\n", check_failures);
    else
        printf("test_keyed_checkpoint: all checks passed\n");
    return check_failures ? 1 : 0;
}
