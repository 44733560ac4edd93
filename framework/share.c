/* share.c: a running chunk's items claimed by the idle threads of its team, so that slow items at its end run at once. */
#include "internal.h"

/* A chunk is sized from the cost of the items before it, and items are
 * not all alike: 10,000 instant items and then 8 that take a minute make
 * one last chunk that holds all 8. So the thread that runs a chunk claims
 * its items a few at a time from the chunk's share, and a thread with
 * nothing to do claims them too. Claims shrink with what is left, as in
 * OpenMP's guided schedule: the last items are claimed one by one.
 *
 * A share is taken and given back under the team's lock, which its thread
 * holds anyway to claim the chunk and to count it done. Helpers claim only
 * once the thread's function init succeeded (started), so a chunk whose
 * init failed fails as a whole, as before. Whoever leaves a share last,
 * its own thread or a helper, counts the chunk done (team.c): no thread
 * waits for another's slow item. */

hpool__chunk_share *hpool__share_begin(hpool__team *team, hpool__batch *batch, uint64_t c)
{
    uint64_t count = hpool__chunk_items(batch, c);
    if (team->shares == NULL || team->thread_count < 2 || count < 2 || team->functions[batch->function].span != NULL
        || batch->mode == HPOOL__RECORD_RESULT || batch->block_size > 0)
        return NULL; /* spans, ordered record outputs and fixed blocks run whole on one thread */
    /* At most one share per thread is in use: each thread takes part in one
     * at a time, and a share is in use while anyone takes part. */
    for (int s = 0; s < team->thread_count; s++) {
        hpool__chunk_share *share = &team->shares[s];
        if (share->participants > 0)
            continue;
        share->batch = batch;
        share->chunk = c;
        share->count = count;
        share->participants = 1;
        share->open = true;
        atomic_store_explicit(&share->next, 0, memory_order_relaxed);
        atomic_store_explicit(&share->started, 0, memory_order_relaxed);
        return share;
    }
    return NULL;
}

void hpool__share_started(hpool__team *team, hpool__chunk_share *share)
{
    /* Sequentially consistent, with the idle threads' count and look in
     * team.c: a thread that looked before this and went to sleep is
     * counted, and woken; a lock a chunk only then (it costs tiny items). */
    atomic_store(&share->started, 1);
    if (atomic_load(&team->idle_threads) > 0) {
        pthread_mutex_lock(&team->lock);
        pthread_cond_broadcast(&team->work_ready);
        pthread_mutex_unlock(&team->lock);
    }
}

bool hpool__share_claim(const hpool__team *team, hpool__chunk_share *share, uint64_t *from, uint64_t *to)
{
    /* The claim is sized from what is left when it is made: a size read
     * earlier and added later (a thread preempted in between, on a busy
     * machine) claimed a hundred items when only the 16 slow ones at the
     * end were left, and ran them one after another on one thread. */
    uint64_t next = atomic_load_explicit(&share->next, memory_order_relaxed), claim;
    do {
        if (next >= share->count)
            return false;
        claim = (share->count - next) / (2 * (uint64_t)team->thread_count);
        if (claim == 0)
            claim = 1;
    } while (!atomic_compare_exchange_weak_explicit(&share->next, &next, next + claim, memory_order_relaxed,
                                                    memory_order_relaxed));
    *from = next;
    *to = next + claim;
    return true;
}

hpool__chunk_share *hpool__share_find(hpool__team *team)
{
    hpool__chunk_share *best = NULL;
    uint64_t most = 0;
    for (int s = 0; team->shares != NULL && s < team->thread_count; s++) {
        hpool__chunk_share *share = &team->shares[s];
        if (!share->open || !atomic_load(&share->started))
            continue;
        uint64_t next = atomic_load_explicit(&share->next, memory_order_relaxed);
        if (next < share->count && share->count - next > most) {
            most = share->count - next;
            best = share;
        }
    }
    if (best != NULL)
        best->participants++;
    return best;
}

bool hpool__share_leave(hpool__chunk_share *share, bool its_thread)
{
    if (its_thread)
        share->open = false; /* no new helpers: its items are all claimed */
    return --share->participants == 0;
}
