/* engine_wait.c: how both engines wait between rounds: for news from their threads, or polling MPI with a backoff. */
#include "internal.h"

/* Waits for news, or a little while when MPI has to be polled. MPI has no
 * wait that also wakes on a condition, and spinning would take a core from
 * the workers, so an engine polls with a wait that doubles while nothing
 * happens, between bounds its caller sets by how soon a message could
 * matter (see hpool__engine_wait), and only after some 50 ms of
 * nothing at all, when no call is under way, further, up to 4 ms. Every
 * empty poll is time taken from a worker on the same core, and on a VM a
 * wake-up costs some 15 µs: 2 ranks x 1 spinning thread on 2 cores ran at
 * 0.935 of the bound with every engine polling from 16 to 256 µs. */
#define POLL_FIRST_NS 16000u
#define POLL_IDLE_ROUNDS 200
#define POLL_IDLE_SHIFT 8 /* 16 µs << 8 = 4 ms */
static uint64_t poll_wait_ns(unsigned idle_rounds, hpool__poll poll)
{
    unsigned shift = poll.first_shift + idle_rounds;
    if (shift > poll.busy_shift)
        shift = poll.busy_shift;
    if (idle_rounds > POLL_IDLE_ROUNDS) {
        unsigned beyond = idle_rounds - POLL_IDLE_ROUNDS;
        shift = poll.busy_shift + beyond < POLL_IDLE_SHIFT ? poll.busy_shift + beyond : POLL_IDLE_SHIFT;
    }
    return (uint64_t)POLL_FIRST_NS << shift;
}

void hpool__engine_wait(hpool_pool *pool, bool polling, unsigned *idle_rounds, hpool__poll poll)
{
    if (pool->engine_has_news) {
        pool->engine_has_news = false;
        *idle_rounds = 0;
        return;
    }
    bool watching_items =
        pool->slow_item_ns != 0 || ((pool->terminating || pool->joining) && pool->stall_timeout_ns != 0);
    /* A stop asked from a signal handler cannot wake the engine: while
     * calls are under way, it looks ten times a second. */
    bool watching_stops = pool->calls.head != NULL;
    if (!polling && !watching_items && !watching_stops) {
        while (!pool->engine_has_news)
            pthread_cond_wait(&pool->engine_wake, &pool->lock);
    } else if (!polling) {
        /* the slow-item report and the terminate's watchdog look four times a second */
        hpool__deadline second = hpool__deadline_in_ns(watching_stops ? 100000000u : 250000000u);
        if (!pool->engine_has_news)
            hpool__cond_wait_until(&pool->engine_wake, &pool->lock, &second);
    } else {
        hpool__deadline deadline = hpool__deadline_in_ns(poll_wait_ns(*idle_rounds, poll));
        if (!pool->engine_has_news)
            hpool__cond_wait_until(&pool->engine_wake, &pool->lock, &deadline);
        if (*idle_rounds < UINT32_MAX)
            (*idle_rounds)++;
    }
    pool->engine_has_news = false;
}

