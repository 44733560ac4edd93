/* test_threads.c: where the number of threads per rank comes from, in order of precedence. */
#define _GNU_SOURCE
#include "hpool.h"
#include "check.h"

#include <sched.h>
#include <stdlib.h>

static int threads_of_new_pool(int requested)
{
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.threads = requested;
    hpool_pool *pool;
    if (hpool_pool_create(&pool, &options) != 0)
        return -1;
    int threads = hpool_pool_threads(pool);
    hpool_pool_join(pool);
    hpool_pool_free(pool);
    return threads;
}

int main(void)
{
    unsetenv("HPOOL_THREADS");
    unsetenv("OMP_NUM_THREADS");
    unsetenv("SLURM_CPUS_PER_TASK");
    cpu_set_t set;
    sched_getaffinity(0, sizeof set, &set);
    CHECK(threads_of_new_pool(0) == CPU_COUNT(&set));
    setenv("SLURM_CPUS_PER_TASK", "5", 1);
    CHECK(threads_of_new_pool(0) == 5);
    setenv("OMP_NUM_THREADS", "4,2", 1); /* the outer level counts */
    CHECK(threads_of_new_pool(0) == 4);
    setenv("HPOOL_THREADS", "3", 1);
    CHECK(threads_of_new_pool(0) == 3);
    CHECK(threads_of_new_pool(2) == 2); /* options win over everything */
    setenv("HPOOL_THREADS", "zero", 1); /* unusable values are skipped */
    CHECK(threads_of_new_pool(0) == 4);
    return check_failures ? 1 : 0;
}
