/* test_crash.c: a map function that dies of a signal, or runs too long, is named on stderr by the crash and slow-item reports (tests/test_crash.sh checks the lines). */
#define _POSIX_C_SOURCE 200809L
#include <hpool.h>

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *mode = "segv";
static int crash_rank;

/* Dies at item 17 (on the crashing rank: its first item there, under
 * mpirun), or sleeps 2.5 s at item 3 for the slow-item report. */
static int crasher(hpool_task *task, void *user)
{
    int rank = *(const int *)user;
    int64_t x = *(const int64_t *)task->input;
    bool here = crash_rank == 0 ? x == 17 : rank == crash_rank;
    if (strcmp(mode, "slow") == 0) {
        if (x == 3) {
            struct timespec nap = {2, 500 * 1000 * 1000};
            nanosleep(&nap, NULL);
        }
    } else if (here) {
        if (strcmp(mode, "segv") == 0 || strcmp(mode, "off") == 0)
            *(volatile int *)(uintptr_t)(task->index * 16) = 1; /* a wild write, as a bug makes */
        else if (strcmp(mode, "abort") == 0)
            abort();
        else if (strcmp(mode, "fpe") == 0)
            raise(SIGFPE);
    }
    *(int64_t *)task->result = x;
    return 0;
}

/* Keyed: every item emits ("boom", 1); the reduce function dies on it. */
static int emit_boom(hpool_task *task, void *user)
{
    (void)user;
    int64_t one = 1;
    return hpool_emit(task->emitter, "boom", 4, &one, sizeof one);
}

static int reduce_dies(const void *key, size_t key_size, hpool_values *values, hpool_emitter *out, void *user)
{
    (void)values;
    (void)out;
    (void)user;
    static volatile uintptr_t wild = 256; /* an address the compiler cannot see through */
    if (key_size == 4 && memcmp(key, "boom", 4) == 0)
        *(volatile int *)wild = 1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        mode = argv[1];
    hpool_mpi_init(&argc, &argv);
    int rank = 0, size = 1, initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) {
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &size);
    }
    crash_rank = size > 1 ? 1 : 0;
    hpool_function functions[] = {{.name = "crasher", .map = crasher, .user = &rank},
                                  {.name = "emit_boom", .map = emit_boom}};
    static const hpool_keyed_reducer keyed[] = {{.name = "dies", .reduce = reduce_dies}};
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = functions;
    options.function_count = 2;
    options.keyed_reducers = keyed;
    options.keyed_reducer_count = 1;
    hpool_pool *pool = NULL;
    int rc = hpool_pool_create(&pool, &options);
    if (rc != 0) {
        char detail[256];
        hpool_error_detail(rc, detail, sizeof detail);
        fprintf(stderr, "test_crash: hpool_pool_create: %s\n", detail);
        return 3;
    }
    if (hpool_pool_is_root(pool)) {
        enum { N = 400 };
        static int64_t out[N];
        hpool_source *range;
        hpool_source_range(&range, 0, N);
        hpool_call call = HPOOL_CALL_INIT;
        call.source = range;
        call.results = out;
        call.result_size = sizeof out[0];
        call.chunksize = 1;
        if (strcmp(mode, "reduce") == 0) {
            hpool_pairs *pairs = NULL;
            call.function = 1;
            call.results = NULL;
            call.result_size = 0;
            call.reducer = 0;
            call.pairs = &pairs;
            rc = hpool_map_reduce_keyed(pool, &call, NULL);
            hpool_pairs_free(pairs);
        } else {
            rc = hpool_map(pool, &call, NULL);
        }
        hpool_source_free(range);
    }
    hpool_pool_free(pool);
    hpool_mpi_finalize();
    /* Reached only when nothing crashed: the slow mode. */
    printf("test_crash: %s ended with %s\n", mode, hpool_err_name(rc));
    return rc == 0 ? 0 : 1;
}
