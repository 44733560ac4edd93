/* test_error_codes.c: the error codes no other test reaches, through the public API, with the test build's fault hooks. */
#include "check.h"
#include "internal.h" /* hpool__test_arm, hpool__test_fail_allocation: test builds only */

#include <stdlib.h>
#include <string.h>

/* Usage: test_error_codes agree | peer | eio | nomem | nompi | mpilevel */

static int square(hpool_task *task, void *user)
{
    int64_t x = *(const int64_t *)task->input;
    *(int64_t *)task->result = x * x;
    return 0;
}

static int twice(hpool_task *task, void *user)
{
    int64_t x = *(const int64_t *)task->input;
    *(int64_t *)task->result = 2 * x;
    return 0;
}

static void add_i64(void *accumulator, const void *value, void *user)
{
    *(int64_t *)accumulator += *(const int64_t *)value;
}

static const int64_t zero = 0;
static const hpool_function functions[] = {{.name = "square", .map = square}, {.name = "twice", .map = twice}};
static const hpool_reducer reducers[] = {{.name = "sum", .value_size = sizeof(int64_t), .identity = &zero,
                                          .combine = add_i64}};

/* Whether this thread's detail of code contains needle; prints it if not. */
static int detail_has(int code, const char *needle)
{
    char detail[512];
    hpool_error_detail(code, detail, sizeof detail);
    if (strstr(detail, needle) != NULL)
        return 1;
    fprintf(stderr, "detail \"%s\" lacks \"%s\"\n", detail, needle);
    return 0;
}

static hpool_options base_options(void)
{
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = functions;
    options.function_count = 1;
    options.reducers = reducers;
    options.reducer_count = 1;
    options.threads = 2;
    options.placement = -1;
    return options;
}

/* The map that must work after every failed creation: nothing was left
 * hanging. */
static void check_pool_works(void)
{
    hpool_options options = base_options();
    hpool_pool *pool = NULL;
    CHECK_RC(0, hpool_pool_create(&pool, &options));
    if (pool == NULL)
        return;
    if (hpool_pool_is_root(pool)) {
        int64_t out[100];
        hpool_source *source;
        hpool_source_range(&source, 0, 100);
        hpool_call call = HPOOL_CALL_INIT;
        call.source = source;
        call.results = out;
        call.result_size = sizeof out[0];
        CHECK_RC(0, hpool_map(pool, &call, NULL));
        CHECK(out[9] == 81 && out[99] == 9801);
        hpool_source_free(source);
    }
    CHECK_RC(0, hpool_pool_join(pool));
    hpool_pool_free(pool);
}

/* Each way creation can fail on one rank fails it on every rank, with the
 * same code, and nobody waits. */
static void test_agree(void)
{
    int rank = 0, size = 1, initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) {
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &size);
    }
    bool last = rank == size - 1;
    hpool_options options;
    hpool_pool *pool;

    /* The last rank's options are invalid. */
    options = base_options();
    if (last)
        options.threads = -1;
    CHECK_RC(HPOOL_EINVAL, hpool_pool_create(&pool, &options));
    CHECK(pool == NULL);
    /* the rank at fault says what, the others which rank */
    char failed_rank[64];
    snprintf(failed_rank, sizeof failed_rank, "rank %d failed", size - 1);
    CHECK(detail_has(HPOOL_EINVAL, last ? "options.threads is -1" : failed_rank));

    /* The last rank registers another table. */
    if (size > 1) {
        options = base_options();
        if (last)
            options.function_count = 2;
        CHECK_RC(HPOOL_EMISMATCH, hpool_pool_create(&pool, &options));
        if (rank == 0) {
            char expected[160];
            snprintf(expected, sizeof expected,
                     "rank %d registered function 1 \"twice\" where rank 0 has reducer 0 \"sum\"", size - 1);
            CHECK(detail_has(HPOOL_EMISMATCH, expected));
        }
        options = base_options();
        if (last)
            options.root = 1; /* the others say 0 */
        CHECK_RC(HPOOL_EMISMATCH, hpool_pool_create(&pool, &options));
    }

    /* The last rank runs a build that speaks the next protocol version. */
    if (size > 1) {
        options = base_options();
        if (last)
            hpool__test_arm("protocol_version");
        CHECK_RC(HPOOL_EVERSION, hpool_pool_create(&pool, &options));
        CHECK(detail_has(HPOOL_EVERSION, "the ranks speak hpool protocol versions"));
    }

    /* The last rank's threads cannot start: after the collective checks. */
    options = base_options();
    if (last)
        hpool__test_arm("team_start");
    CHECK_RC(HPOOL_ETHREAD, hpool_pool_create(&pool, &options));
    CHECK(pool == NULL);

    /* The last rank runs out of memory at its first few allocations. */
    for (long skip = 0; skip < 4; skip++) {
        options = base_options();
        if (last)
            hpool__test_fail_allocation(skip, false);
        CHECK_RC(HPOOL_ENOMEM, hpool_pool_create(&pool, &options));
        hpool__test_fail_allocation(-1, false);
    }
    check_pool_works();
}

/* A message that arrives with a wrong magic fails the call with
 * HPOOL_EPEER on the root instead of being read. */
static void test_peer(void)
{
    hpool_options options = base_options();
    options.threads = 1;
    hpool_pool *pool = NULL;
    CHECK_RC(0, hpool_pool_create(&pool, &options));
    if (pool == NULL)
        return;
    if (hpool_pool_size(pool) < 2) {
        fprintf(stderr, "peer: needs 2 ranks\n");
        check_failures++;
    }
    if (hpool_pool_rank(pool) == 1)
        hpool__test_arm("corrupt_send"); /* its first result or credit */
    MPI_Barrier(MPI_COMM_WORLD);          /* armed before any batch arrives */
    if (hpool_pool_is_root(pool)) {
        int64_t *out = calloc(10000, sizeof *out);
        hpool_source *source;
        hpool_source_range(&source, 0, 10000);
        hpool_call call = HPOOL_CALL_INIT;
        call.source = source;
        call.results = out;
        call.result_size = sizeof *out;
        call.chunksize = 1;
        hpool_report report;
        CHECK_RC(HPOOL_EPEER, hpool_map(pool, &call, &report));
        CHECK(detail_has(HPOOL_EPEER, "rank 1 sent a malformed message"));
        CHECK_RC(HPOOL_EPEER, report.status);
        hpool_source_free(source);
        /* Freed at once: a failed call returns only after the root's own
         * threads stopped writing into out (ASan would see them). */
        free(out);
        CHECK_RC(HPOOL_EPEER, hpool_pool_join(pool));
        CHECK(detail_has(HPOOL_EPEER, "rank 1 sent a malformed message"));
    } else {
        CHECK_RC(0, hpool_pool_join(pool));
    }
    hpool_pool_free(pool);
}

/* A producer that fails with a positive code ends the call with HPOOL_EIO,
 * after the items it gave are mapped. */
typedef struct producer_state {
    int64_t next;
    int64_t value;
} producer_state;

static int produce(const void **data, size_t *size, void *user)
{
    producer_state *state = user;
    if (state->next == 50)
        return 5; /* an errno-like failure of the caller's own */
    state->value = state->next++;
    *data = &state->value;
    *size = sizeof state->value;
    return 0;
}

static int square_record(hpool_task *task, void *user)
{
    int64_t x;
    memcpy(&x, task->input, sizeof x);
    int64_t y = x * x;
    return hpool_task_emit(task, &y, sizeof y);
}

static void test_eio(void)
{
    static const hpool_function record_functions[] = {{.name = "square_record", .map = square_record}};
    hpool_options options = base_options();
    options.functions = record_functions;
    hpool_pool *pool = NULL;
    CHECK_RC(0, hpool_pool_create(&pool, &options));
    if (pool == NULL)
        return;
    if (hpool_pool_is_root(pool)) {
        producer_state state = {0, 0};
        hpool_source *source;
        CHECK_RC(0, hpool_source_producer(&source, produce, &state));
        hpool_records *records = NULL;
        hpool_call call = HPOOL_CALL_INIT;
        call.source = source;
        call.records = &records;
        hpool_report report;
        CHECK_RC(HPOOL_EIO, hpool_map(pool, &call, &report));
        CHECK(state.next == 50);
        hpool_records_free(records);
        hpool_source_free(source);
    }
    CHECK_RC(0, hpool_pool_join(pool));
    hpool_pool_free(pool);
}

/* Every allocation of a create, map, map_reduce and free fails in turn:
 * each returns HPOOL_ENOMEM (or reports the items it lost as failed with
 * it), never crashes or hangs, and a call that says 0 is right. Plain runs
 * only: one rank. */
static long current_skip;

static int run_everything(int *codes_seen)
{
    static const hpool_function both[] = {{.name = "square", .map = square},
                                          {.name = "square_record", .map = square_record}};
    hpool_options options = base_options();
    options.functions = both;
    options.function_count = 2;
    hpool_pool *pool = NULL;
    int rc = hpool_pool_create(&pool, &options);
    if (rc != 0) {
        CHECK_RC(HPOOL_ENOMEM, rc);
        return rc;
    }
    int64_t out[500];
    memset(out, 0, sizeof out);
    hpool_source *source = NULL;
    rc = hpool_source_range(&source, 0, 500);
    if (rc == 0) {
        hpool_call call = HPOOL_CALL_INIT;
        call.source = source;
        call.results = out;
        call.result_size = sizeof out[0];
        call.chunksize = 3;
        hpool_report report;
        rc = hpool_map(pool, &call, &report);
        CHECK(rc == 0 || rc == HPOOL_ENOMEM || (rc == HPOOL_EFAILED && report.first_failed_code == HPOOL_ENOMEM));
        if (rc == 0)
            CHECK(out[7] == 49 && out[499] == 499 * 499);
        *codes_seen |= rc == 0 ? 1 : 2;
        int64_t sum = -1;
        call.results = NULL;
        call.result_size = 0;
        call.reducer = 0;
        call.reduction = &sum;
        rc = hpool_map_reduce(pool, &call, &report);
        CHECK(rc == 0 || rc == HPOOL_ENOMEM || (rc == HPOOL_EFAILED && report.first_failed_code == HPOOL_ENOMEM));
        if (rc == 0 && sum != 499 * 500 * 999 / 6) {
            fprintf(stderr, "map_reduce returned 0 with sum %lld (skip %ld)\n", (long long)sum, current_skip);
            CHECK(sum == 499 * 500 * 999 / 6);
        }
    }
    if (rc == 0 || rc == HPOOL_EFAILED || rc == HPOOL_ENOMEM) {
        /* A stream of records, in order: every item comes back, a result
         * or a failure, and the stream ends. */
        hpool_call call = HPOOL_CALL_INIT;
        call.function = 1; /* square_record */
        call.source = source;
        call.chunksize = 5;
        hpool_iter *iter = NULL;
        int started = source != NULL ? hpool_imap(pool, &call, &iter) : HPOOL_ENOMEM;
        CHECK(started == 0 || started == HPOOL_ENOMEM);
        uint64_t seen = 0;
        hpool_result result;
        int next = 0;
        while (started == 0 && (next = hpool_iter_next(iter, &result, -1)) == 0) {
            int64_t y = -1;
            if (result.status == 0 && result.size == sizeof y)
                memcpy(&y, result.data, sizeof y);
            CHECK(result.status != 0 || y == (int64_t)(result.index * result.index));
            CHECK(result.index == seen);
            seen++;
        }
        if (started == 0) {
            CHECK(next == HPOOL_EOF || next == HPOOL_ENOMEM);
            int status = hpool_iter_report(iter, NULL);
            CHECK(status == 0 || status == HPOOL_EFAILED || status == HPOOL_ENOMEM);
            if (status == 0)
                CHECK(seen == 500);
            hpool_iter_free(iter);
        }
    }
    hpool_source_free(source);
    int joined = hpool_pool_join(pool);
    CHECK(joined == 0 || joined == HPOOL_ENOMEM);
    hpool_pool_free(pool);
    return rc;
}

static void test_nomem(void)
{
    int codes_seen = 0, runs = 0;
    for (long skip = 0;; skip++) {
        unsigned long before = hpool__test_allocations();
        current_skip = skip;
        hpool__test_fail_allocation(skip, skip % 7 == 3); /* some runs: every allocation after fails too */
        run_everything(&codes_seen);
        hpool__test_fail_allocation(-1, false);
        runs++;
        if (hpool__test_allocations() - before <= (unsigned long)skip || check_failures > 0)
            break; /* the run made fewer allocations than skip: nothing failed */
    }
    printf("nomem: %d runs\n", runs);
    CHECK(runs > 20);
    CHECK(codes_seen == 3); /* some calls failed and the last ones passed */
}

/* hpool__accept_struct with layouts of its own: a later library has
 * fields the caller's older header lacks (they keep their defaults), an
 * earlier library gets a newer caller's (accepted when zero). */
typedef struct layout_1 {
    size_t struct_size;
    int a;
    int padding; /* explicit: a layout ends without implicit padding (errors.c) */
} layout_1;
typedef struct layout_2 {
    size_t struct_size;
    int a;
    int padding;
    uint64_t b; /* added in layout 2, default 7 */
    uint64_t c; /* added in layout 2, default 9 */
} layout_2;

static void test_structs(void)
{
    /* An older caller: a, and b and c from the defaults. */
    layout_1 older = {sizeof older, 5, 0};
    layout_2 accepted = {sizeof accepted, 0, 0, 7, 9};
    CHECK_RC(0, hpool__accept_struct(&accepted, sizeof accepted, sizeof(layout_1), &older, older.struct_size, "test",
                                     "TEST_INIT"));
    CHECK(accepted.struct_size == sizeof accepted && accepted.a == 5 && accepted.b == 7 && accepted.c == 9);
    /* Smaller than the oldest layout: refused. */
    CHECK_RC(HPOOL_EINVAL, hpool__accept_struct(&accepted, sizeof accepted, sizeof(layout_1), &older,
                                                sizeof(size_t), "test", "TEST_INIT"));
    /* A newer caller, to a library of layout 1: b and c must be zero. */
    layout_2 newer = {sizeof newer, 6, 0, 0, 0};
    layout_1 old_library = {sizeof old_library, 0, 0};
    CHECK_RC(0, hpool__accept_struct(&old_library, sizeof old_library, sizeof(layout_1), &newer, newer.struct_size,
                                     "test", "TEST_INIT"));
    CHECK(old_library.a == 6 && old_library.struct_size == sizeof old_library);
    newer.c = 1;
    CHECK_RC(HPOOL_EINVAL, hpool__accept_struct(&old_library, sizeof old_library, sizeof(layout_1), &newer,
                                                newer.struct_size, "test", "TEST_INIT"));
    char detail[256];
    hpool_error_detail(HPOOL_EINVAL, detail, sizeof detail);
    CHECK(strstr(detail, "newer hpool.h") != NULL);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "structs") == 0) {
        test_structs();
        if (check_failures == 0)
            printf("structs: all checks passed\n");
        return check_failures ? 1 : 0;
    }
    if (strcmp(mode, "nompi") == 0) {
        /* Never initialises MPI: under a launcher that is HPOOL_ENOMPI, so
         * the job does not split into one-rank pools; plain, it works. */
        hpool_options options = base_options();
        hpool_pool *pool = NULL;
        int expected = hpool__launched_by_mpi_launcher() ? HPOOL_ENOMPI : 0;
        CHECK_RC(expected, hpool_pool_create(&pool, &options));
        hpool_pool_free(pool);
        return check_failures ? 1 : 0;
    }
    if (strcmp(mode, "mpilevel") == 0) {
        int provided = 0;
        MPI_Init_thread(&argc, &argv, MPI_THREAD_SINGLE, &provided);
        if (provided >= MPI_THREAD_SERIALIZED) {
            printf("mpilevel: this MPI gives %d for SINGLE: nothing to check\n", provided);
            MPI_Finalize();
            return 77;
        }
        hpool_options options = base_options();
        hpool_pool *pool = NULL;
        CHECK_RC(HPOOL_EMPILEVEL, hpool_pool_create(&pool, &options));
        CHECK(pool == NULL);
        MPI_Finalize();
        return check_failures ? 1 : 0;
    }
    CHECK_RC(0, hpool_mpi_init(&argc, &argv));
    if (strcmp(mode, "agree") == 0)
        test_agree();
    else if (strcmp(mode, "peer") == 0)
        test_peer();
    else if (strcmp(mode, "eio") == 0)
        test_eio();
    else if (strcmp(mode, "nomem") == 0)
        test_nomem();
    else {
        fprintf(stderr, "usage: test_error_codes agree | peer | eio | nomem | nompi | mpilevel\n");
        check_failures++;
    }
    hpool_mpi_finalize();
    if (check_failures == 0)
        printf("%s: all checks passed\n", mode);
    return check_failures ? 1 : 0;
}
