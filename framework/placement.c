/* placement.c: how many threads a rank runs, and whether a launcher started us. */
#define _GNU_SOURCE
#include "internal.h"

#include <sched.h>
#include <stdlib.h>

/* A positive integer at the start of the variable (OMP_NUM_THREADS may be a
 * list such as "4,2": its first level is ours), or 0. */
static int positive_from_env(const char *name)
{
    const char *text = getenv(name);
    if (text == NULL || *text == '\0')
        return 0;
    char *end;
    long value = strtol(text, &end, 10);
    if (end == text || value <= 0 || value > 4096)
        return 0;
    if (*end != '\0' && *end != ',')
        return 0;
    return (int)value;
}

static int cpus_in_affinity_mask(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 1;
    int count = CPU_COUNT(&set);
    return count > 0 ? count : 1;
}

int hpool__resolve_threads(int requested)
{
    if (requested > 0)
        return requested;
    static const char *const variables[] = {"HPOOL_THREADS", "OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK"};
    for (size_t i = 0; i < sizeof variables / sizeof variables[0]; i++) {
        int value = positive_from_env(variables[i]);
        if (value > 0)
            return value;
    }
    return cpus_in_affinity_mask();
}

bool hpool__launched_by_mpi_launcher(void)
{
    /* Open MPI's mpirun, PMIx (srun --mpi=pmix, prterun), and PMI-1/2
     * launchers (MPICH's hydra, srun --mpi=pmi2) each leave one of these. */
    static const char *const markers[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++)
        if (getenv(markers[i]) != NULL)
            return true;
    return false;
}
