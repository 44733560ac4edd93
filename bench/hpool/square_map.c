/* square_map.c: hpool doing what Python's multiprocessing.Pool(2).map(square, range(10**6)) does, as a whole process. */
#include <errno.h>
#include <hpool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int square(hpool_task *task, void *user)
{
    int64_t x = *(const int64_t *)task->input;
    *(int64_t *)task->result = x * x;
    return 0;
}

static const hpool_function functions[] = {{.name = "square", .map = square}};

static int parse_count(const char *text, long long *out)
{
    char *end;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < 0)
        return -1;
    *out = value;
    return 0;
}

/* Maps, then prints the checksum that square_map.py prints too; returns the exit status. */
static int run_root(hpool_pool *pool, int64_t items)
{
    int64_t *results = malloc((size_t)(items ? items : 1) * sizeof *results);
    hpool_source *range = NULL;
    if (results == NULL || hpool_source_range(&range, 0, items) != 0) {
        fprintf(stderr, "square_map: out of memory\n");
        free(results);
        return 1;
    }
    hpool_call call = HPOOL_CALL_INIT;
    call.function = 0;
    call.source = range;
    call.chunksize = 0; /* as Pool.map without chunksize: the pool picks */
    call.results = results;
    call.result_size = sizeof results[0];
    hpool_report report;
    memset(&report, 0, sizeof report);
    int rc = hpool_map(pool, &call, &report);
    int status = 0;
    if (rc != 0) {
        char text[160];
        hpool_report_format(&report, text, sizeof text);
        fprintf(stderr, "square_map: hpool_map: %s: %s\n", hpool_strerror(rc), text);
        status = 1;
    } else {
        /* Summed in the caller, as Python's sum(pool.map(...)), so every result is read. */
        uint64_t sum = 0;
        for (int64_t i = 0; i < items; i++)
            sum += (uint64_t)results[i];
        printf("sum %" PRIu64 "\n", sum);
    }
    hpool_source_free(range);
    free(results);
    return status;
}

int main(int argc, char **argv)
{
    int rc = hpool_mpi_init(&argc, &argv);
    if (rc != 0) {
        fprintf(stderr, "square_map: hpool_mpi_init: %s\n", hpool_strerror(rc));
        return 1;
    }
    long long items = 1000000, threads = 2;
    for (int i = 1; i < argc; i++) {
        long long *target = NULL;
        if (strcmp(argv[i], "--items") == 0)
            target = &items;
        else if (strcmp(argv[i], "--threads") == 0)
            target = &threads;
        if (target == NULL || i + 1 == argc || parse_count(argv[i + 1], target) != 0 ||
            threads > 4096) {
            fprintf(stderr, "usage: %s [--items N (1000000)] [--threads T (2, 0 = hpool's default)]\n",
                    argv[0]);
            hpool_mpi_finalize();
            return 2;
        }
        i++;
    }

    hpool_options options = HPOOL_OPTIONS_INIT;
    /* Fixed at 2 by default rather than taken from the environment, to match Pool(2). */
    options.threads = (int)threads;
    options.functions = functions;
    options.function_count = sizeof functions / sizeof functions[0];
    hpool_pool *pool;
    rc = hpool_pool_create(&pool, &options);
    if (rc != 0) {
        fprintf(stderr, "square_map: hpool_pool_create: %s\n", hpool_strerror(rc));
        hpool_mpi_finalize();
        return 1;
    }
    int status = hpool_pool_is_root(pool) ? run_root(pool, (int64_t)items) : 0;
    rc = hpool_pool_join(pool);
    if (rc != 0) {
        fprintf(stderr, "square_map: hpool_pool_join: %s\n", hpool_strerror(rc));
        status = 1;
    }
    hpool_pool_free(pool);
    hpool_mpi_finalize();
    return status;
}
