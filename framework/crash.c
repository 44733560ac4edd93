/* crash.c: what each worker thread runs, the crash handler that names it when a map function dies of a signal, and the slow-item report. */
#define _GNU_SOURCE /* sigaction, gethostname */
#include "internal.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The worker thread's own view, for its signal handler: initial-exec TLS,
 * so reading it in the handler never allocates (a dynamic TLS block is
 * made on first use, which this thread did at its start). */
typedef struct worker_identity {
    const hpool__team *team;
    hpool__worker_status *status;
    const hpool_task *task; /* an item function's, while it runs */
    int thread;
    char host[64];
} worker_identity;
static __thread worker_identity this_worker __attribute__((tls_model("initial-exec")));

static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
#define CRASH_SIGNALS (sizeof crash_signals / sizeof crash_signals[0])
static struct sigaction previous_actions[CRASH_SIGNALS];
static atomic_flag installed = ATOMIC_FLAG_INIT;

void hpool__crash_worker_started(const hpool__team *team, int thread)
{
    this_worker.team = team;
    this_worker.thread = thread;
    this_worker.status =
        team->statuses != NULL && thread >= 0 && thread < team->thread_count ? &team->statuses[thread] : NULL;
    if (gethostname(this_worker.host, sizeof this_worker.host - 1) != 0)
        strcpy(this_worker.host, "?");
}

void hpool__crash_worker_finished(void)
{
    this_worker.team = NULL;
    this_worker.status = NULL;
}

__thread const hpool_task *hpool__running_task __attribute__((tls_model("initial-exec")));
__thread hpool__running_reduce hpool__reducing __attribute__((tls_model("initial-exec")));

/* ---- Async-signal-safe formatting: no stdio, no allocation ------------- */

typedef struct line {
    char text[512];
    size_t used;
} line;

static void put_text(line *out, const char *text)
{
    for (; text != NULL && *text != '\0' && out->used < sizeof out->text - 1; text++)
        out->text[out->used++] = *text;
}

static void put_number(line *out, uint64_t value)
{
    char digits[24];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    while (n > 0 && out->used < sizeof out->text - 1)
        out->text[out->used++] = digits[--n];
}

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV:
        return "SIGSEGV";
    case SIGBUS:
        return "SIGBUS";
    case SIGFPE:
        return "SIGFPE";
    case SIGILL:
        return "SIGILL";
    case SIGABRT:
        return "SIGABRT";
    }
    return "a signal";
}

static const char *kind_name(int kind)
{
    switch (kind) {
    case HPOOL__WORK_MAP:
        return "map function";
    case HPOOL__WORK_SPAN:
        return "span function";
    case HPOOL__WORK_INIT:
        return "init function";
    }
    return "function";
}

/* "hpool: rank 1 (node2) thread 3: SIGSEGV in ", or "... engine thread: ..." */
static void put_who(line *out, const char *what, const worker_identity *worker)
{
    put_text(out, "hpool: rank ");
    put_number(out, (uint64_t)worker->team->rank);
    put_text(out, " (");
    put_text(out, worker->host);
    if (worker->thread < 0) {
        put_text(out, ") engine thread: ");
    } else {
        put_text(out, ") thread ");
        put_number(out, (uint64_t)worker->thread);
        put_text(out, ": ");
    }
    put_text(out, what);
    put_text(out, " in ");
}

/* "hpool: rank 1 (node2) thread 3: SIGSEGV in map function "parse" at item 4711" */
static void describe_work(line *out, const char *what, const worker_identity *worker)
{
    const hpool__worker_status *status = worker->status;
    int kind = atomic_load_explicit(&status->kind, memory_order_relaxed);
    int function = atomic_load_explicit(&status->function, memory_order_relaxed);
    uint64_t item = atomic_load_explicit(&status->item, memory_order_relaxed);
    uint64_t count = atomic_load_explicit(&status->count, memory_order_relaxed);
    if (worker->task != NULL && kind == HPOOL__WORK_MAP) {
        /* the crashing thread itself: the exact item */
        item = worker->task->index;
        count = 1;
    }
    put_who(out, what, worker);
    put_text(out, kind_name(kind));
    if (function >= 0 && (size_t)function < worker->team->function_count) {
        put_text(out, " \"");
        put_text(out, worker->team->functions[function].name);
        put_text(out, "\"");
    }
    if (kind == HPOOL__WORK_INIT) {
        /* no item yet */
    } else if (count > 1) {
        put_text(out, " in items ");
        put_number(out, item);
        put_text(out, "-");
        put_number(out, item + count - 1);
    } else {
        put_text(out, " at item ");
        put_number(out, item);
    }
}

/* The first bytes of a key, printable ones as they are, others as \xNN. */
static void put_key(line *out, const unsigned char *key, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    put_text(out, "\"");
    for (size_t i = 0; i < size && i < 40 && out->used < sizeof out->text - 8; i++) {
        if (key[i] >= 0x20 && key[i] < 0x7f && key[i] != '"' && key[i] != '\\') {
            out->text[out->used++] = (char)key[i];
        } else {
            out->text[out->used++] = '\\';
            out->text[out->used++] = 'x';
            out->text[out->used++] = hex[key[i] >> 4];
            out->text[out->used++] = hex[key[i] & 15];
        }
    }
    put_text(out, size > 40 ? "\"..." : "\"");
}

/* "hpool: rank 1 (node2) thread 0: SIGSEGV in reduce function "words" at key "the"" */
static void describe_reduce(line *out, const char *what, const worker_identity *worker)
{
    put_who(out, what, worker);
    put_text(out, "reduce function of \"");
    put_text(out, hpool__reducing.reducer);
    put_text(out, "\" at key ");
    put_key(out, hpool__reducing.key, hpool__reducing.key_size);
}

static void crash_handler(int sig, siginfo_t *info, void *context)
{
    (void)info;
    (void)context;
    worker_identity *worker = &this_worker;
    worker->task = hpool__running_task;
    line out = {.used = 0};
    if (worker->status != NULL
        && atomic_load_explicit(&worker->status->kind, memory_order_relaxed) != HPOOL__WORK_IDLE)
        describe_work(&out, signal_name(sig), worker);
    else if (worker->team != NULL && hpool__reducing.reducer != NULL)
        describe_reduce(&out, signal_name(sig), worker);
    if (out.used > 0) {
        out.text[out.used++] = '\n';
        ssize_t written = write(STDERR_FILENO, out.text, out.used);
        (void)written;
    }
    /* Then what would have happened without hpool: the handler there was
     * before, or the default action (a core dump). The signal is blocked
     * while this runs, so the raise lands as it returns; a fault that
     * returns re-faults into the same action. */
    for (size_t i = 0; i < CRASH_SIGNALS; i++)
        if (crash_signals[i] == sig)
            sigaction(sig, &previous_actions[i], NULL);
    raise(sig);
}

int hpool__crash_handler_install(void)
{
    if (atomic_flag_test_and_set(&installed))
        return 0; /* once per process: later pools share it */
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = crash_handler;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < CRASH_SIGNALS; i++)
        if (sigaction(crash_signals[i], &action, &previous_actions[i]) != 0)
            return hpool__fail(HPOOL_EINVAL, "could not install the crash report's handler for %s",
                               signal_name(crash_signals[i]));
    return 0;
}

/* For the engine: "hpool: rank 0 (host) thread 2: still running in ..."
 * for thread t of team, into text. */
static void describe_running(const hpool__team *team, int t, char *text, size_t size)
{
    worker_identity worker = {.team = team, .status = (hpool__worker_status *)&team->statuses[t], .thread = t};
    if (gethostname(worker.host, sizeof worker.host - 1) != 0)
        strcpy(worker.host, "?");
    line out = {.used = 0};
    describe_work(&out, "still running", &worker);
    snprintf(text, size, "%.*s", (int)out.used, out.text);
}

int hpool__longest_running(const hpool_pool *pool, uint64_t *age_ns, char *text, size_t size)
{
    const hpool__team *team = &pool->team;
    int longest = -1;
    uint64_t now = hpool__now_ns(), oldest = 0;
    for (int t = 0; team->statuses != NULL && t < team->thread_count; t++) {
        const hpool__worker_status *status = &team->statuses[t];
        if (atomic_load_explicit(&status->kind, memory_order_relaxed) == HPOOL__WORK_IDLE)
            continue;
        if (longest < 0 || now - status->seen_since_ns > oldest) {
            longest = t;
            oldest = now - status->seen_since_ns;
        }
    }
    *age_ns = oldest;
    if (longest >= 0)
        describe_running(team, longest, text, size);
    return longest;
}

void hpool__track_workers(hpool_pool *pool)
{
    hpool__team *team = &pool->team;
    /* Nothing watches the items: no clock read in the engine's round. */
    if (team->statuses == NULL || (pool->slow_item_ns == 0 && !pool->terminating && !pool->joining))
        return;
    uint64_t now = hpool__now_ns();
    if (now - pool->slow_items_checked_ns < 250000000u)
        return;
    pool->slow_items_checked_ns = now;
    uint64_t threshold_ns = pool->slow_item_ns;
    for (int t = 0; t < team->thread_count; t++) {
        hpool__worker_status *status = &team->statuses[t];
        uint64_t sequence = atomic_load_explicit(&status->sequence, memory_order_relaxed);
        int kind = atomic_load_explicit(&status->kind, memory_order_relaxed);
        if (kind == HPOOL__WORK_IDLE || sequence != status->seen_sequence) {
            status->seen_sequence = sequence;
            status->seen_since_ns = now;
            status->reported = false;
            continue;
        }
        if (threshold_ns == 0 || status->reported || now - status->seen_since_ns < threshold_ns)
            continue;
        status->reported = true;
        char running[300];
        describe_running(team, t, running, sizeof running);
        fprintf(stderr, "%s after %.0f s (the slow-item report, HPOOL_SLOW_ITEM)\n", running,
                (double)(now - status->seen_since_ns) / 1e9);
    }
}
