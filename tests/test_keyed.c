/* test_keyed.c: keyed map-reduce (emit, combine, shuffle, reduce, sorted output) against a sequential answer. */
#include "hpool.h"
#include "check.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- Word counting with a combiner, ordered by count then word ---------- */

static int emit_words(hpool_task *task, void *user)
{
    const unsigned char *text = task->input;
    size_t size = task->input_size;
    static const uint64_t one = 1;
    for (size_t i = 0; i < size;) {
        while (i < size && text[i] == ' ')
            i++;
        size_t start = i;
        while (i < size && text[i] != ' ')
            i++;
        if (i > start && hpool_emit(task->emitter, text + start, i - start, &one, sizeof one) != 0)
            return 1;
    }
    return 0;
}

static void add_counts(void *accumulator, const void *value, void *user)
{
    uint64_t a, b;
    memcpy(&a, accumulator, 8);
    memcpy(&b, value, 8);
    a += b;
    memcpy(accumulator, &a, 8);
}

static int by_count_then_word(const hpool_pair *a, const hpool_pair *b, void *user)
{
    uint64_t x, y;
    memcpy(&x, a->value, 8);
    memcpy(&y, b->value, 8);
    if (x != y)
        return x > y ? -1 : 1;
    size_t n = a->key_size < b->key_size ? a->key_size : b->key_size;
    int order = memcmp(a->key, b->key, n);
    return order ? order : (a->key_size > b->key_size) - (a->key_size < b->key_size);
}

/* ---- Many distinct keys: key = the index's 8 bytes, big-endian --------- */

static int emit_index(hpool_task *task, void *user)
{
    uint64_t x = (uint64_t)*(const int64_t *)task->input;
    unsigned char key[8];
    for (int b = 0; b < 8; b++)
        key[b] = (unsigned char)(x >> (56 - 8 * b));
    uint64_t value = x * 3;
    return hpool_emit(task->emitter, key, sizeof key, &value, sizeof value);
}

/* ---- NUL bytes in keys and values, no combiner, a reduce function ------- */

typedef struct value_summary {
    uint64_t count, bytes, nuls;
} value_summary;

/* Item x emits key "k\0" + (x mod 5) and a value of x mod 4 bytes, NULs among them. */
static int emit_binary(hpool_task *task, void *user)
{
    int64_t x = *(const int64_t *)task->input;
    unsigned char key[3] = {'k', 0, (unsigned char)(x % 5)};
    unsigned char value[3] = {0, (unsigned char)x, 0};
    return hpool_emit(task->emitter, key, sizeof key, value, (size_t)(x % 4));
}

static int summarise_values(const void *key, size_t key_size, hpool_values *values, hpool_emitter *out, void *user)
{
    value_summary summary = {0, 0, 0};
    const void *data;
    size_t size;
    while (hpool_values_next(values, &data, &size) == 0) {
        summary.count++;
        summary.bytes += size;
        for (size_t i = 0; i < size; i++)
            summary.nuls += ((const unsigned char *)data)[i] == 0;
    }
    return hpool_emit(out, key, key_size, &summary, sizeof summary);
}

static int fail_on_key_3(const void *key, size_t key_size, hpool_values *values, hpool_emitter *out, void *user)
{
    return ((const unsigned char *)key)[2] == 3 ? 42 : summarise_values(key, key_size, values, out, user);
}

/* ---- Many keys through a reduce function, ordered with ties ------------ */

/* Item x emits key x mod GROUPS (8 bytes, big-endian) and value {1, x}: the
 * keys are many (each rank's threads reduce and sort a share each), and an
 * order by count alone leaves most of them tied. */
#define GROUPS 50000

typedef struct count_sum {
    uint64_t count, sum;
} count_sum;

static void group_key(uint64_t group, unsigned char key[8])
{
    for (int b = 0; b < 8; b++)
        key[b] = (unsigned char)(group >> (56 - 8 * b));
}

static int emit_group(hpool_task *task, void *user)
{
    uint64_t x = (uint64_t)*(const int64_t *)task->input;
    unsigned char key[8];
    group_key(x % GROUPS, key);
    count_sum value = {1, x};
    return hpool_emit(task->emitter, key, sizeof key, &value, sizeof value);
}

static void add_count_sums(void *accumulator, const void *value, void *user)
{
    count_sum a, b;
    memcpy(&a, accumulator, sizeof a);
    memcpy(&b, value, sizeof b);
    a.count += b.count;
    a.sum += b.sum;
    memcpy(accumulator, &a, sizeof a);
}

/* Adds up a key's values; fails on the group in *user, if any. */
static int total_group(const void *key, size_t key_size, hpool_values *values, hpool_emitter *out, void *user)
{
    unsigned char failing[8];
    if (user != NULL) {
        group_key(*(const uint64_t *)user, failing);
        if (key_size == 8 && memcmp(key, failing, 8) == 0)
            return 7;
    }
    count_sum total = {0, 0};
    const void *data;
    size_t size;
    while (hpool_values_next(values, &data, &size) == 0) {
        if (size != sizeof total)
            return 9;
        add_count_sums(&total, data, NULL);
    }
    return hpool_emit(out, key, key_size, &total, sizeof total);
}

/* By count, most first; equal counts are a tie, which hpool breaks by key. */
static int by_count_only(const hpool_pair *a, const hpool_pair *b, void *user)
{
    count_sum x, y;
    memcpy(&x, a->value, sizeof x);
    memcpy(&y, b->value, sizeof y);
    return x.count == y.count ? 0 : x.count > y.count ? -1 : 1;
}

static const uint64_t failing_group = 31337;

/* ---- An inverted index: word -> the sorted ids of the files it is in ---- */

/* Item i is file i: emits (word, i as 8 bytes) for every word in it. */
static int emit_file_words(hpool_task *task, void *user)
{
    const unsigned char *text = task->input;
    size_t size = task->input_size;
    uint64_t file = task->index;
    for (size_t i = 0; i < size;) {
        while (i < size && text[i] == ' ')
            i++;
        size_t start = i;
        while (i < size && text[i] != ' ')
            i++;
        int rc = i > start ? hpool_emit(task->emitter, text + start, i - start, &file, sizeof file) : 0;
        if (rc != 0)
            return rc;
    }
    return 0;
}

static uint64_t id_at(const void *ids, size_t i)
{
    uint64_t id;
    memcpy(&id, (const unsigned char *)ids + 8 * i, 8);
    return id;
}

/* The sorted union of two sorted id lists, into out; its count of ids. */
static size_t union_of(const void *a, size_t a_count, const void *b, size_t b_count, unsigned char *out)
{
    size_t i = 0, j = 0, n = 0;
    while (i < a_count || j < b_count) {
        uint64_t x = i < a_count ? id_at(a, i) : UINT64_MAX, y = j < b_count ? id_at(b, j) : UINT64_MAX;
        uint64_t next = i < a_count && (j == b_count || x <= y) ? x : y;
        i += i < a_count && x == next;
        j += j < b_count && y == next;
        memcpy(out + 8 * n++, &next, 8);
    }
    return n;
}

static int merge_ids(const void *a, size_t a_size, const void *b, size_t b_size, void *out, size_t *out_size,
                     void *user)
{
    if (a_size % 8 != 0 || b_size % 8 != 0)
        return 8;
    *out_size = 8 * union_of(a, a_size / 8, b, b_size / 8, out);
    return 0;
}

/* Counted lists: one id as its 8 bytes, or more as a u64 count and then
 * the ids. Merging two single ids needs 24 bytes of the 16 offered, so
 * the merge asks for more and is called again; *user counts the asks. */
static int merge_counted_ids(const void *a, size_t a_size, const void *b, size_t b_size, void *out,
                             size_t *out_size, void *user)
{
    const unsigned char *x = a, *y = b;
    size_t x_count = a_size == 8 ? 1 : (a_size - 8) / 8, y_count = b_size == 8 ? 1 : (b_size - 8) / 8;
    x += a_size == 8 ? 0 : 8;
    y += b_size == 8 ? 0 : 8;
    size_t needed = 8 + 8 * (x_count + y_count);
    if (*out_size < needed) {
        __atomic_fetch_add((uint64_t *)user, 1, __ATOMIC_RELAXED);
        *out_size = needed;
        return 0;
    }
    unsigned char *ids = out;
    uint64_t count = union_of(x, x_count, y, y_count, ids + 8);
    if (count == 1) {
        memmove(ids, ids + 8, 8);
        *out_size = 8;
    } else {
        memcpy(ids, &count, 8);
        *out_size = 8 + 8 * count;
    }
    return 0;
}

static int merge_failing(const void *a, size_t a_size, const void *b, size_t b_size, void *out, size_t *out_size,
                         void *user)
{
    return 55;
}

static int compare_ids(const void *a, const void *b)
{
    uint64_t x, y;
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    return (x > y) - (x < y);
}

/* Without a combiner: every occurrence reaches the reduce function, which
 * sorts them and leaves each file once. */
static int list_files(const void *key, size_t key_size, hpool_values *values, hpool_emitter *out, void *user)
{
    size_t count = 0, capacity = 64;
    unsigned char *ids = malloc(capacity * 8);
    const void *data;
    size_t size;
    while (ids != NULL && hpool_values_next(values, &data, &size) == 0) {
        if (size != 8) {
            free(ids);
            return 9;
        }
        if (count == capacity) {
            unsigned char *grown = realloc(ids, (capacity *= 2) * 8);
            if (grown == NULL)
                break;
            ids = grown;
        }
        memcpy(ids + 8 * count++, data, 8);
    }
    if (ids == NULL)
        return 10;
    qsort(ids, count, 8, compare_ids);
    size_t distinct = 0;
    for (size_t i = 0; i < count; i++)
        if (distinct == 0 || memcmp(ids + 8 * (distinct - 1), ids + 8 * i, 8) != 0)
            memmove(ids + 8 * distinct++, ids + 8 * i, 8);
    int rc = hpool_emit(out, key, key_size, ids, 8 * distinct);
    free(ids);
    return rc;
}

/* After a merge, a key has one value: its whole list. Emits how many files. */
static int count_files(const void *key, size_t key_size, hpool_values *values, hpool_emitter *out, void *user)
{
    const void *data;
    size_t size;
    if (hpool_values_next(values, &data, &size) != 0 || hpool_values_next(values, &data, &size) != HPOOL_EOF)
        return 11;
    uint64_t files = size / 8;
    return hpool_emit(out, key, key_size, &files, sizeof files);
}

static uint64_t counted_merge_asks;

/* ---- Output written by each rank: one file of COUNT TAB WORD lines ------ */

/* The same on every rank of one run and different between runs: under a
 * launcher, one process on the node is every rank's parent (Open MPI's
 * mpirun, MPICH's hydra_pmi_proxy); a plain run is one process, whose
 * parent (ctest) may be running another copy at the same time. */
static void share_path(int rank, char *path, size_t size)
{
    bool launched = getenv("OMPI_COMM_WORLD_SIZE") != NULL || getenv("PMI_SIZE") != NULL;
    long run = launched ? (long)getppid() : (long)getpid();
    snprintf(path, size, "/tmp/hpool-test-keyed-%ld/share-%d", run, rank);
}

static int write_share_file(int rank, const hpool_pair *pairs, size_t count, void *user)
{
    char path[256];
    share_path(rank, path, sizeof path);
    *strrchr(path, '/') = '\0';
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return 1;
    share_path(rank, path, sizeof path);
    FILE *file = fopen(path, "w");
    if (file == NULL)
        return 2;
    for (size_t i = 0; i < count; i++) {
        uint64_t n;
        memcpy(&n, pairs[i].value, 8);
        fprintf(file, "%llu\t%.*s\n", (unsigned long long)n, (int)pairs[i].key_size, (const char *)pairs[i].key);
    }
    return fclose(file) == 0 ? 0 : 3;
}

static const hpool_function functions[] = {
    {.name = "emit_words", .map = emit_words},
    {.name = "emit_index", .map = emit_index},
    {.name = "emit_binary", .map = emit_binary},
    {.name = "emit_group", .map = emit_group},
    {.name = "emit_file_words", .map = emit_file_words},
};
enum { EMIT_WORDS, EMIT_INDEX, EMIT_BINARY, EMIT_GROUP, EMIT_FILE_WORDS };

static const hpool_keyed_reducer keyed[] = {
    {.name = "word_count", .value_size = 8, .combine = add_counts, .compare = by_count_then_word},
    {.name = "pass_through"},
    {.name = "summarise", .reduce = summarise_values},
    {.name = "fail_on_key_3", .reduce = fail_on_key_3},
    {.name = "count_per_rank", .value_size = 8, .combine = add_counts, .compare = by_count_then_word,
     .write = write_share_file},
    {.name = "total_groups", .reduce = total_group, .compare = by_count_only},
    {.name = "total_combined_groups", .value_size = sizeof(count_sum), .combine = add_count_sums,
     .reduce = total_group, .compare = by_count_only},
    {.name = "total_groups_failing", .reduce = total_group, .user = (void *)&failing_group},
    {.name = "index_merged", .merge = merge_ids},
    {.name = "index_reduced", .reduce = list_files},
    {.name = "index_counted", .merge = merge_counted_ids, .user = &counted_merge_asks},
    {.name = "index_file_counts", .merge = merge_ids, .reduce = count_files},
    {.name = "index_failing", .merge = merge_failing},
    /* the built-in sum and order, which must give word_count's answers */
    {.name = "word_count_builtin", .value_size = 8, .combine = hpool_combine_sum_u64,
     .compare = hpool_compare_u64_desc},
    {.name = "pass_through_builtin_order", .compare = hpool_compare_u64_desc},
};
enum { WORD_COUNT, PASS_THROUGH, SUMMARISE, FAIL_ON_KEY_3, COUNT_PER_RANK, TOTAL_GROUPS, TOTAL_COMBINED_GROUPS,
       TOTAL_GROUPS_FAILING, INDEX_MERGED, INDEX_REDUCED, INDEX_COUNTED, INDEX_FILE_COUNTS, INDEX_FAILING,
       WORD_COUNT_BUILTIN, PASS_THROUGH_BUILTIN_ORDER };

static const size_t chunksizes[] = {0, 1, 7, 1000};

/* Run with a budget of a few MiB, every big call must have spilled. */
static bool small_budget;

/* One keyed call; *pairs gets its output, NULL when the call refused. */
static int run_keyed(hpool_pool *pool, int function, const hpool_source *source, size_t chunksize, int reducer,
                     hpool_pairs **pairs, hpool_report *report)
{
    hpool_call call = HPOOL_CALL_INIT;
    call.function = function;
    call.source = source;
    call.chunksize = chunksize;
    call.reducer = reducer;
    call.pairs = pairs;
    return hpool_map_reduce_keyed(pool, &call, report);
}

/* ---- The sequential word count, for reference -------------------------- */

typedef struct word {
    const char *text;
    size_t size;
    uint64_t count;
} word;

static int compare_words(const void *a, const void *b)
{
    const word *x = a, *y = b;
    size_t n = x->size < y->size ? x->size : y->size;
    int order = memcmp(x->text, y->text, n);
    return order ? order : (x->size > y->size) - (x->size < y->size);
}

static int compare_counted(const void *a, const void *b)
{
    const word *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return compare_words(a, b);
}

/* sizes: each line's, or NULL for strlen's. */
static size_t reference_word_count_sized(char **lines, const size_t *sizes, size_t line_count, word **out)
{
    size_t capacity = 1024, count = 0;
    word *words = malloc(capacity * sizeof *words);
    for (size_t l = 0; l < line_count; l++) {
        const char *text = lines[l];
        size_t size = sizes != NULL ? sizes[l] : strlen(text);
        for (size_t i = 0; i < size;) {
            while (i < size && text[i] == ' ')
                i++;
            size_t start = i;
            while (i < size && text[i] != ' ')
                i++;
            if (i > start) {
                if (count == capacity)
                    words = realloc(words, (capacity *= 2) * sizeof *words);
                words[count++] = (word){text + start, i - start, 1};
            }
        }
    }
    qsort(words, count, sizeof *words, compare_words);
    size_t distinct = 0;
    for (size_t i = 0; i < count; i++) {
        if (distinct > 0 && compare_words(&words[distinct - 1], &words[i]) == 0)
            words[distinct - 1].count++;
        else
            words[distinct++] = words[i];
    }
    qsort(words, distinct, sizeof *words, compare_counted);
    *out = words;
    return distinct;
}

static size_t reference_word_count(char **lines, size_t line_count, word **out)
{
    return reference_word_count_sized(lines, NULL, line_count, out);
}

/* Reads every rank's share back: each sorted, together the whole count. */
static void check_shares(hpool_pool *pool, const word *expected, size_t distinct)
{
    word *all = malloc((distinct + 1) * sizeof *all);
    char (*texts)[64] = malloc((distinct + 1) * sizeof *texts);
    size_t total = 0;
    for (int rank = 0; rank < hpool_pool_size(pool); rank++) {
        char path[256];
        share_path(rank, path, sizeof path);
        FILE *file = fopen(path, "r");
        CHECK(file != NULL);
        if (file == NULL)
            continue;
        unsigned long long count;
        char text[64];
        size_t first = total;
        while (fscanf(file, "%llu\t%63s", &count, text) == 2) {
            CHECK(total < distinct);
            if (total >= distinct)
                break;
            strcpy(texts[total], text);
            all[total] = (word){texts[total], strlen(text), count};
            CHECK(total == first || compare_counted(&all[total - 1], &all[total]) < 0);
            total++;
        }
        fclose(file);
        unlink(path);
    }
    CHECK(total == distinct);
    qsort(all, total, sizeof *all, compare_counted);
    uint64_t wrong = 0;
    for (size_t i = 0; i < total && i < distinct; i++)
        wrong += compare_counted(&all[i], &expected[i]) != 0 || all[i].count != expected[i].count;
    CHECK(wrong == 0);
    char path[256];
    share_path(0, path, sizeof path);
    *strrchr(path, '/') = '\0';
    rmdir(path);
    free(all);
    free(texts);
}

/* Counts the words of source at every chunksize: each answer must be
 * expected, pair by pair, in order. */
static void check_word_counts(hpool_pool *pool, const hpool_source *source, const word *expected, size_t distinct)
{
    /* the test's own combiner and order, then the built-in ones */
    for (size_t c = 0; c < 2 * sizeof chunksizes / sizeof chunksizes[0]; c++) {
        hpool_pairs *pairs = NULL;
        size_t chunksize = chunksizes[c % (sizeof chunksizes / sizeof chunksizes[0])];
        int reducer = c < sizeof chunksizes / sizeof chunksizes[0] ? WORD_COUNT : WORD_COUNT_BUILTIN;
        CHECK_RC(0, run_keyed(pool, EMIT_WORDS, source, chunksize, reducer, &pairs, NULL));
        CHECK(hpool_pairs_count(pairs) == distinct);
        uint64_t wrong = 0;
        for (uint64_t i = 0; i < hpool_pairs_count(pairs) && i < distinct; i++) {
            hpool_pair pair;
            hpool_pairs_get(pairs, i, &pair);
            uint64_t count;
            memcpy(&count, pair.value, 8);
            wrong += pair.key_size != expected[i].size || memcmp(pair.key, expected[i].text, pair.key_size) != 0
                     || count != expected[i].count;
        }
        CHECK(wrong == 0);
        hpool_pairs_free(pairs);
    }
}

static void test_word_count(hpool_pool *pool, size_t line_count)
{
    /* Zipf-ish words: w0 often, w1 half as often, ... */
    char **lines = malloc((line_count + 1) * sizeof *lines);
    uint64_t seed = 12345;
    for (size_t l = 0; l < line_count; l++) {
        lines[l] = malloc(256);
        size_t at = 0;
        int words = (int)(l % 9);
        for (int w = 0; w < words; w++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            unsigned rank = (unsigned)__builtin_ctzll((seed >> 20) | (1ull << 40));
            at += (size_t)snprintf(lines[l] + at, 256 - at, "%sw%u_%u", w ? "  " : "", rank,
                                   (unsigned)((seed >> 50) % 7));
        }
        lines[l][at] = '\0';
    }
    word *expected;
    size_t distinct = reference_word_count(lines, line_count, &expected);
    hpool_source *source;
    hpool_source_records(&source, (const void *const *)lines, NULL, line_count);
    check_word_counts(pool, source, expected, distinct);
    /* the same count, written by each rank instead of sent to the root */
    hpool_pairs *pairs = NULL;
    CHECK_RC(0, run_keyed(pool, EMIT_WORDS, source, 0, COUNT_PER_RANK, &pairs, NULL));
    CHECK(hpool_pairs_count(pairs) == 0);
    hpool_pairs_free(pairs);
    check_shares(pool, expected, distinct);
    hpool_source_free(source);
    for (size_t l = 0; l < line_count; l++)
        free(lines[l]);
    free(lines);
    free(expected);
}

/* Words from 1 byte to past the emitter's 4 KiB staging buffer, mixed in
 * each record: pairs that fill the buffer before its pair count, and pairs
 * too big to stage, which go straight to the table between staged ones. */
static void test_long_words(hpool_pool *pool)
{
    static const size_t lengths[] = {1, 15, 16, 17, 33, 300, 4087, 4088, 4089, 4096, 6000};
    enum { LINES = 300, WORDS_PER_LINE = 9, VARIANTS = 3 };
    char **lines = malloc(LINES * sizeof *lines);
    uint64_t seed = 777;
    for (size_t l = 0; l < LINES; l++) {
        lines[l] = malloc(WORDS_PER_LINE * 6002 + 1);
        size_t at = 0;
        for (int w = 0; w < WORDS_PER_LINE; w++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            size_t length = lengths[(seed >> 33) % (sizeof lengths / sizeof lengths[0])];
            char letter = (char)('a' + (seed >> 45) % VARIANTS);
            if (w > 0)
                lines[l][at++] = ' ';
            memset(lines[l] + at, letter, length);
            lines[l][at + length - 1] = (char)('0' + length % 10); /* 4088 and 4089 differ in more than size */
            at += length;
        }
        lines[l][at] = '\0';
    }
    word *expected;
    size_t distinct = reference_word_count(lines, LINES, &expected);
    CHECK(distinct > 20);
    hpool_source *source;
    hpool_source_records(&source, (const void *const *)lines, NULL, LINES);
    check_word_counts(pool, source, expected, distinct);
    hpool_source_free(source);
    for (size_t l = 0; l < LINES; l++)
        free(lines[l]);
    free(lines);
    free(expected);
}

static void test_distinct_keys(hpool_pool *pool, int64_t n)
{
    hpool_source *range;
    hpool_source_range(&range, 0, n);
    hpool_pairs *pairs = NULL;
    hpool_report report;
    CHECK_RC(0, run_keyed(pool, EMIT_INDEX, range, 0, PASS_THROUGH, &pairs, &report));
    CHECK(hpool_pairs_count(pairs) == (uint64_t)n);
    CHECK(small_budget ? report.spilled_bytes > 0 : report.spilled_bytes == 0);
    uint64_t wrong = 0;
    for (uint64_t i = 0; i < hpool_pairs_count(pairs); i++) {
        hpool_pair pair;
        hpool_pairs_get(pairs, i, &pair);
        uint64_t key = 0, value;
        for (int b = 0; b < 8; b++)
            key = key << 8 | ((const unsigned char *)pair.key)[b];
        memcpy(&value, pair.value, 8);
        wrong += key != i || value != 3 * i; /* sorted by key bytes */
    }
    CHECK(wrong == 0);
    hpool_pairs_free(pairs);
    hpool_source_free(range);
}

/* hpool_compare_u64_desc on keys made to trip a sort that compares
 * copies of their first bytes: NUL and 0xFF bytes, keys that are
 * prefixes of others (with NULs after them, which zero padding hides),
 * beginnings of 23 to 25 shared bytes, lengths 1 to 64, and many tied
 * counts. The order must be the documented one, pair by pair. */
static void test_builtin_order(hpool_pool *pool)
{
    static const char alphabet[] = {'\0', 'a', 'b', '\xff'};
    static const char shared[] = "href=\"../library/shared_"; /* 24 bytes */
    enum { LINES = 3000, WORDS_PER_LINE = 6 };
    char **lines = malloc(LINES * sizeof *lines);
    size_t *sizes = malloc(LINES * sizeof *sizes);
    uint64_t seed = 4242;
    for (size_t l = 0; l < LINES; l++) {
        lines[l] = malloc(WORDS_PER_LINE * 66);
        size_t at = 0;
        for (int w = 0; w < WORDS_PER_LINE; w++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            size_t length = 1 + (seed >> 58); /* 1 to 64 */
            size_t head = (seed >> 40) % 4 == 0 ? 0 : 22 + (seed >> 42) % 4; /* 0 or 22 to 25 shared bytes */
            if (head > length)
                head = length;
            if (w > 0)
                lines[l][at++] = ' ';
            for (size_t i = 0; i < length; i++) {
                seed = seed * 6364136223846793005u + 1442695040888963407u;
                /* few variants past the shared head, so that counts tie */
                lines[l][at + i] = i < head && i < sizeof shared - 1 ? shared[i]
                                   : (seed >> 61) < 6                 ? '\0'
                                                                      : alphabet[(seed >> 33) % 4];
            }
            at += length;
        }
        sizes[l] = at;
    }
    word *expected;
    size_t distinct = reference_word_count_sized(lines, sizes, LINES, &expected);
    CHECK(distinct > 1000);
    size_t ties = 0;
    for (size_t i = 1; i < distinct; i++)
        ties += expected[i].count == expected[i - 1].count;
    CHECK(ties > distinct / 2);
    hpool_source *source;
    hpool_source_records(&source, (const void *const *)lines, sizes, LINES);
    check_word_counts(pool, source, expected, distinct);
    hpool_source_free(source);
    for (size_t l = 0; l < LINES; l++)
        free(lines[l]);
    free(lines);
    free(sizes);
    free(expected);

    /* Values of other sizes than 8 count as 0: the order is then the
     * default one, key bytes and then value bytes. */
    hpool_source *range;
    hpool_source_range(&range, 0, 20011);
    hpool_pairs *builtin = NULL, *plain = NULL;
    CHECK_RC(0, run_keyed(pool, EMIT_BINARY, range, 0, PASS_THROUGH_BUILTIN_ORDER, &builtin, NULL));
    CHECK_RC(0, run_keyed(pool, EMIT_BINARY, range, 0, PASS_THROUGH, &plain, NULL));
    CHECK(hpool_pairs_count(builtin) == 20011 && hpool_pairs_count(plain) == 20011);
    uint64_t wrong = 0;
    for (uint64_t i = 0; i < hpool_pairs_count(builtin) && i < hpool_pairs_count(plain); i++) {
        hpool_pair a, b;
        hpool_pairs_get(builtin, i, &a);
        hpool_pairs_get(plain, i, &b);
        wrong += a.key_size != b.key_size || a.value_size != b.value_size || memcmp(a.key, b.key, a.key_size) != 0
                 || (a.value_size > 0 && memcmp(a.value, b.value, a.value_size) != 0);
    }
    CHECK(wrong == 0);
    hpool_pairs_free(builtin);
    hpool_pairs_free(plain);
    hpool_source_free(range);

    /* The function itself, as a user may call it. */
    uint64_t five = 5, seven = 7;
    unsigned char three[3] = {0};
    hpool_pair p5 = {"b", 1, &five, 8}, p7 = {"z", 1, &seven, 8}, p5a = {"a", 1, &five, 8};
    hpool_pair p5ab = {"a\0", 2, &five, 8}, odd = {"a", 1, three, 3};
    CHECK(hpool_compare_u64_desc(&p7, &p5, NULL) < 0 && hpool_compare_u64_desc(&p5, &p7, NULL) > 0);
    CHECK(hpool_compare_u64_desc(&p5a, &p5, NULL) < 0 && hpool_compare_u64_desc(&p5, &p5, NULL) == 0);
    CHECK(hpool_compare_u64_desc(&p5a, &p5ab, NULL) < 0 && hpool_compare_u64_desc(&odd, &p5a, NULL) > 0);
}

/* A call whose reduce function fails: HPOOL_EFAILED, with the function's code. */
static void check_reduce_fails(hpool_pool *pool, int function, const hpool_source *source, int reducer, int code)
{
    hpool_pairs *pairs = NULL;
    hpool_report report;
    CHECK_RC(HPOOL_EFAILED, run_keyed(pool, function, source, 0, reducer, &pairs, &report));
    CHECK(report.first_failed_code == code);
    /* The detail names the code: a failure after the shuffle names the
     * reducer, the code and the rank; a merge that failed in the map phase
     * as well (one rank's tables) may leave the items' sentence instead. */
    char detail[512], after_shuffle[128], items_failed[64];
    hpool_error_detail(HPOOL_EFAILED, detail, sizeof detail);
    snprintf(after_shuffle, sizeof after_shuffle, "keyed reducer \"%s\" returned %d on rank ", keyed[reducer].name,
             code);
    snprintf(items_failed, sizeof items_failed, "(code %d: ", code);
    bool named = strstr(detail, after_shuffle) != NULL || (report.failed > 0 && strstr(detail, items_failed) != NULL);
    if (!named)
        fprintf(stderr, "test_keyed: detail \"%s\" names neither \"%s\" nor \"%s\"\n", detail, after_shuffle,
                items_failed);
    CHECK(named);
    hpool_pairs_free(pairs);
}

static void test_binary_and_failures(hpool_pool *pool)
{
    /* with a small budget, enough pairs without a combiner to spill */
    const int64_t N = small_budget ? 200003 : 10007;
    value_summary expected[5] = {{0}};
    for (int64_t x = 0; x < N; x++) {
        value_summary *s = &expected[x % 5];
        s->count++;
        s->bytes += (uint64_t)(x % 4);
        unsigned char value[3] = {0, (unsigned char)x, 0};
        for (int i = 0; i < x % 4; i++)
            s->nuls += value[i] == 0;
    }
    hpool_source *range;
    hpool_source_range(&range, 0, N);
    for (size_t c = 0; c < 3; c++) {
        hpool_pairs *pairs = NULL;
        hpool_report report;
        CHECK_RC(0, run_keyed(pool, EMIT_BINARY, range, chunksizes[c] == 1 ? 13 : chunksizes[c], SUMMARISE, &pairs, &report));
        CHECK(small_budget ? report.spilled_bytes > 0 : report.spilled_bytes == 0);
        CHECK(hpool_pairs_count(pairs) == 5);
        for (uint64_t i = 0; i < hpool_pairs_count(pairs); i++) {
            hpool_pair pair;
            hpool_pairs_get(pairs, i, &pair);
            const unsigned char *key = pair.key;
            value_summary got;
            memcpy(&got, pair.value, sizeof got);
            CHECK(pair.key_size == 3 && key[0] == 'k' && key[1] == 0 && key[2] == i);
            CHECK(got.count == expected[i].count && got.bytes == expected[i].bytes && got.nuls == expected[i].nuls);
        }
        hpool_pairs_free(pairs);
    }
    /* a reduce function that fails: the call says so, with its code */
    check_reduce_fails(pool, EMIT_BINARY, range, FAIL_ON_KEY_3, 42);
    hpool_pairs *pairs = NULL;
    /* usage errors */
    CHECK_RC(HPOOL_EINVAL, run_keyed(pool, EMIT_BINARY, range, 0, 99, &pairs, NULL));
    CHECK_RC(HPOOL_EINVAL, run_keyed(pool, EMIT_BINARY, range, 0, SUMMARISE, NULL, NULL));
    hpool_source_free(range);
}

/* Groups of a reduce function, with and without a combiner: every count and
 * sum right, in count order with tied counts by key, whatever the ranks,
 * threads and chunksize; and a reduce function failing on one key of many. */
static void test_reduced_groups(hpool_pool *pool)
{
    const int64_t N = 200003; /* groups 0, 1, 2 get 5 items, the others 4 */
    hpool_source *range;
    hpool_source_range(&range, 0, N);
    const int reducers[] = {TOTAL_GROUPS, TOTAL_COMBINED_GROUPS};
    for (size_t r = 0; r < 2; r++) {
        hpool_pairs *pairs = NULL;
        hpool_report report;
        CHECK_RC(0, run_keyed(pool, EMIT_GROUP, range, chunksizes[r + 2], reducers[r], &pairs, &report));
        CHECK(hpool_pairs_count(pairs) == GROUPS);
        CHECK(!small_budget || r == 1 || report.spilled_bytes > 0);
        uint64_t wrong = 0;
        for (uint64_t i = 0; i < hpool_pairs_count(pairs); i++) {
            hpool_pair pair;
            hpool_pairs_get(pairs, i, &pair);
            uint64_t group = 0;
            for (int b = 0; b < 8 && pair.key_size == 8; b++)
                group = group << 8 | ((const unsigned char *)pair.key)[b];
            count_sum got;
            memcpy(&got, pair.value, sizeof got);
            /* the items of group g are g, g + GROUPS, ... below N */
            uint64_t count = (uint64_t)(N - 1 - (int64_t)group) / GROUPS + 1;
            uint64_t sum = count * group + GROUPS * count * (count - 1) / 2;
            wrong += pair.key_size != 8 || group != i || got.count != count || got.sum != sum;
        }
        CHECK(wrong == 0);
        hpool_pairs_free(pairs);
    }
    check_reduce_fails(pool, EMIT_GROUP, range, TOTAL_GROUPS_FAILING, 7);
    hpool_source_free(range);
}

/* ---- The inverted index against a sequential one ----------------------- */

typedef struct occurrence {
    const char *word;
    size_t size;
    uint64_t file;
} occurrence;

static int compare_occurrences(const void *a, const void *b)
{
    const occurrence *x = a, *y = b;
    size_t n = x->size < y->size ? x->size : y->size;
    int order = memcmp(x->word, y->word, n);
    if (order == 0)
        order = (x->size > y->size) - (x->size < y->size);
    return order ? order : (x->file > y->file) - (x->file < y->file);
}

/* One word's expected files: occurrences[first, first + count) of the
 * sorted, deduplicated list. */
typedef struct posting {
    size_t first, count;
} posting;

/* The ids a value of the counted format holds; 0 if it is malformed. */
static size_t counted_ids(const hpool_pair *pair, const unsigned char **ids)
{
    *ids = pair->value;
    if (pair->value_size == 8)
        return 1;
    uint64_t count = 0;
    if (pair->value_size >= 24)
        memcpy(&count, pair->value, 8);
    *ids += 8;
    return count >= 2 && pair->value_size == 8 + 8 * count ? (size_t)count : 0;
}

/* Checks one call's index against the sequential one: every word once, in
 * key order, with exactly its files. */
static void check_index(hpool_pairs *pairs, int reducer, const occurrence *all, const posting *words, size_t word_count)
{
    CHECK(hpool_pairs_count(pairs) == word_count);
    uint64_t wrong = 0;
    for (uint64_t i = 0; i < hpool_pairs_count(pairs) && i < word_count; i++) {
        hpool_pair pair;
        hpool_pairs_get(pairs, i, &pair);
        const occurrence *first = &all[words[i].first];
        size_t expected = words[i].count;
        if (pair.key_size != first->size || memcmp(pair.key, first->word, pair.key_size) != 0) {
            wrong++;
            continue;
        }
        const unsigned char *ids = pair.value;
        size_t count = pair.value_size / 8;
        if (reducer == INDEX_FILE_COUNTS) {
            uint64_t files;
            memcpy(&files, pair.value, 8);
            wrong += pair.value_size != 8 || files != expected;
            continue;
        }
        if (reducer == INDEX_COUNTED)
            count = counted_ids(&pair, &ids);
        else if (pair.value_size % 8 != 0)
            count = 0;
        bool same = count == expected;
        for (size_t k = 0; same && k < count; k++)
            same = id_at(ids, k) == all[words[i].first + k].file;
        wrong += !same;
    }
    CHECK(wrong == 0);
}

/* Files of Zipf-ish words (w0 often, w1 half as often, ...), a few
 * hundred words each: common words are in most files, rare ones in one. */
static void test_inverted_index(hpool_pool *pool)
{
    enum { FILES = 800, WORDS_PER_FILE = 300 };
    char **files = malloc(FILES * sizeof *files);
    occurrence *all = malloc((size_t)FILES * WORDS_PER_FILE * sizeof *all);
    size_t occurrences = 0;
    uint64_t seed = 4242;
    for (size_t f = 0; f < FILES; f++) {
        files[f] = malloc(WORDS_PER_FILE * 16 + 1);
        size_t at = 0;
        for (int w = 0; w < WORDS_PER_FILE; w++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            unsigned rank = (unsigned)__builtin_ctzll((seed >> 20) | (1ull << 40));
            size_t start = at + (w > 0);
            at += (size_t)snprintf(files[f] + at, 17, "%sv%u_%u", w ? " " : "", rank, (unsigned)((seed >> 45) % 600));
            all[occurrences++] = (occurrence){files[f] + start, at - start, f};
        }
    }
    qsort(all, occurrences, sizeof *all, compare_occurrences);
    posting *words = malloc(occurrences * sizeof *words);
    size_t kept = 0, word_count = 0;
    for (size_t i = 0; i < occurrences; i++) {
        if (kept > 0 && compare_occurrences(&all[kept - 1], &all[i]) == 0)
            continue; /* the same word in the same file */
        all[kept] = all[i];
        bool new_word = kept == 0 || all[kept - 1].size != all[kept].size
                        || memcmp(all[kept - 1].word, all[kept].word, all[kept].size) != 0;
        if (new_word)
            words[word_count++] = (posting){kept, 0};
        words[word_count - 1].count++;
        kept++;
    }
    CHECK(word_count > 5000 && words[0].count > 1);

    hpool_source *source;
    hpool_source_records(&source, (const void *const *)files, NULL, FILES);
    const int reducers[] = {INDEX_MERGED, INDEX_REDUCED, INDEX_COUNTED, INDEX_FILE_COUNTS};
    for (size_t r = 0; r < sizeof reducers / sizeof reducers[0]; r++)
        for (size_t c = 0; c < 3; c++) {
            hpool_pairs *pairs = NULL;
            hpool_report report;
            CHECK_RC(0, run_keyed(pool, EMIT_FILE_WORDS, source, chunksizes[c], reducers[r], &pairs, &report));
            CHECK(small_budget ? report.spilled_bytes > 0 : report.spilled_bytes == 0);
            check_index(pairs, reducers[r], all, words, word_count);
            hpool_pairs_free(pairs);
        }
    /* the root's merges asked for more room at least once (others' are theirs) */
    CHECK(hpool_pool_size(pool) > 1 || counted_merge_asks > 0);

    /* A merge that fails fails the call, with its code, and the pool goes on. */
    for (size_t c = 0; c < 3; c++)
        check_reduce_fails(pool, EMIT_FILE_WORDS, source, INDEX_FAILING, 55);
    hpool_pairs *pairs = NULL;
    CHECK_RC(0, run_keyed(pool, EMIT_FILE_WORDS, source, 0, INDEX_MERGED, &pairs, NULL));
    check_index(pairs, INDEX_MERGED, all, words, word_count);
    hpool_pairs_free(pairs);

    hpool_source_free(source);
    for (size_t f = 0; f < FILES; f++)
        free(files[f]);
    free(files);
    free(all);
    free(words);
}

/* Options with a merge and a combiner, or a merge and a value size, are refused. */
static void test_merge_misuse(void)
{
    hpool_keyed_reducer both = {.name = "both", .value_size = 8, .combine = add_counts, .merge = merge_ids};
    hpool_keyed_reducer sized = {.name = "sized", .value_size = 8, .merge = merge_ids};
    const hpool_keyed_reducer *wrong[] = {&both, &sized};
    for (size_t w = 0; w < 2; w++) {
        hpool_options options = HPOOL_OPTIONS_INIT;
        options.functions = functions;
        options.function_count = sizeof functions / sizeof functions[0];
        options.keyed_reducers = wrong[w];
        options.keyed_reducer_count = 1;
        hpool_pool *pool = NULL;
        CHECK_RC(HPOOL_EINVAL, hpool_pool_create(&pool, &options));
    }
}

static void test_empty_and_single_key(hpool_pool *pool)
{
    const char *same[] = {"k k k", "k", "", "k k"};
    hpool_source *source;
    hpool_source_records(&source, (const void *const *)same, NULL, 4);
    hpool_pairs *pairs = NULL;
    CHECK_RC(0, run_keyed(pool, EMIT_WORDS, source, 0, WORD_COUNT, &pairs, NULL));
    CHECK(hpool_pairs_count(pairs) == 1);
    hpool_pair pair;
    CHECK_RC(0, hpool_pairs_get(pairs, 0, &pair));
    uint64_t count = 0;
    memcpy(&count, pair.value, 8);
    CHECK(pair.key_size == 1 && count == 6);
    CHECK_RC(HPOOL_EINVAL, hpool_pairs_get(pairs, 1, &pair));
    hpool_pairs_free(pairs);
    hpool_source_free(source);

    hpool_source *empty;
    hpool_source_range(&empty, 5, 5);
    CHECK_RC(0, run_keyed(pool, EMIT_INDEX, empty, 0, WORD_COUNT, &pairs, NULL));
    CHECK(pairs != NULL && hpool_pairs_count(pairs) == 0);
    hpool_pairs_free(pairs);
    hpool_source_free(empty);
}

int main(int argc, char **argv)
{
    CHECK_RC(0, hpool_mpi_init(&argc, &argv));
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = functions;
    options.function_count = sizeof functions / sizeof functions[0];
    options.keyed_reducers = keyed;
    options.keyed_reducer_count = sizeof keyed / sizeof keyed[0];
    if (argc > 1) { /* a memory budget in MiB */
        options.memory_budget = (size_t)atoll(argv[1]) << 20;
        small_budget = options.memory_budget > 0 && options.memory_budget < (64u << 20);
    }
    test_merge_misuse();
    hpool_pool *pool;
    int rc = hpool_pool_create(&pool, &options);
    CHECK_RC(0, rc);
    if (rc == 0 && hpool_pool_is_root(pool)) {
        test_empty_and_single_key(pool);
        test_word_count(pool, 20000);
        test_long_words(pool);
        test_builtin_order(pool);
        test_binary_and_failures(pool);
        test_reduced_groups(pool);
        test_inverted_index(pool);
        test_distinct_keys(pool, 2000000);
    }
    if (rc == 0) {
        CHECK_RC(0, hpool_pool_join(pool));
        hpool_pool_free(pool);
    }
    hpool_mpi_finalize();
    if (check_failures)
        fprintf(stderr, "test_keyed: %d checks failed\n", check_failures);
    return check_failures ? 1 : 0;
}
