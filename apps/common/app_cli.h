/* app_cli.h: what the command lines of square and metatags do the same way: exit statuses, which rank speaks, usage-error lines. */
#ifndef APP_CLI_H
#define APP_CLI_H

/* The exit statuses of every hpool app; each app's --help says what falls
 * under 1 and 2 for it. */
enum {
    EXIT_ALL_GOOD = 0,
    EXIT_SOME_FAILED = 1, /* something was reported on stderr, or a run-time error */
    EXIT_USAGE = 2,       /* the command line was refused */
    /* EX_TEMPFAIL of sysexits.h: a signal (a time limit, scancel, ^C)
     * stopped the run before every item ran; a rerun with the same
     * --journal resumes (app_stop.h). */
    EXIT_STOPPED = 75
};

#if defined(__GNUC__)
#define APP_PRINTF_LIKE(format_index, first_argument) \
    __attribute__((format(printf, format_index, first_argument)))
#else
#define APP_PRINTF_LIKE(format_index, first_argument)
#endif

/* Returns 1 on the process that speaks for all ranks: rank 0 of
 * MPI_COMM_WORLD, or any process where MPI is not initialised or cannot name
 * its rank. Every rank parses the same argv and reaches the same verdict;
 * only this one prints it, or a run under mpirun -n 64 would repeat each
 * usage error 64 times. Call it after hpool_mpi_init. */
int app_speaks_for_all_ranks(void);

/* On the rank that speaks for all, prints
 *     PROGRAM: MESSAGE
 *     Try 'PROGRAM --help' for more information.
 * on stderr, MESSAGE formatted as printf does; on the other ranks, nothing. */
void app_usage_error(const char *program, const char *format, ...) APP_PRINTF_LIKE(2, 3);

/* Prints "PROGRAM: DOING: DETAIL" on stderr, DETAIL being what
 * hpool_error_detail() says of code, the last error hpool returned to this
 * thread: which field, rank or function, not only the code's sentence.
 * DOING may be NULL. On every rank: each rank's detail is its own. After
 * HPOOL_ESTALLED (a rank stopped answering) it ends the job with
 * MPI_Abort(EXIT_SOME_FAILED), since MPI_Finalize would wait for that rank. */
void app_print_error(const char *program, const char *doing, int code);

/* On the rank that speaks for all, prints "PROGRAM (hpool) X.Y.Z" on
 * stdout, the version of the hpool library it runs on. */
void app_print_version(const char *program);

#endif
