/* app_stop.h: what square, metatags and wordcount do alike when a signal stops them (exit 75, one line) and to key a --journal to their inputs and options. */
#ifndef APP_STOP_H
#define APP_STOP_H

#include "app_cli.h" /* EXIT_STOPPED */

#include <hpool.h>
#include <stddef.h>
#include <stdint.h>

/* Call first in main, before hpool_mpi_init: until a pool takes them,
 * SIGTERM, SIGINT, SIGUSR1 and SIGUSR2 are held (the first one is kept),
 * not fatal, so that one that comes during MPI_Init or the teardown (mpirun
 * forwards them to ranks still starting) neither kills a rank with an
 * undocumented status nor is lost. Also unblocks them. */
void app_hold_stop_signals(void);

/* Makes SIGTERM, SIGINT, SIGUSR1 and SIGUSR2 stop the pool (the first one
 * drains, a second one stops at once), and stops it with the
 * signal app_hold_stop_signals held, if one came. Call on every rank right
 * after hpool_pool_create, so that a signal to any rank stops the whole
 * pool. hpool_pool_free puts the holding handler back.
 * Returns 0, or the code of hpool_pool_stop_on_signal. */
int app_stop_on_signals(hpool_pool *pool);

/* After a call ended with HPOOL_ESTOPPED: prints one line on stderr,
 *     PROGRAM: stopped by SIGTERM after 51,234 of 100,000 UNIT; rerun with the same --journal to resume
 * ("; rerun to start again" when journal is NULL; no " of TOTAL" when
 * total is 0: the input's end was not reached, so its size is unknown).
 * Returns EXIT_STOPPED, also after a stop at once (a second signal): the
 * items still running then are abandoned on every rank, and join waits
 * only for each rank's engine to say it stopped, so the job ends through
 * MPI_Finalize. A rank that never says so makes join return
 * HPOOL_ESTALLED, after which app_print_error ends the job. */
int app_report_stopped(hpool_pool *pool, const char *program, uint64_t completed, uint64_t total,
                       const char *unit, const char *journal);

/* The journal's failures: HPOOL_EJOURNAL (a journal of other inputs or
 * options) prints "PROGRAM: JOURNAL: DETAIL" and returns EXIT_USAGE, since
 * the command line does not match the journal; any other code (HPOOL_EIO:
 * it cannot be read, written or synced) prints the same way and returns
 * EXIT_SOME_FAILED. Returns -1 for a code that is not the journal's. */
int app_journal_failure(const char *program, const char *journal, int code);

/* The bytes of call.journal_key: what decides a run's output beyond what
 * hpool sees. Fields are appended as NAME=VALUE and a NUL, so that two
 * different sets of fields never make the same bytes. */
typedef struct app_journal_key {
    char *bytes;
    size_t size;
    size_t capacity;
    int failed; /* out of memory: the key is unusable */
} app_journal_key;

void app_journal_key_add(app_journal_key *key, const char *name, const char *value);
void app_journal_key_add_number(app_journal_key *key, const char *name, long long value);
/* A file named on the command line: its path, size and modification time
 * (to the nanosecond), so that a journal of an older version of the file is
 * refused. A file that cannot be stat'ed adds its path and the errno. */
void app_journal_key_add_file(app_journal_key *key, const char *name, const char *path);
void app_journal_key_free(app_journal_key *key);

#endif
