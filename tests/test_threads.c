/* test_threads.c: where the number of threads per rank comes from, in order of precedence, pinning, and threads kept from one pool to the next. */
#define _GNU_SOURCE
#include "hpool.h"
#include "internal.h" /* hpool__test_arm: test builds only */
#include "check.h"

#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int threads_of_new_pool(int requested)
{
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.threads = requested;
    options.placement = -1; /* some cases below oversubscribe on purpose */
    hpool_pool *pool;
    if (hpool_pool_create(&pool, &options) != 0)
        return -1;
    int threads = hpool_pool_threads(pool);
    hpool_pool_join(pool);
    hpool_pool_free(pool);
    return threads;
}

static int at_least_one(int n)
{
    return n > 0 ? n : 1;
}

static int smaller(int a, int b)
{
    return a < b ? a : b;
}

/* Every variable the choice reads, so that the caller's environment (an
 * srun or mpirun around ctest, say) cannot change the answers. */
static void clear_environment(void)
{
    static const char *const variables[] = {
        "HPOOL_THREADS", "OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK", "OMPI_COMM_WORLD_LOCAL_SIZE",
        "OMPI_MCA_orte_bound_at_launch", "SLURM_STEP_TASKS_PER_NODE", "SLURM_NODEID", "SLURM_CPU_BIND_TYPE",
        "SLURM_CPUS_ON_NODE", "MPI_LOCALNRANKS", "HPOOL_BIND", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID",
        "MPI_LOCALRANKID"};
    for (size_t i = 0; i < sizeof variables / sizeof variables[0]; i++)
        unsetenv(variables[i]);
}

/* The launchers' environment: ranks per node, binding, the node's CPUs. */
static void check_launcher_environment(int mask, int online)
{
    clear_environment();
    CHECK(threads_of_new_pool(0) == mask);

    /* mpirun without binding (more ranks than cores, or --bind-to none):
     * the ranks on a node share one mask. */
    setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "2", 1);
    CHECK(threads_of_new_pool(0) == at_least_one(mask / 2));
    setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "1000", 1);
    CHECK(threads_of_new_pool(0) == 1);
    /* mpirun bound each rank: its mask, at most the node's CPUs per rank. */
    setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "2", 1);
    setenv("OMPI_MCA_orte_bound_at_launch", "1", 1);
    CHECK(threads_of_new_pool(0) == at_least_one(smaller(mask, online / 2)));
    setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "1", 1);
    CHECK(threads_of_new_pool(0) == at_least_one(smaller(mask, online)));
    clear_environment();

    /* srun: tasks per node of the step, this node's index in it. */
    setenv("SLURM_STEP_TASKS_PER_NODE", "3(x2),1", 1);
    setenv("SLURM_NODEID", "1", 1);
    CHECK(threads_of_new_pool(0) == at_least_one(mask / 3));
    setenv("SLURM_NODEID", "2", 1);
    CHECK(threads_of_new_pool(0) == mask);
    setenv("SLURM_NODEID", "7", 1); /* not in the list: as a plain run */
    CHECK(threads_of_new_pool(0) == mask);
    setenv("SLURM_NODEID", "0", 1);
    setenv("SLURM_STEP_TASKS_PER_NODE", "2(x", 1); /* malformed: ignored */
    CHECK(threads_of_new_pool(0) == mask);
    setenv("SLURM_STEP_TASKS_PER_NODE", "2", 1);
    CHECK(threads_of_new_pool(0) == at_least_one(mask / 2));
    /* srun --cpu-bind: bound, and the job's CPUs on the node count. */
    setenv("SLURM_CPU_BIND_TYPE", "mask_cpu:", 1);
    setenv("SLURM_CPUS_ON_NODE", "2", 1);
    CHECK(threads_of_new_pool(0) == 1);
    setenv("SLURM_CPU_BIND_TYPE", "none", 1); /* not bound after all */
    CHECK(threads_of_new_pool(0) == at_least_one(mask / 2));
    /* cpus-per-task beats the share. */
    setenv("SLURM_CPUS_PER_TASK", "5", 1);
    CHECK(threads_of_new_pool(0) == 5);
    clear_environment();

    /* MPICH's hydra. */
    setenv("MPI_LOCALNRANKS", "2", 1);
    CHECK(threads_of_new_pool(0) == at_least_one(mask / 2));
    clear_environment();
}

/* The variables' order of precedence. */
static void check_precedence(int mask)
{
    clear_environment();
    CHECK(threads_of_new_pool(0) == mask);
    setenv("SLURM_CPUS_PER_TASK", "5", 1);
    CHECK(threads_of_new_pool(0) == 5);
    setenv("OMP_NUM_THREADS", "4,2", 1); /* the outer level counts */
    CHECK(threads_of_new_pool(0) == 4);
    setenv("HPOOL_THREADS", "3", 1);
    CHECK(threads_of_new_pool(0) == 3);
    CHECK(threads_of_new_pool(2) == 2); /* options win over everything */
    setenv("HPOOL_THREADS", "zero", 1); /* hpool's own: an error, not skipped (test_faults_lib: the detail) */
    CHECK(threads_of_new_pool(0) == -1);
    setenv("HPOOL_THREADS", "", 1); /* empty is unset */
    CHECK(threads_of_new_pool(0) == 4);
    setenv("OMP_NUM_THREADS", "zero", 1); /* OpenMP's: skipped, OpenMP warns itself */
    CHECK(threads_of_new_pool(0) == 5);
    clear_environment();
}

/* Each item: how many CPUs the thread that ran it may use. */
static int cpus_of_worker(hpool_task *task, void *user)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 1;
    *(int64_t *)task->result = CPU_COUNT(&set);
    return 0;
}

/* Runs 64 one-item chunks on 2 threads and checks every worker's mask
 * size: 1 when pinned, the whole mask otherwise. */
static void check_pinning(int bind, int expected_cpus)
{
    static const hpool_function functions[] = {{.name = "cpus_of_worker", .map = cpus_of_worker}};
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = functions;
    options.function_count = 1;
    options.threads = 2;
    options.bind = bind;
    options.placement = -1;
    hpool_pool *pool;
    CHECK_RC(0, hpool_pool_create(&pool, &options));
    if (pool == NULL)
        return;
    int64_t cpus[64];
    hpool_source *range;
    CHECK_RC(0, hpool_source_range(&range, 0, 64));
    hpool_call call = HPOOL_CALL_INIT;
    call.source = range;
    call.chunksize = 1;
    call.results = cpus;
    call.result_size = sizeof cpus[0];
    CHECK_RC(0, hpool_map(pool, &call, NULL));
    for (int i = 0; i < 64; i++) /* -1: any, one worker may be unpinned */
        CHECK(expected_cpus < 0 ? cpus[i] >= 1 : cpus[i] == expected_cpus);
    hpool_source_free(range);
    hpool_pool_free(pool);
}

/* The oversubscription warning comes once per process, however many pools
 * oversubscribe; stderr goes to a file meanwhile. */
static void check_warning_once(int mask)
{
    char path[] = "/tmp/hpool-test-threads-XXXXXX";
    int file = mkstemp(path);
    CHECK(file >= 0);
    if (file < 0)
        return;
    fflush(stderr);
    int saved = dup(2);
    dup2(file, 2);
    for (int pools = 0; pools < 3; pools++) {
        hpool_options options = HPOOL_OPTIONS_INIT;
        options.threads = mask + 1;
        hpool_pool *pool;
        CHECK_RC(0, hpool_pool_create(&pool, &options));
        hpool_pool_free(pool);
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char text[4096] = "";
    ssize_t got = pread(file, text, sizeof text - 1, 0);
    close(file);
    unlink(path);
    text[got > 0 ? got : 0] = '\0';
    int warnings = 0;
    for (const char *at = text; (at = strstr(at, "hpool: warning:")) != NULL; at++)
        warnings++;
    CHECK(warnings == 1);
    char expected[128];
    snprintf(expected, sizeof expected, "%d worker threads in 1 rank share %d CPU", mask + 1, mask);
    CHECK(strstr(text, expected) != NULL);
}

/* The pool's threads, and how many of the first items have arrived. */
static int pool_threads;
static atomic_int arrived;

/* Each item: the id of the thread that ran it. The first pool_threads
 * items wait (up to 10 s) until that many run at once, so that every
 * thread of the pool runs one: which ran the rest is the scheduler's
 * business. */
static int thread_of_worker(hpool_task *task, void *user)
{
    (void)user;
    *(int64_t *)task->result = (int64_t)syscall(SYS_gettid);
    if (atomic_fetch_add(&arrived, 1) < pool_threads) {
        for (int waited = 0; atomic_load(&arrived) < pool_threads && waited < 10000; waited++)
            nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return 0;
}

/* The ids of the threads that ran 64 one-item chunks of a new pool of
 * threads threads, into ids (every one of its threads among them);
 * returns how many distinct ones, or -1. */
static int workers_of_new_pool(int threads, int64_t ids[64])
{
    static const hpool_function functions[] = {{.name = "thread_of_worker", .map = thread_of_worker}};
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = functions;
    options.function_count = 1;
    options.threads = threads;
    options.placement = -1;
    pool_threads = threads;
    atomic_store(&arrived, 0);
    hpool_pool *pool;
    if (hpool_pool_create(&pool, &options) != 0)
        return -1;
    hpool_source *range;
    hpool_source_range(&range, 0, 64);
    hpool_call call = HPOOL_CALL_INIT;
    call.source = range;
    call.chunksize = 1;
    call.results = ids;
    call.result_size = sizeof ids[0];
    int rc = hpool_map(pool, &call, NULL);
    hpool_source_free(range);
    hpool_pool_free(pool);
    if (rc != 0)
        return -1;
    int distinct = 0;
    for (int i = 0; i < 64; i++) {
        bool seen = false;
        for (int j = 0; j < i && !seen; j++)
            seen = ids[j] == ids[i];
        distinct += !seen;
    }
    return distinct;
}

static bool same_threads(const int64_t a[64], const int64_t b[64])
{
    for (int i = 0; i < 64; i++) {
        bool found = false;
        for (int j = 0; j < 64 && !found; j++)
            found = b[i] == a[j];
        if (!found)
            return false;
    }
    return true;
}

/* A freed pool's threads serve the next pool of as many threads (team.c,
 * crews); one of another size gets threads of its own; and a forked child,
 * which has none of its parent's threads, starts its own. */
static void check_threads_kept(void)
{
    int64_t first[64], second[64], third[64];
    CHECK(workers_of_new_pool(2, first) == 2);
    CHECK(workers_of_new_pool(2, second) == 2);
    CHECK(same_threads(first, second));
    CHECK(workers_of_new_pool(3, third) == 3);
    CHECK(!same_threads(first, third));
    CHECK(workers_of_new_pool(3, second) == 3);
    CHECK(same_threads(third, second));
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        alarm(20); /* a child waiting for its parent's threads would hang */
        int64_t ids[64];
        _exit(workers_of_new_pool(3, ids) == 3 && !same_threads(third, ids) ? 0 : 1);
    }
    int status = -1;
    CHECK(child > 0 && waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void)
{
    cpu_set_t set;
    sched_getaffinity(0, sizeof set, &set);
    int mask = CPU_COUNT(&set);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    check_precedence(mask);
    check_launcher_environment(mask, online > 0 ? (int)online : 1);

    check_pinning(1, 1);
    check_pinning(-1, mask);
    /* A worker that cannot read its mask stays unpinned, and the threads
     * kept for the next pool have the whole mask again, not a guess. */
    hpool__test_arm("worker_mask");
    check_pinning(1, -1);
    check_pinning(-1, mask);
    setenv("HPOOL_BIND", "1", 1);
    check_pinning(0, 1);
    setenv("HPOOL_BIND", "0", 1);
    check_pinning(0, mask);
    unsetenv("HPOOL_BIND");

    unsetenv("HPOOL_PLACEMENT");
    check_warning_once(mask);
    check_threads_kept();

    /* A narrower mask, as a launcher's binding gives: its CPUs count. */
    if (mask > 1) {
        cpu_set_t one;
        CPU_ZERO(&one);
        for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
            if (CPU_ISSET(cpu, &set)) {
                CPU_SET(cpu, &one);
                break;
            }
        CHECK(sched_setaffinity(0, sizeof one, &one) == 0);
        CHECK(threads_of_new_pool(0) == 1);
    }
    return check_failures ? 1 : 0;
}
