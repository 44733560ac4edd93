/* test_interface.c: the interface's promises: versioned structs, the call's argument on every rank, error details, reserved fields, a second free. */
#include "check.h"

#include <hpool.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* x * n, n the call's argument: Python's pool.map(partial(times, n), xs). */
static int times(hpool_task *task, void *user)
{
    (void)user;
    if (task->argument == NULL || task->argument_size != sizeof(int64_t))
        return 5;
    int64_t n;
    memcpy(&n, task->argument, sizeof n);
    *(int64_t *)task->result = *(const int64_t *)task->input * n;
    return 0;
}

/* The same as a span function, which sees the argument on its span. */
static int times_span(hpool_span *span, void *user)
{
    (void)user;
    if (span->argument == NULL || span->argument_size != sizeof(int64_t))
        return 6;
    int64_t n;
    memcpy(&n, span->argument, sizeof n);
    for (size_t i = 0; i < span->count; i++)
        ((int64_t *)span->results)[i] = (span->range_first + (int64_t)i) * n;
    return 0;
}

/* Emits the argument's bytes as the item's record: an argument of any
 * size, here bigger than a batch's items. */
static int echo_argument(hpool_task *task, void *user)
{
    (void)user;
    return hpool_task_emit(task, task->argument, task->argument_size);
}

static int no_argument(hpool_task *task, void *user)
{
    (void)user;
    return task->argument == NULL && task->argument_size == 0 ? 0 : 7;
}

/* Keyed: each of a few items emits 64 keys (so every rank owns some, even
 * ranks that run no item), valued by the argument as the map function and
 * its emitter see it; the reduce function checks its own view and sums. */
static int emit_keys(hpool_task *task, void *user)
{
    (void)user;
    const void *data;
    size_t size;
    if (hpool_emitter_argument(task->emitter, &data, &size) != 0 || size != sizeof(int64_t)
        || data == NULL || task->argument_size != size || memcmp(data, task->argument, size) != 0)
        return 8;
    int64_t n;
    memcpy(&n, data, sizeof n);
    for (int64_t k = 0; k < 64; k++) {
        int64_t key = k, value = n * (*(const int64_t *)task->input + 1);
        if (hpool_emit(task->emitter, &key, sizeof key, &value, sizeof value) != 0)
            return 9;
    }
    return 0;
}

static int sum_times_argument(const void *key, size_t key_size, hpool_values *values, hpool_emitter *out,
                              void *user)
{
    (void)user;
    const void *data;
    size_t size;
    if (hpool_emitter_argument(out, &data, &size) != 0 || size != sizeof(int64_t))
        return 10;
    int64_t n, sum = 0;
    memcpy(&n, data, sizeof n);
    const void *value;
    size_t value_size;
    while (hpool_values_next(values, &value, &value_size) == 0)
        sum += *(const int64_t *)value;
    sum *= n; /* the reduce function uses the argument too */
    return hpool_emit(out, key, key_size, &sum, sizeof sum);
}

static const hpool_keyed_reducer keyed_reducers[] = {{.name = "sum_times_argument", .reduce = sum_times_argument}};

static const hpool_function functions[] = {
    {.name = "times", .map = times},
    {.name = "times_span", .span = times_span},
    {.name = "echo_argument", .map = echo_argument},
    {.name = "no_argument", .map = no_argument},
    {.name = "emit_keys", .map = emit_keys},
};

/* The detail of code on this thread, into a static buffer. */
static const char *detail(int code)
{
    static char text[512];
    hpool_error_detail(code, text, sizeof text);
    return text;
}

#define CHECK_DETAIL(code, needle)                                                                    \
    do {                                                                                              \
        if (strstr(detail(code), (needle)) == NULL) {                                                 \
            fprintf(stderr, "%s:%d: detail \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, detail(code), \
                    (needle));                                                                        \
            check_failures++;                                                                         \
        }                                                                                             \
    } while (0)

static void test_argument(hpool_pool *pool)
{
    enum { N = 5000 };
    static int64_t out[N];
    hpool_source *range;
    CHECK_RC(0, hpool_source_range(&range, 0, N));
    for (int function = 0; function < 2; function++) {
        for (int64_t n = 3; n <= 5; n += 2) {
            memset(out, 0, sizeof out);
            int64_t argument = n;
            hpool_call call = HPOOL_CALL_INIT;
            call.function = function;
            call.source = range;
            call.results = out;
            call.result_size = sizeof out[0];
            call.chunksize = 7;
            call.argument = &argument;
            call.argument_size = sizeof argument;
            hpool_async *async;
            CHECK_RC(0, hpool_map_async(pool, &call, &async));
            argument = -1; /* copied when the call started */
            CHECK_RC(0, hpool_async_get(async, -1, NULL));
            hpool_async_free(async);
            size_t wrong = 0;
            for (int64_t i = 0; i < N; i++)
                wrong += out[i] != i * n;
            CHECK(wrong == 0);
        }
    }
    /* A big argument, and none. */
    size_t big_size = 100000;
    unsigned char *big = malloc(big_size);
    for (size_t i = 0; i < big_size; i++)
        big[i] = (unsigned char)(i * 31 + 7);
    hpool_records *records = NULL;
    hpool_source *few;
    CHECK_RC(0, hpool_source_range(&few, 0, 40));
    hpool_call call = HPOOL_CALL_INIT;
    call.function = 2;
    call.source = few;
    call.records = &records;
    call.chunksize = 1;
    call.argument = big;
    call.argument_size = big_size;
    CHECK_RC(0, hpool_map(pool, &call, NULL));
    for (uint64_t i = 0; records != NULL && i < hpool_records_count(records); i++) {
        const void *data;
        size_t size;
        CHECK_RC(0, hpool_records_get(records, i, &data, &size));
        CHECK(size == big_size && memcmp(data, big, big_size) == 0);
    }
    hpool_records_free(records);
    call = (hpool_call)HPOOL_CALL_INIT;
    call.function = 3;
    call.source = few;
    hpool_report report;
    CHECK_RC(0, hpool_map(pool, &call, &report));
    CHECK(report.failed == 0);
    for (size_t i = 0; i < sizeof report.reserved / sizeof report.reserved[0]; i++)
        CHECK(report.reserved[i] == 0);
    /* An argument size without bytes. */
    call.argument_size = 4;
    CHECK_RC(HPOOL_EINVAL, hpool_map(pool, &call, NULL));
    CHECK_DETAIL(HPOOL_EINVAL, "call.argument is NULL");
    free(big);
    hpool_source_free(few);
    hpool_source_free(range);
}

static void test_keyed_argument(hpool_pool *pool)
{
    hpool_source *few;
    CHECK_RC(0, hpool_source_range(&few, 0, 3)); /* items 0, 1, 2: values n, 2n, 3n */
    int64_t n = 7;
    hpool_pairs *pairs = NULL;
    hpool_call call = HPOOL_CALL_INIT;
    call.function = 4;
    call.source = few;
    call.chunksize = 1;
    call.reducer = 0;
    call.pairs = &pairs;
    call.argument = &n;
    call.argument_size = sizeof n;
    hpool_report report;
    CHECK_RC(0, hpool_map_reduce_keyed(pool, &call, &report));
    CHECK(report.failed == 0);
    CHECK(pairs != NULL && hpool_pairs_count(pairs) == 64);
    for (uint64_t i = 0; pairs != NULL && i < hpool_pairs_count(pairs); i++) {
        hpool_pair pair;
        CHECK_RC(0, hpool_pairs_get(pairs, i, &pair));
        CHECK(pair.value_size == sizeof(int64_t) && *(const int64_t *)pair.value == 6 * n * n);
    }
    hpool_pairs_free(pairs);
    hpool_source_free(few);
}

static void test_struct_sizes(hpool_pool *pool)
{
    hpool_source *range;
    CHECK_RC(0, hpool_source_range(&range, 0, 10));
    int64_t out[10];
    int64_t n = 2;

    /* An uninitialised struct_size is refused, and the detail says how. */
    hpool_call call = HPOOL_CALL_INIT;
    call.source = range;
    call.results = out;
    call.result_size = sizeof out[0];
    call.argument = &n;
    call.argument_size = sizeof n;
    call.struct_size = 0;
    CHECK_RC(HPOOL_EINVAL, hpool_map(pool, &call, NULL));
    CHECK_DETAIL(HPOOL_EINVAL, "HPOOL_CALL_INIT");
    call.struct_size = (size_t)1 << 40;
    CHECK_RC(HPOOL_EINVAL, hpool_map(pool, &call, NULL));

    /* A newer header's bigger struct: accepted when its unknown fields
     * are zero, refused when one is set. */
    struct {
        hpool_call call;
        uint64_t newer_fields[4];
    } newer;
    memset(&newer, 0, sizeof newer);
    newer.call = call;
    newer.call.struct_size = sizeof newer;
    CHECK_RC(0, hpool_map(pool, &newer.call, NULL));
    CHECK(out[9] == 18);
    newer.newer_fields[2] = 1;
    CHECK_RC(HPOOL_EINVAL, hpool_map(pool, &newer.call, NULL));
    CHECK_DETAIL(HPOOL_EINVAL, "newer hpool.h");

    /* The same for the options (on every rank alike, so it is safe
     * collectively: no rank reaches the communicator). */
    hpool_options options = HPOOL_OPTIONS_INIT;
    hpool_pool *other = NULL;
    options.struct_size = 3;
    CHECK_RC(HPOOL_EINVAL, hpool_pool_create(&other, &options));
    CHECK(other == NULL);
    CHECK_DETAIL(HPOOL_EINVAL, "HPOOL_OPTIONS_INIT");
    hpool_source_free(range);
}

static void test_details(hpool_pool *pool)
{
    hpool_source *range;
    CHECK_RC(0, hpool_source_range(&range, 0, 10));
    hpool_call call = HPOOL_CALL_INIT;
    call.source = range;
    call.result_size = 8;
    CHECK_RC(HPOOL_EINVAL, hpool_map(pool, &call, NULL));
    CHECK_DETAIL(HPOOL_EINVAL, "call.result_size is 8 but call.results is NULL");
    /* Another code than the last error's: its plain sentence. */
    CHECK(strcmp(detail(HPOOL_ECLOSED), hpool_strerror(HPOOL_ECLOSED)) == 0);
    call.result_size = 0;
    call.function = 99;
    CHECK_RC(HPOOL_EINVAL, hpool_map(pool, &call, NULL));
    CHECK_DETAIL(HPOOL_EINVAL, "call.function is 99");
    call.function = 0;
    call.source = NULL;
    CHECK_RC(HPOOL_EINVAL, hpool_map(pool, &call, NULL));
    CHECK_DETAIL(HPOOL_EINVAL, "call.source is NULL");

    /* A failed item: the detail is the report's sentence. */
    call = (hpool_call)HPOOL_CALL_INIT;
    call.source = range;
    int64_t out[10];
    call.results = out;
    call.result_size = sizeof out[0]; /* "times" without an argument fails every item with 5 */
    CHECK_RC(HPOOL_EFAILED, hpool_map(pool, &call, NULL));
    CHECK_DETAIL(HPOOL_EFAILED, "10 of 10 items failed");

    /* The buffer: cut, always terminated, the whole length returned. */
    char small[8];
    int length = hpool_error_detail(HPOOL_EFAILED, small, sizeof small);
    CHECK(length > (int)sizeof small && strlen(small) == sizeof small - 1);
    CHECK_RC(HPOOL_EINVAL, hpool_error_detail(HPOOL_EFAILED, NULL, 4));
    CHECK_RC(HPOOL_EINVAL, hpool_error_detail(HPOOL_EFAILED, small, 0));

    /* A success forgets the last detail. */
    call.function = 3;
    call.results = NULL;
    call.result_size = 0;
    CHECK_RC(0, hpool_map(pool, &call, NULL));
    CHECK(strcmp(detail(HPOOL_EFAILED), hpool_strerror(HPOOL_EFAILED)) == 0);
    hpool_source_free(range);

    /* A NULL record is refused when the source is made, not found by the
     * worker that packs it; NULL of 0 bytes is an empty record. */
    const char *names[] = {"a", NULL, "c"};
    hpool_source *records = (hpool_source *)names;
    CHECK_RC(HPOOL_EINVAL, hpool_source_records(&records, (const void *const *)names, NULL, 3));
    CHECK(records == NULL);
    CHECK_DETAIL(HPOOL_EINVAL, "record 1 is NULL");
    size_t sizes[] = {1, 4, 1};
    CHECK_RC(HPOOL_EINVAL, hpool_source_records(&records, (const void *const *)names, sizes, 3));
    CHECK_DETAIL(HPOOL_EINVAL, "record 1 is NULL, with a size of 4 bytes");
    sizes[1] = 0;
    CHECK_RC(0, hpool_source_records(&records, (const void *const *)names, sizes, 3));
    call = (hpool_call)HPOOL_CALL_INIT;
    call.source = records;
    call.function = 3;
    CHECK_RC(0, hpool_map(pool, &call, NULL));
    hpool_source_free(records);
}

/* Table entries with non-zero reserved fields are refused: later
 * versions give them meaning. */
static void test_reserved(void)
{
    hpool_function entries[] = {{.name = "times", .map = times}};
    entries[0].reserved[1] = entries;
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = entries;
    options.function_count = 1;
    hpool_pool *pool = NULL;
    CHECK_RC(HPOOL_EINVAL, hpool_pool_create(&pool, &options));
    CHECK_DETAIL(HPOOL_EINVAL, "reserved");
    CHECK(pool == NULL);
}

int main(int argc, char **argv)
{
    CHECK_RC(0, hpool_mpi_init(&argc, &argv));
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = functions;
    options.function_count = sizeof functions / sizeof functions[0];
    options.keyed_reducers = keyed_reducers;
    options.keyed_reducer_count = 1;
    hpool_pool *pool = NULL;
    CHECK_RC(0, hpool_pool_create(&pool, &options));
    if (pool == NULL)
        return 1;
    if (hpool_pool_is_root(pool)) {
        test_argument(pool);
        test_keyed_argument(pool);
        test_struct_sizes(pool);
        test_details(pool);
    } else {
        /* Only the root calls. */
        hpool_call call = HPOOL_CALL_INIT;
        hpool_source *range;
        hpool_source_range(&range, 0, 1);
        call.source = range;
        CHECK_RC(HPOOL_ENOTROOT, hpool_map(pool, &call, NULL));
        CHECK_DETAIL(HPOOL_ENOTROOT, "only the root, rank 0");
        hpool_source_free(range);
    }
    CHECK_RC(0, hpool_pool_join(pool));
    hpool_pool_free(pool);
    hpool_pool_free(pool); /* a second free does nothing, on every rank */
    test_reserved();
    int rank = 0;
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized)
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    CHECK_RC(0, hpool_mpi_finalize());
    if (check_failures == 0 && rank == 0)
        printf("interface: all checks passed\n");
    return check_failures != 0;
}
