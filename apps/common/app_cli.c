/* app_cli.c: which rank speaks for an app under mpirun, and the usage-error, error-detail and version lines it prints. */
#include "app_cli.h"

#include <hpool.h> /* mpi.h, with the MPI the pool was built on */
#include <stdarg.h>
#include <stdio.h>

int app_speaks_for_all_ranks(void)
{
    /* Without a launcher hpool_mpi_init leaves MPI alone, and the lone
     * process is the one that must speak. */
    int initialized = 0;
    if (MPI_Initialized(&initialized) != MPI_SUCCESS || !initialized)
        return 1;
    int rank = 0;
    if (MPI_Comm_rank(MPI_COMM_WORLD, &rank) != MPI_SUCCESS)
        return 1;
    return rank == 0;
}

void app_usage_error(const char *program, const char *format, ...)
{
    if (!app_speaks_for_all_ranks())
        return;
    /* Straight to stderr rather than through a buffer, which would cut a
     * long argument short. */
    fprintf(stderr, "%s: ", program);
    va_list arguments;
    va_start(arguments, format);
    vfprintf(stderr, format, arguments);
    va_end(arguments);
    fprintf(stderr, "\nTry '%s --help' for more information.\n", program);
}

void app_print_version(const char *program)
{
    if (app_speaks_for_all_ranks())
        printf("%s (hpool) %s\n", program, hpool_version_string());
}

void app_print_error(const char *program, const char *doing, int code)
{
    char detail[512];
    hpool_error_detail(code, detail, sizeof detail);
    if (doing != NULL)
        fprintf(stderr, "%s: %s: %s\n", program, doing, detail);
    else
        fprintf(stderr, "%s: %s\n", program, detail);
    /* A stalled rank would hold MPI_Finalize, and so the job, forever: the
     * app, not the library, ends the job, and mpirun kills what is stopped. */
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (code == HPOOL_ESTALLED && initialized && !finalized) {
        fflush(NULL);
        MPI_Abort(MPI_COMM_WORLD, EXIT_SOME_FAILED);
    }
}
