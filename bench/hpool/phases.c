/* phases.c: an LD_PRELOAD shim that times a process's hpool and MPI set-up and teardown calls, for small_jobs.sh's "where the time goes". */
#define _GNU_SOURCE /* RTLD_NEXT */
#include <dlfcn.h>
#include <hpool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Each wrapper looks up the real function (the next definition after this
 * library: libhpool's or libmpi's), times it with CLOCK_MONOTONIC and adds
 * the time to its phase. At exit one line goes to stderr:
 *     hpool-phases: rank 0 main 2.311 hpool_mpi_init 0.000 ... exit 0.094 ms
 * main: from this library's constructor (the process's libraries loaded and
 * relocated) to the first timed call; exit: from the last timed call's end
 * to this library's atexit handler. MPI_Init_thread and MPI_Finalize are
 * timed inside hpool_mpi_init and hpool_mpi_finalize too, so that what
 * hpool adds to MPI's own start and end is the difference. Nothing here
 * changes what the calls do. A call made inside another timed hpool call
 * (hpool_pool_free joins through hpool_pool_join) counts in the outer one. */

enum { MPI_INIT, POOL_CREATE, CALL, POOL_JOIN, POOL_FREE, MPI_FINALIZE, RAW_INIT, RAW_FINALIZE, PHASES };
static const char *const names[PHASES] = {"hpool_mpi_init", "hpool_pool_create", "call", "hpool_pool_join",
                                          "hpool_pool_free", "hpool_mpi_finalize", "MPI_Init_thread", "MPI_Finalize"};
static uint64_t spent[PHASES];
static uint64_t loaded_ns, first_start_ns, last_end_ns;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void report(void)
{
    uint64_t end = now_ns();
    const char *rank = getenv("OMPI_COMM_WORLD_RANK");
    if (rank == NULL)
        rank = getenv("PMI_RANK");
    if (rank == NULL)
        rank = "-";
    char line[1024];
    int used = snprintf(line, sizeof line, "hpool-phases: rank %s main %.3f", rank,
                        (double)((first_start_ns ? first_start_ns : end) - loaded_ns) / 1e6);
    for (int phase = 0; phase < PHASES && used > 0 && (size_t)used < sizeof line; phase++)
        used += snprintf(line + used, sizeof line - (size_t)used, " %s %.3f", names[phase], (double)spent[phase] / 1e6);
    if (used > 0 && (size_t)used < sizeof line)
        snprintf(line + used, sizeof line - (size_t)used, " exit %.3f ms\n",
                 (double)(end - (last_end_ns ? last_end_ns : end)) / 1e6);
    fputs(line, stderr);
}

__attribute__((constructor)) static void loaded(void)
{
    loaded_ns = now_ns();
    atexit(report);
}

/* Nonzero while this thread is inside a timed hpool call. */
static __thread int inside;

static uint64_t started(void)
{
    uint64_t start = now_ns();
    if (first_start_ns == 0)
        first_start_ns = start;
    return start;
}

static void ended(int phase, uint64_t start)
{
    last_end_ns = now_ns();
    spent[phase] += last_end_ns - start;
}

/* Times an hpool call that returns rc, unless it was made inside another. */
#define TIMED(phase, call)                                                                                   \
    do {                                                                                                     \
        if (inside++) {                                                                                      \
            call;                                                                                            \
        } else {                                                                                             \
            uint64_t start = started();                                                                      \
            call;                                                                                            \
            ended(phase, start);                                                                             \
        }                                                                                                    \
        inside--;                                                                                            \
    } while (0)

#define REAL(name) static __typeof__(name) *real; if (real == NULL) real = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

int hpool_mpi_init(int *argc, char ***argv)
{
    REAL(hpool_mpi_init);
    int rc;
    TIMED(MPI_INIT, rc = real(argc, argv));
    return rc;
}

int hpool_pool_create(hpool_pool **pool, const hpool_options *options)
{
    REAL(hpool_pool_create);
    int rc;
    TIMED(POOL_CREATE, rc = real(pool, options));
    return rc;
}

int hpool_map(hpool_pool *pool, const hpool_call *call, hpool_report *report_out)
{
    REAL(hpool_map);
    int rc;
    TIMED(CALL, rc = real(pool, call, report_out));
    return rc;
}

int hpool_map_reduce(hpool_pool *pool, const hpool_call *call, hpool_report *report_out)
{
    REAL(hpool_map_reduce);
    int rc;
    TIMED(CALL, rc = real(pool, call, report_out));
    return rc;
}

int hpool_pool_join(hpool_pool *pool)
{
    REAL(hpool_pool_join);
    int rc;
    TIMED(POOL_JOIN, rc = real(pool));
    return rc;
}

void hpool_pool_free(hpool_pool *pool)
{
    REAL(hpool_pool_free);
    TIMED(POOL_FREE, real(pool));
}

int hpool_mpi_finalize(void)
{
    REAL(hpool_mpi_finalize);
    int rc;
    TIMED(MPI_FINALIZE, rc = real());
    return rc;
}

int MPI_Init_thread(int *argc, char ***argv, int required, int *provided)
{
    REAL(MPI_Init_thread);
    uint64_t start = started();
    int rc = real(argc, argv, required, provided);
    ended(RAW_INIT, start);
    return rc;
}

int MPI_Finalize(void)
{
    REAL(MPI_Finalize);
    uint64_t start = started();
    int rc = real();
    ended(RAW_FINALIZE, start);
    return rc;
}
