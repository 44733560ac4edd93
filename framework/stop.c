/* stop.c: stopping cleanly on a signal or hpool_pool_stop(): drain, then at once; the handlers hpool installs. */
#define _GNU_SOURCE /* sigaction */
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* hpool_pool_stop() runs in signal handlers, so it only does lock-free
 * atomic operations on the pool: the engines look at the level every
 * round (the root's engine waits at most 100 ms while calls are under
 * way, see engine_wait.c) and do the rest under the pool's lock. */

static void stop_with_signal(hpool_pool *pool, int signal)
{
    int none = 0;
    if (signal != 0)
        atomic_compare_exchange_strong(&pool->stop_signal, &none, signal);
    int level = atomic_load(&pool->stop_asked);
    while (level < 2 && !atomic_compare_exchange_weak(&pool->stop_asked, &level, level + 1)) {
    }
}

int hpool_pool_stop(hpool_pool *pool)
{
    if (pool == NULL)
        return HPOOL_EINVAL; /* no detail: it may run in a signal handler */
    stop_with_signal(pool, 0);
    return 0;
}

int hpool_pool_stopped(const hpool_pool *pool, int *signal)
{
    if (pool == NULL)
        return 0;
    hpool_pool *stopped = (hpool_pool *)pool; /* atomic loads take non-const pointers */
    int level = atomic_load(&stopped->stop_asked);
    int remote = atomic_load(&stopped->stop_remote), applied = atomic_load(&stopped->stop_applied);
    if (signal != NULL)
        *signal = atomic_load(&stopped->stop_signal);
    if (remote > level)
        level = remote;
    return applied > level ? applied : level; /* 2 also when the grace ran out */
}

/* ---- The handler ----------------------------------------------------------- */

/* The pools that asked for signals, in slots a handler can read without a
 * lock; the signals each asked for; and, per signal, the action there was
 * before and how many pools use it. */
#define STOP_SLOTS 64
#define MAX_SIGNAL 64
static _Atomic(hpool_pool *) stop_pools[STOP_SLOTS];
static atomic_uint_fast64_t stop_masks[STOP_SLOTS];
static atomic_int handlers_running;
static pthread_mutex_t handlers_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction previous_actions[MAX_SIGNAL + 1];
static int pools_per_signal[MAX_SIGNAL + 1];

static void on_stop_signal(int signal)
{
    atomic_fetch_add(&handlers_running, 1);
    for (int s = 0; s < STOP_SLOTS; s++) {
        hpool_pool *pool = atomic_load(&stop_pools[s]);
        if (pool != NULL && (atomic_load(&stop_masks[s]) & ((uint64_t)1 << (signal - 1))) != 0)
            stop_with_signal(pool, signal);
    }
    atomic_fetch_sub(&handlers_running, 1);
}

static bool crash_signal(int signal)
{
    return signal == SIGSEGV || signal == SIGBUS || signal == SIGFPE || signal == SIGILL || signal == SIGABRT;
}

int hpool_pool_stop_on_signal(hpool_pool *pool, int signal)
{
    hpool__detail_clear();
    if (pool == NULL)
        return hpool__fail(HPOOL_EINVAL, "hpool_pool_stop_on_signal: pool is NULL");
    if (signal < 1 || signal > MAX_SIGNAL || signal == SIGKILL || signal == SIGSTOP || crash_signal(signal))
        return hpool__fail(HPOOL_EINVAL, "hpool_pool_stop_on_signal: %d is not a signal a stop can be asked with "
                                         "(SIGKILL and SIGSTOP cannot be caught; SIGSEGV, SIGBUS, SIGFPE, SIGILL "
                                         "and SIGABRT are the crash report's)", signal);
    pthread_mutex_lock(&handlers_lock);
    int slot = -1;
    for (int s = 0; s < STOP_SLOTS && slot < 0; s++)
        if (atomic_load(&stop_pools[s]) == pool)
            slot = s;
    for (int s = 0; s < STOP_SLOTS && slot < 0; s++)
        if (atomic_load(&stop_pools[s]) == NULL)
            slot = s;
    if (slot < 0) {
        pthread_mutex_unlock(&handlers_lock);
        return hpool__fail(HPOOL_EINVAL, "hpool_pool_stop_on_signal: %d pools of this process have signals "
                                         "already; free one first", STOP_SLOTS);
    }
    uint64_t bit = (uint64_t)1 << (signal - 1);
    if ((atomic_load(&stop_masks[slot]) & bit) == 0 || atomic_load(&stop_pools[slot]) != pool) {
        if (pools_per_signal[signal] == 0) {
            struct sigaction action;
            memset(&action, 0, sizeof action);
            action.sa_handler = on_stop_signal;
            sigemptyset(&action.sa_mask);
            action.sa_flags = SA_RESTART;
            if (sigaction(signal, &action, &previous_actions[signal]) != 0) {
                pthread_mutex_unlock(&handlers_lock);
                return hpool__fail(HPOOL_EINVAL, "hpool_pool_stop_on_signal: signal %d: %s", signal,
                                   strerror(errno));
            }
        }
        pools_per_signal[signal]++;
        if (atomic_load(&stop_pools[slot]) != pool)
            atomic_store(&stop_masks[slot], 0);
        atomic_fetch_or(&stop_masks[slot], bit);
        atomic_store(&stop_pools[slot], pool);
    }
    pthread_mutex_unlock(&handlers_lock);
    return 0;
}

void hpool__stop_release(hpool_pool *pool)
{
    pthread_mutex_lock(&handlers_lock);
    for (int s = 0; s < STOP_SLOTS; s++) {
        if (atomic_load(&stop_pools[s]) != pool)
            continue;
        uint64_t mask = atomic_load(&stop_masks[s]);
        atomic_store(&stop_pools[s], NULL);
        atomic_store(&stop_masks[s], 0);
        for (int signal = 1; signal <= MAX_SIGNAL; signal++)
            if ((mask & ((uint64_t)1 << (signal - 1))) != 0 && --pools_per_signal[signal] == 0)
                sigaction(signal, &previous_actions[signal], NULL);
    }
    pthread_mutex_unlock(&handlers_lock);
    /* A handler that read the slot before it was cleared may still be on
     * its way to the pool: free waits for it. */
    while (atomic_load(&handlers_running) > 0)
        sched_yield();
}

/* ---- The engines ------------------------------------------------------------- */

int hpool__stop_forward(hpool_pool *pool)
{
    int level = atomic_load(&pool->stop_asked);
    if (level <= pool->stop_sent)
        return 0;
    pool->stop_sent = level;
    hpool__stop_request_header request = {.level = level, .signal = atomic_load(&pool->stop_signal)};
    return hpool__message_send(&pool->transport, pool->root, HPOOL__MSG_STOP_REQUEST, &request, sizeof request);
}

void hpool__stop_requested(hpool_pool *pool, int level, int signal)
{
    int none = 0;
    if (signal > 0)
        atomic_compare_exchange_strong(&pool->stop_signal, &none, signal);
    if (level > 2)
        level = 2;
    if (level > atomic_load(&pool->stop_remote))
        atomic_store(&pool->stop_remote, level);
}

static const char *signal_text(int signal, char *buf, size_t size)
{
    if (signal == 0)
        snprintf(buf, size, "hpool_pool_stop()");
    else
        snprintf(buf, size, "SIG%s", sigabbrev_np(signal) != NULL ? sigabbrev_np(signal) : "?");
    return buf;
}

/* The first stop: nothing more starts; what runs finishes. */
static void drain(hpool_pool *pool)
{
    pool->stop_applied = 1;
    pool->closed = true;
    if (pool->stop_grace_ns != 0)
        pool->stop_deadline_ns = hpool__now_ns() + pool->stop_grace_ns;
    for (hpool__call_state *call = pool->calls.head; call != NULL; call = call->next) {
        call->stopped = true;
        hpool__cancel_call(pool, call);
    }
}

/* The items of call that a stop at once drops: those of every batch still
 * out, running or done and not yet back (a batch comes back whole), which
 * its report counts as canceled, as it does the items that never ran.
 * The root's own batches are taken off its list: none is collected now. */
static void count_dropped(hpool_pool *pool, hpool__call_state *call)
{
    uint64_t dropped = call->cut - call->done, lowest = UINT64_MAX;
    for (int rank = 0; rank < pool->transport.size; rank++) {
        hpool__rank_load *load = &pool->loads[rank];
        for (size_t i = 0; i < load->outstanding_count;) {
            const hpool__outstanding *batch = &load->outstanding[i];
            if (batch->call_id == call->id && batch->first < lowest)
                lowest = batch->first;
            if (rank == pool->root && batch->call_id == call->id)
                load->outstanding[i] = load->outstanding[--load->outstanding_count];
            else
                i++;
        }
    }
    if (dropped == 0)
        return;
    hpool_report *report = &call->report;
    if (report->failed == 0 || lowest < report->first_failed_index) {
        report->first_failed_index = lowest != UINT64_MAX ? lowest : 0; /* 0: unlisted, for want of memory */
        report->first_failed_code = HPOOL_ECANCELED;
    }
    report->failed += dropped;
    report->canceled += dropped;
}

/* A second stop, or the grace ran out: the calls end now, without what
 * still runs, on this rank (abandoned, as after the stall timeout) and on
 * the others (their results are dropped; the root's STOP tells them to
 * abandon those items too, and join waits only for their engines to say
 * they stopped, so that MPI_Finalize then does not wait either). */
static void stop_at_once(hpool_pool *pool, bool grace_over)
{
    pool->stop_applied = 2;
    if (pool->calls.head == NULL)
        return;
    char by[32];
    int code = hpool__fail(HPOOL_ESTOPPED,
                           "stopped at once by %s (%s): items still running were abandoned with their threads, on "
                           "every rank",
                           signal_text(atomic_load(&pool->stop_signal), by, sizeof by),
                           grace_over ? "the stop's grace, HPOOL_STOP_GRACE, ran out" : "a second stop");
    bool local_running = false;
    for (hpool__call_state *call = pool->calls.head; call != NULL; call = call->next) {
        local_running |= call->local_uncollected > 0;
        count_dropped(pool, call);
        call->stopped = true;
        call->batches_uncollected = 0;
        call->local_uncollected = 0;
        call->source_ended = true;
        call->total = call->cut;
        call->shuffle_pending = call->shuffling = false;
        call->checkpointing = false;
        call->keyed_done = true;
        hpool__call_set_error(call, code);
    }
    if (local_running)
        pool->team_abandoned = true;
    for (int rank = 0; rank < pool->transport.size; rank++)
        if (rank != pool->root && pool->loads[rank].outstanding_count > 0)
            pool->loads[rank].given_up = true;
}

void hpool__stop_apply(hpool_pool *pool)
{
    int asked = atomic_load(&pool->stop_asked), remote = atomic_load(&pool->stop_remote);
    int level = asked > remote ? asked : remote;
    if (level >= 1 && pool->stop_applied == 0)
        drain(pool);
    if (pool->stop_applied == 1) {
        bool grace_over = pool->stop_deadline_ns != 0 && hpool__now_ns() >= pool->stop_deadline_ns;
        if (level >= 2 || (grace_over && pool->calls.head != NULL))
            stop_at_once(pool, level < 2);
    }
}

/* The detail of a call that a stop ended. */
void hpool__stop_describe(hpool_pool *pool, hpool__call_state *call)
{
    char by[32];
    const char *rest = call->journal != NULL ? "; the journal has the rest: a rerun with it resumes" : "";
    signal_text(atomic_load(&pool->stop_signal), by, sizeof by);
    if (call->cut_short) /* a producer's items past the cut are not known */
        snprintf(call->detail, sizeof call->detail, "stopped by %s after %llu items were read from the source, of "
                                                    "which %llu did not run; the source was not read to its end%s",
                 by, (unsigned long long)call->report.items, (unsigned long long)call->report.canceled, rest);
    else
        snprintf(call->detail, sizeof call->detail, "stopped by %s: %llu of %llu items did not run%s", by,
                 (unsigned long long)call->report.canceled, (unsigned long long)call->report.items, rest);
}
