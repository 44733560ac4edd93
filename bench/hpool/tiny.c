/* tiny.c: hpool's cost per item: hpool_map of a function that does almost nothing over a range, chunksize 1. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */
#include <errno.h>
#include <hpool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* Almost no work, so the figure measures the pool itself: dispatch, the call,
 * collection and, over ranks, the messages. */
static int plus_one(hpool_task *task, void *user)
{
    *(uint64_t *)task->result = task->index + 1;
    return 0;
}

static const hpool_function functions[] = {{.name = "plus_one", .map = plus_one}};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int parse_count(const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-')
        return -1;
    *out = value;
    return 0;
}

static void usage(const char *program)
{
    fprintf(stderr,
            "usage: %s [--items N] [--chunksize C] [--window W]\n"
            "  maps x -> index+1 over range(0, N) (default 1000000) with chunksize C\n"
            "  (default 1; 0 = hpool's automatic chunking). Threads per rank come from\n"
            "  HPOOL_THREADS or OMP_NUM_THREADS; ranks from the launcher. A window of W\n"
            "  chunks (default 0: hpool's) of chunksize 1 makes every batch a single\n"
            "  item, so the call measures what one batch costs the root: the line then\n"
            "  also gives the root process's CPU time per item.\n",
            program);
}

/* User plus system CPU time of this whole process, in seconds. */
static double process_cpu_seconds(void)
{
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec * 1e-6 + (double)usage.ru_stime.tv_sec
           + (double)usage.ru_stime.tv_usec * 1e-6;
}

/* Runs the timed map on the root; returns the process exit status. */
static int run_root(hpool_pool *pool, uint64_t items, uint64_t chunksize)
{
    uint64_t *results = calloc(items ? items : 1, sizeof *results);
    hpool_source *range = NULL;
    if (results == NULL || hpool_source_range(&range, 0, (int64_t)items) != 0) {
        fprintf(stderr, "tiny: out of memory\n");
        free(results);
        return 1;
    }
    hpool_call call = HPOOL_CALL_INIT;
    call.function = 0;
    call.source = range;
    call.chunksize = (size_t)chunksize;
    call.results = results;
    call.result_size = sizeof results[0];
    hpool_report report;
    memset(&report, 0, sizeof report);

    double start = now_seconds(), cpu_start = process_cpu_seconds();
    int rc = hpool_map(pool, &call, &report);
    double seconds = now_seconds() - start, cpu = process_cpu_seconds() - cpu_start;

    int status = 0;
    if (rc != 0) {
        char text[160];
        hpool_report_format(&report, text, sizeof text);
        fprintf(stderr, "tiny: hpool_map: %s (%s): %s\n", hpool_err_name(rc), hpool_strerror(rc), text);
        status = 1;
    }
    for (uint64_t i = 0; i < items && status == 0; i++) {
        if (results[i] != i + 1) {
            fprintf(stderr, "tiny: result %" PRIu64 " is %" PRIu64 ", expected %" PRIu64 "\n", i,
                    results[i], i + 1);
            status = 1;
        }
    }
    if (status == 0)
        printf("tool hpool ranks %d threads %d items %" PRIu64 " chunksize %" PRIu64
               " seconds %.6f items/s %.4g root_cpu_us/item %.3f\n",
               hpool_pool_size(pool), hpool_pool_threads(pool), items, chunksize, seconds,
               (double)items / seconds, items ? cpu * 1e6 / (double)items : 0.0);
    hpool_source_free(range);
    free(results);
    return status;
}

int main(int argc, char **argv)
{
    int rc = hpool_mpi_init(&argc, &argv);
    if (rc != 0) {
        fprintf(stderr, "tiny: hpool_mpi_init: %s\n", hpool_strerror(rc));
        return 1;
    }
    uint64_t items = 1000000, chunksize = 1, window = 0;
    for (int i = 1; i < argc; i++) {
        uint64_t *target = NULL;
        if (strcmp(argv[i], "--items") == 0)
            target = &items;
        else if (strcmp(argv[i], "--chunksize") == 0)
            target = &chunksize;
        else if (strcmp(argv[i], "--window") == 0)
            target = &window;
        if (target == NULL || i + 1 == argc || parse_count(argv[i + 1], target) != 0 ||
            items > INT64_MAX) {
            usage(argv[0]);
            hpool_mpi_finalize();
            return 2;
        }
        i++;
    }

    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = functions;
    options.function_count = sizeof functions / sizeof functions[0];
    options.window = (size_t)window;
    hpool_pool *pool;
    rc = hpool_pool_create(&pool, &options);
    if (rc != 0) {
        fprintf(stderr, "tiny: hpool_pool_create: %s\n", hpool_strerror(rc));
        hpool_mpi_finalize();
        return 1;
    }
    int status = hpool_pool_is_root(pool) ? run_root(pool, items, chunksize) : 0;
    rc = hpool_pool_join(pool);
    if (rc != 0) {
        fprintf(stderr, "tiny: hpool_pool_join: %s\n", hpool_strerror(rc));
        status = 1;
    }
    hpool_pool_free(pool);
    hpool_mpi_finalize();
    return status;
}
