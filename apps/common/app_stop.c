/* app_stop.c: the apps' signals that stop a pool, the one line and exit 75 after a stop, journal failures, and journal keys. */
#define _POSIX_C_SOURCE 200809L /* struct stat's st_mtim, to the nanosecond */
#include "app_stop.h"

#include "app_cli.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* SIGUSR1 and SIGUSR2 because mpirun forwards them to every rank, where a
 * SIGTERM to mpirun kills the ranks instead. */
static const int stop_signals[] = {SIGTERM, SIGINT, SIGUSR1, SIGUSR2};
#define STOP_SIGNAL_COUNT (sizeof stop_signals / sizeof stop_signals[0])

/* The first stop signal that came while no pool could take it. */
static volatile sig_atomic_t held_signal;

static void hold_signal(int signal)
{
    if (held_signal == 0)
        held_signal = signal;
}

void app_hold_stop_signals(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = hold_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigset_t unblocked;
    sigemptyset(&unblocked);
    for (size_t i = 0; i < STOP_SIGNAL_COUNT; i++) {
        sigaction(stop_signals[i], &action, NULL);
        sigaddset(&unblocked, stop_signals[i]);
    }
    /* A launcher's blocked mask would keep the stop from ever coming;
     * unblocked, a signal pending since before exec is held now. */
    sigprocmask(SIG_UNBLOCK, &unblocked, NULL);
}

int app_stop_on_signals(hpool_pool *pool)
{
    for (size_t i = 0; i < STOP_SIGNAL_COUNT; i++) {
        int rc = hpool_pool_stop_on_signal(pool, stop_signals[i]);
        if (rc != 0)
            return rc;
    }
    /* Handed to the pool as if it came now, so that its stop names it. */
    if (held_signal != 0)
        raise(held_signal);
    return 0;
}

static const char *signal_name(int signal)
{
    switch (signal) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    case 0: return "a request";
    default: return "a signal";
    }
}

/* 51234 as "51,234": the counts may be billions, and grouped digits read
 * at a glance. */
static void format_grouped(uint64_t value, char *text, size_t size)
{
    char digits[32];
    int length = snprintf(digits, sizeof digits, "%" PRIu64, value);
    size_t at = 0;
    for (int i = 0; i < length && at + 2 < size; i++) {
        if (i > 0 && (length - i) % 3 == 0)
            text[at++] = ',';
        text[at++] = digits[i];
    }
    text[at] = '\0';
}

int app_report_stopped(hpool_pool *pool, const char *program, uint64_t completed, uint64_t total,
                       const char *unit, const char *journal)
{
    int signal = 0;
    hpool_pool_stopped(pool, &signal);
    char completed_text[40], total_text[48] = "";
    format_grouped(completed, completed_text, sizeof completed_text);
    if (total != 0) {
        memcpy(total_text, " of ", 5);
        format_grouped(total, total_text + 4, sizeof total_text - 4);
    }
    fprintf(stderr, "%s: stopped by %s after %s%s %s; %s\n", program, signal_name(signal),
            completed_text, total_text, unit,
            journal != NULL ? "rerun with the same --journal to resume" : "rerun to start again");
    return EXIT_STOPPED;
}

int app_journal_failure(const char *program, const char *journal, int code)
{
    if (journal == NULL || (code != HPOOL_EJOURNAL && code != HPOOL_EIO))
        return -1;
    char detail[512];
    hpool_error_detail(code, detail, sizeof detail);
    /* The detail of an I/O error names the journal already. */
    if (code == HPOOL_EIO && strstr(detail, journal) != NULL)
        fprintf(stderr, "%s: %s\n", program, detail);
    else
        fprintf(stderr, "%s: %s: %s\n", program, journal, detail);
    return code == HPOOL_EJOURNAL ? EXIT_USAGE : EXIT_SOME_FAILED;
}

static void append(app_journal_key *key, const char *bytes, size_t size)
{
    if (key->failed)
        return;
    if (key->size + size > key->capacity) {
        size_t capacity = key->capacity * 2 + size + 64;
        char *grown = realloc(key->bytes, capacity);
        if (grown == NULL) {
            key->failed = 1;
            return;
        }
        key->bytes = grown;
        key->capacity = capacity;
    }
    memcpy(key->bytes + key->size, bytes, size);
    key->size += size;
}

void app_journal_key_add(app_journal_key *key, const char *name, const char *value)
{
    append(key, name, strlen(name));
    append(key, "=", 1);
    if (value != NULL)
        append(key, value, strlen(value));
    append(key, "", 1); /* a value may hold '=' but never a NUL */
}

void app_journal_key_add_number(app_journal_key *key, const char *name, long long value)
{
    char text[32];
    snprintf(text, sizeof text, "%lld", value);
    app_journal_key_add(key, name, text);
}

void app_journal_key_add_file(app_journal_key *key, const char *name, const char *path)
{
    app_journal_key_add(key, name, path);
    struct stat status;
    char text[96];
    if (stat(path, &status) != 0)
        snprintf(text, sizeof text, "errno %d", errno);
    else
        snprintf(text, sizeof text, "%lld bytes, modified %lld.%09ld", (long long)status.st_size,
                 (long long)status.st_mtim.tv_sec, (long)status.st_mtim.tv_nsec);
    app_journal_key_add(key, "file", text);
}

void app_journal_key_free(app_journal_key *key)
{
    free(key->bytes);
    key->bytes = NULL;
    key->size = key->capacity = 0;
}
