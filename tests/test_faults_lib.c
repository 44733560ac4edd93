/* test_faults_lib.c: faults the library must report, never crash on: spill files that cannot be made or written, too many threads, invalid environment values. */
#define _GNU_SOURCE
#include "hpool.h"
#include "check.h"

#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* Usage: test_faults_lib spill DIR | vanish DIR | full DIR [KIB] | threads | probe | env
 *   spill: DIR cannot hold files (it does not exist): every keyed call
 *          that spills fails with HPOOL_EIO, naming DIR and the cause.
 *   vanish: DIR (made here) vanishes in the shuffle: the shuffle's
 *          spills fail the same way.
 *   full:  run with a file size limit (ulimit -f, SIGXFSZ ignored), or
 *          with KIB, set it here once the pool exists (under mpirun, whose
 *          own files would exceed it and which makes SIGXFSZ kill again):
 *          a spill to DIR fails with HPOOL_EIO, naming the write and EFBIG.
 *   threads: too many threads fail creation with HPOOL_ETHREAD everywhere.
 *   probe: run under ulimit -v: 1000 threads cannot start, HPOOL_ETHREAD.
 *   env:   invalid HPOOL_THREADS, HPOOL_MEMORY_BUDGET, HPOOL_BIND and
 *          HPOOL_PLACEMENT fail creation with HPOOL_EINVAL everywhere. */

/* Key = the index's 8 bytes: every item a distinct key, so spills are big. */
static int emit_index(hpool_task *task, void *user)
{
    (void)user;
    uint64_t x = (uint64_t)*(const int64_t *)task->input;
    unsigned char key[8];
    for (int b = 0; b < 8; b++)
        key[b] = (unsigned char)(x >> (56 - 8 * b));
    return hpool_emit(task->emitter, key, sizeof key, &x, sizeof x);
}

static int square(hpool_task *task, void *user)
{
    (void)user;
    int64_t x = *(const int64_t *)task->input;
    *(int64_t *)task->result = x * x;
    return 0;
}

/* Key = the index halved: each key twice, from two chunks of one item
 * (so no map-side merge), whose pairs lie side by side in the outbox and
 * so meet in a merge at the key's owner, in the shuffle. */
#define TWICE_ITEMS 20000
static int emit_twice(hpool_task *task, void *user)
{
    (void)user;
    uint64_t x = (uint64_t)*(const int64_t *)task->input;
    uint64_t key = x / 2;
    return hpool_emit(task->emitter, &key, sizeof key, &x, sizeof x);
}

/* The spill directory, removed by the first merge (the outbox files are
 * unlinked already): the shuffle's spills then fail. */
static const char *vanishing_dir;

static int merge_and_remove_dir(const void *a, size_t a_size, const void *b, size_t b_size, void *out,
                                size_t *out_size, void *user)
{
    (void)a_size, (void)b_size, (void)user;
    if (vanishing_dir != NULL)
        rmdir(vanishing_dir); /* once per process; the other ranks' fail with ENOENT */
    uint64_t x, y;
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    uint64_t least = x < y ? x : y;
    memcpy(out, &least, 8);
    *out_size = 8;
    return 0;
}

static const hpool_function functions[] = {
    {.name = "emit_index", .map = emit_index},
    {.name = "square", .map = square},
    {.name = "emit_twice", .map = emit_twice},
};
enum { EMIT_INDEX, SQUARE, EMIT_TWICE };
static const hpool_keyed_reducer keyed[] = {
    {.name = "pass_through"},
    {.name = "merge_and_remove_dir", .merge = merge_and_remove_dir},
};
enum { PASS_THROUGH, MERGE_AND_REMOVE_DIR };

static hpool_options base_options(void)
{
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = functions;
    options.function_count = sizeof functions / sizeof functions[0];
    options.keyed_reducers = keyed;
    options.keyed_reducer_count = sizeof keyed / sizeof keyed[0];
    return options;
}

static bool contains(const char *text, const char *part)
{
    if (strstr(text, part) != NULL)
        return true;
    fprintf(stderr, "detail \"%s\" lacks \"%s\"\n", text, part);
    return false;
}

/* A keyed call over n items: its code, and its detail in detail. */
static int keyed_call(hpool_pool *pool, int function, int reducer, int64_t n, char *detail, size_t size)
{
    hpool_source *range;
    CHECK_RC(0, hpool_source_range(&range, 0, n));
    hpool_pairs *pairs = NULL;
    hpool_call call = HPOOL_CALL_INIT;
    call.function = function;
    call.source = range;
    call.reducer = reducer;
    call.chunksize = function == EMIT_TWICE ? 1 : 0;
    call.pairs = &pairs;
    hpool_report report;
    int rc = hpool_map_reduce_keyed(pool, &call, &report);
    hpool_error_detail(rc, detail, size);
    if (rc == 0)
        CHECK(hpool_pairs_count(pairs) == (uint64_t)(function == EMIT_TWICE ? n / 2 : n));
    else
        CHECK(report.failed == 0); /* a spill's failure is the call's, not its items' */
    hpool_pairs_free(pairs);
    hpool_source_free(range);
    return rc;
}

/* After a failed keyed call the pool still works. */
static void check_pool_works(hpool_pool *pool)
{
    int64_t inputs[100], outputs[100];
    for (int i = 0; i < 100; i++)
        inputs[i] = i;
    hpool_source *source;
    CHECK_RC(0, hpool_source_array(&source, inputs, sizeof inputs[0], 100));
    hpool_call call = HPOOL_CALL_INIT;
    call.function = SQUARE;
    call.source = source;
    call.results = outputs;
    call.result_size = sizeof outputs[0];
    CHECK_RC(0, hpool_map(pool, &call, NULL));
    CHECK(outputs[99] == 99 * 99);
    hpool_source_free(source);
}

/* Spills to dir (options.temp_dir, or TMPDIR when through_env), a budget
 * of one byte: the call fails with HPOOL_EIO and a detail with each part. */
static long file_size_limit_kib; /* full KIB: set once the pool exists */

static void test_spill(const char *dir, bool through_env, const char *const *parts)
{
    hpool_options options = base_options();
    options.memory_budget = 1;
    if (through_env)
        setenv("TMPDIR", dir, 1);
    else
        options.temp_dir = dir;
    hpool_pool *pool;
    int rc = hpool_pool_create(&pool, &options);
    CHECK_RC(0, rc);
    if (rc != 0)
        return;
    if (file_size_limit_kib > 0) {
        signal(SIGXFSZ, SIG_IGN); /* the test's choice: hpool leaves dispositions alone */
        struct rlimit limit = {(rlim_t)file_size_limit_kib << 10, (rlim_t)file_size_limit_kib << 10};
        CHECK(setrlimit(RLIMIT_FSIZE, &limit) == 0);
    }
    if (hpool_pool_is_root(pool)) {
        char detail[512];
        for (int round = 0; round < 2; round++) { /* the second finds the first's outbox state */
            CHECK_RC(HPOOL_EIO, keyed_call(pool, EMIT_INDEX, PASS_THROUGH, 300000, detail, sizeof detail));
            if (round == 0)
                printf("keyed call's detail: %s\n", detail);
            for (const char *const *part = parts; *part != NULL; part++)
                CHECK(contains(detail, *part));
            CHECK(contains(detail, through_env ? "(TMPDIR)" : "(options.temp_dir)"));
            if (hpool_pool_size(pool) > 1)
                CHECK(contains(detail, "rank "));
        }
        check_pool_works(pool);
    }
    CHECK_RC(0, hpool_pool_join(pool));
    hpool_pool_free(pool);
    if (through_env)
        unsetenv("TMPDIR");
}

/* The spill directory exists while the ranks map, and vanishes as the
 * shuffle merges: spills of the shuffle (each owner's sorted runs) fail. */
static void test_vanishing_dir(const char *dir)
{
    mkdir(dir, 0700); /* each rank; EEXIST is fine */
    hpool_options options = base_options();
    options.memory_budget = 1;
    options.temp_dir = dir;
    hpool_pool *pool;
    int rc = hpool_pool_create(&pool, &options);
    CHECK_RC(0, rc);
    if (rc != 0)
        return;
    vanishing_dir = dir;
    if (hpool_pool_is_root(pool)) {
        char detail[512];
        CHECK_RC(HPOOL_EIO, keyed_call(pool, EMIT_TWICE, MERGE_AND_REMOVE_DIR, TWICE_ITEMS, detail, sizeof detail));
        printf("keyed call's detail: %s\n", detail);
        CHECK(contains(detail, "cannot create a spill file in "));
        CHECK(contains(detail, dir));
        CHECK(contains(detail, "No such file or directory (options.temp_dir)"));
        check_pool_works(pool);
    }
    CHECK_RC(0, hpool_pool_join(pool));
    hpool_pool_free(pool);
    vanishing_dir = NULL;
    rmdir(dir);
}

/* Creation fails with code on every rank, and the detail holds each part. */
static void check_create_fails(const hpool_options *options, int code, const char *const *parts)
{
    hpool_pool *pool = NULL;
    int rc = hpool_pool_create(&pool, options);
    CHECK_RC(code, rc);
    CHECK(pool == NULL);
    char detail[512];
    hpool_error_detail(rc, detail, sizeof detail);
    printf("creation's detail: %s\n", detail);
    for (const char *const *part = parts; *part != NULL; part++)
        CHECK(contains(detail, *part));
    if (rc == 0)
        hpool_pool_free(pool);
}

/* Run with an address space too small for 1000 threads' stacks (ulimit
 * -v): the probe finds it, and OpenMP never tries (it would exit(1)). */
static void test_probe(void)
{
    hpool_options options = base_options();
    options.threads = 1000;
    check_create_fails(&options, HPOOL_ETHREAD,
                       (const char *const[]){"1000 worker threads", "cannot start", "ulimit -v", NULL});
}

static void test_threads(void)
{
    hpool_options options = base_options();
    options.threads = 100000;
    check_create_fails(&options, HPOOL_ETHREAD, (const char *const[]){"100000", "options.threads", "4096", NULL});
    options.threads = 0;
    const char *saved = getenv("HPOOL_THREADS");
    char *copy = saved ? strdup(saved) : NULL;
    setenv("HPOOL_THREADS", "100000", 1);
    check_create_fails(&options, HPOOL_ETHREAD, (const char *const[]){"100000", "HPOOL_THREADS", "4096", NULL});
    setenv("HPOOL_THREADS", "4097", 1);
    check_create_fails(&options, HPOOL_ETHREAD, (const char *const[]){"4097", "HPOOL_THREADS", "4096", NULL});
    if (copy != NULL)
        setenv("HPOOL_THREADS", copy, 1);
    else
        unsetenv("HPOOL_THREADS");
    free(copy);
    /* A count within the limit still works. */
    options.threads = 2;
    hpool_pool *pool;
    CHECK_RC(0, hpool_pool_create(&pool, &options));
    CHECK(hpool_pool_threads(pool) == 2);
    hpool_pool_free(pool);
}

/* name=value makes creation fail with HPOOL_EINVAL naming both. */
static void check_invalid(const char *name, const char *value)
{
    const char *saved = getenv(name);
    char *copy = saved ? strdup(saved) : NULL;
    setenv(name, value, 1);
    hpool_options options = base_options();
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\"", value);
    check_create_fails(&options, HPOOL_EINVAL, (const char *const[]){name, quoted, NULL});
    if (copy != NULL)
        setenv(name, copy, 1);
    else
        unsetenv(name);
    free(copy);
}

/* name=value is accepted. */
static void check_valid(const char *name, const char *value)
{
    const char *saved = getenv(name);
    char *copy = saved ? strdup(saved) : NULL;
    setenv(name, value, 1);
    hpool_options options = base_options();
    hpool_pool *pool;
    int rc = hpool_pool_create(&pool, &options);
    CHECK_RC(0, rc);
    if (rc != 0)
        fprintf(stderr, "%s=\"%s\" was refused\n", name, value);
    else
        hpool_pool_free(pool);
    if (copy != NULL)
        setenv(name, copy, 1);
    else
        unsetenv(name);
    free(copy);
}

static void test_env(void)
{
    static const char *const not_counts[] = {"abc", "-3", "0", "4x", "+2", "2.5", " "};
    for (size_t v = 0; v < sizeof not_counts / sizeof not_counts[0]; v++) {
        check_invalid("HPOOL_THREADS", not_counts[v]);
        check_invalid("HPOOL_MEMORY_BUDGET", not_counts[v]);
    }
    check_invalid("HPOOL_BIND", "maybe");
    check_invalid("HPOOL_BIND", "2");
    check_invalid("HPOOL_PLACEMENT", "loud");
    check_valid("HPOOL_THREADS", "2");
    check_valid("HPOOL_THREADS", "");
    check_valid("HPOOL_MEMORY_BUDGET", "64");
    check_valid("HPOOL_BIND", "off");
    check_valid("HPOOL_BIND", "TRUE");
    check_valid("HPOOL_PLACEMENT", "quiet");
    /* Given in the options, the variable is not read. */
    setenv("HPOOL_THREADS", "abc", 1);
    hpool_options options = base_options();
    options.threads = 1;
    hpool_pool *pool;
    CHECK_RC(0, hpool_pool_create(&pool, &options));
    hpool_pool_free(pool);
    unsetenv("HPOOL_THREADS");
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    CHECK_RC(0, hpool_mpi_init(&argc, &argv));
    if (strcmp(mode, "spill") == 0 && argc > 2) {
        const char *parts[] = {"cannot create a spill file in ", argv[2], "No such file or directory", NULL};
        test_spill(argv[2], false, parts);
        test_spill(argv[2], true, parts);
    } else if (strcmp(mode, "vanish") == 0 && argc > 2) {
        test_vanishing_dir(argv[2]);
    } else if (strcmp(mode, "full") == 0 && argc > 2) {
        file_size_limit_kib = argc > 3 ? atol(argv[3]) : 0;
        const char *parts[] = {"cannot write to a spill file in ", argv[2], "File too large", NULL};
        test_spill(argv[2], false, parts);
    } else if (strcmp(mode, "threads") == 0) {
        test_threads();
    } else if (strcmp(mode, "probe") == 0) {
        test_probe();
    } else if (strcmp(mode, "env") == 0) {
        test_env();
    } else {
        fprintf(stderr, "usage: test_faults_lib spill DIR | vanish DIR | full DIR [KIB] | threads | probe | env\n");
        check_failures++;
    }
    hpool_mpi_finalize();
    if (check_failures)
        fprintf(stderr, "test_faults_lib %s: %d checks failed\n", mode, check_failures);
    return check_failures ? 1 : 0;
}
