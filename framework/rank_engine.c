/* rank_engine.c: the engine of a rank that serves the root: batches in, results and credit out. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Checks a batch from the root against this rank's tables. */
static bool batch_fits_tables(const hpool_pool *pool, const hpool__batch *batch)
{
    if (batch->function < 0 || (size_t)batch->function >= pool->function_count)
        return false;
    if (batch->mode == HPOOL__REDUCE)
        return batch->reducer >= 0 && (size_t)batch->reducer < pool->reducer_count
               && pool->reducers[batch->reducer].value_size == batch->result_size;
    if (batch->mode == HPOOL__KEYED)
        return batch->reducer >= 0 && (size_t)batch->reducer < pool->keyed_reducer_count;
    return batch->mode >= HPOOL__NO_RESULT && batch->mode <= HPOOL__RECORD_RESULT;
}

/* Handles one message from the root; sets *stop on STOP. */
static int serve_message(hpool_pool *pool, hpool__message *message, bool *stop)
{
    int rc = 0;
    switch (message->type) {
    case HPOOL__MSG_BATCH: {
        hpool__batch *batch = NULL;
        rc = hpool__batch_decode(message, &batch);
        if (rc != 0)
            return rc;
        if (!batch_fits_tables(pool, batch)) {
            hpool__batch_free(batch);
            return HPOOL_EPEER;
        }
        if (batch->mode == HPOOL__KEYED && (rc = hpool__keyed_attach(pool, batch)) != 0) {
            hpool__batch_free(batch);
            return rc;
        }
        hpool__team_submit(&pool->team, batch);
        return 0;
    }
    case HPOOL__MSG_CANCEL: {
        hpool__cancel_header cancel;
        rc = hpool__message_decode(message, &cancel, sizeof cancel, NULL, NULL);
        if (rc == 0)
            hpool__team_cancel(&pool->team, cancel.call_id);
        break;
    }
    case HPOOL__MSG_STOP: {
        hpool__stop_request_header request;
        rc = hpool__message_decode(message, &request, sizeof request, NULL, NULL);
        if (rc == 0 && request.level == 2) /* join abandons what still runs: see abandon_orphaned_items */
            hpool__stop_requested(pool, request.level, request.signal);
        *stop = rc == 0;
        break;
    }
    case HPOOL__MSG_SHUFFLE: {
        hpool__shuffle_header shuffle;
        const unsigned char *argument = NULL;
        size_t argument_size = 0;
        rc = hpool__message_decode(message, &shuffle, sizeof shuffle, &argument, &argument_size);
        if (rc == 0 && (shuffle.keyed >= pool->keyed_reducer_count || shuffle.argument_size != argument_size))
            rc = HPOOL_EPEER;
        if (rc == 0) /* the store copies the argument */
            rc = hpool__keyed_shuffle_start(pool, shuffle.call_id, (int)shuffle.keyed, argument, argument_size);
        free(message->data);
        return rc;
    }
    case HPOOL__MSG_PAIRS:
        return hpool__keyed_pairs_received(pool, message);
    case HPOOL__MSG_HEARTBEAT: /* the root is alive: that is all it says */
        rc = hpool__message_decode(message, NULL, 0, NULL, NULL);
        break;
    case HPOOL__MSG_CHECKPOINT:
        return hpool__checkpoint_serve(pool, message);
    default:
        rc = HPOOL_EPEER;
        break;
    }
    free(message->data);
    return rc;
}

/* Tells the root that this rank's engine stopped, and why, so that it fails
 * the calls instead of waiting for results that will not come. A root gone
 * silent (stopped, hung) takes nothing: a large result to it would never
 * complete, and the flush here, or the one of hpool_pool_free, would wait
 * for it forever. Its sends are given up instead, the error with them: it
 * still reaches a root that wakes up. */
static void report_engine_error(hpool_pool *pool, int code, bool root_silent)
{
    hpool__error_header error = {.code = code};
    int sent = hpool__message_send(&pool->transport, pool->root, HPOOL__MSG_ERROR, &error, sizeof error);
    if (root_silent)
        hpool__transport_abandon_sends_to(&pool->transport, pool->root);
    else if (sent == 0)
        hpool__transport_flush(&pool->transport);
}

/* Tells the root this rank is alive, at least every HPOOL__HEARTBEAT_NS:
 * a rank that stays silent for the stall timeout has stalled. Only the
 * engine thread sends. */
static int send_heartbeat_if_due(hpool_pool *pool)
{
    uint64_t now = hpool__now_ns();
    if (now - pool->heartbeat_sent_ns < HPOOL__HEARTBEAT_NS)
        return 0;
    pool->heartbeat_sent_ns = now;
    return hpool__message_send(&pool->transport, pool->root, HPOOL__MSG_HEARTBEAT, NULL, 0);
}

/* The root's engine says it is alive at least every HPOOL__HEARTBEAT_NS,
 * as the ranks do: a root silent for the stall timeout died, stopped or
 * was cut off, and without this a rank would serve it forever (srun does
 * not end a step when one task dies). Messages queued while this rank
 * was busy are read before the check. */
static int check_root_heard(hpool_pool *pool)
{
    uint64_t now = hpool__now_ns();
    if (pool->stall_timeout_ns == 0 || now - pool->root_heard_ns <= pool->stall_timeout_ns)
        return 0;
    return hpool__fail(HPOOL_ESTALLED,
                       "rank %d has not heard from the root, rank %d, for %.0f s (the stall timeout, "
                       "HPOOL_STALL_TIMEOUT, is %.0f s): it died, is stopped or is cut off; this rank stops serving it",
                       pool->transport.rank, pool->root, (double)(now - pool->root_heard_ns) / 1e9,
                       (double)pool->stall_timeout_ns / 1e9);
}

void hpool__rank_keepalive(void *argument)
{
    hpool_pool *pool = argument;
    if (send_heartbeat_if_due(pool) == 0)
        hpool__transport_progress(&pool->transport);
}

/* How long a rank whose team has nothing left polls every 16 µs (see the
 * engine's loop): STOP took 0.3 to 0.6 ms to be seen at the end of every
 * pool (mpirun -n 2 square --sum 10), for want of it. */
#define RANK_EAGER_NS 1000000u

void *hpool__rank_engine(void *argument)
{
    hpool_pool *pool = argument;
    hpool__prepare_engine_thread();
    hpool__crash_worker_started(&pool->team, -1); /* it runs keyed reduce functions too */
    hpool__transport *transport = &pool->transport;
    bool stop = false, root_silent = false;
    unsigned idle_rounds = 0;
    uint64_t completed_reported = 0; /* the count the root last heard */
    uint64_t last_busy_ns = hpool__now_ns();
    int rc = 0;
    pool->root_heard_ns = hpool__now_ns();
    while (!stop && rc == 0) {
        bool busy = false;
        hpool__message message;
        int received;
        while (rc == 0 && !stop && (received = hpool__transport_receive(transport, &message)) != 0) {
            if (received < 0) {
                rc = received;
                break;
            }
            pool->root_heard_ns = hpool__now_ns();
            rc = serve_message(pool, &message, &stop);
            busy = true;
        }
        if (rc == 0 && !stop)
            root_silent = (rc = check_root_heard(pool)) != 0;
        pthread_mutex_lock(&pool->lock);
        hpool__batch *done = pool->local_done.head;
        pool->local_done.head = pool->local_done.tail = NULL;
        pthread_mutex_unlock(&pool->lock);
        /* Read before the results are encoded: each carries it. */
        bool short_of_chunks;
        uint64_t completed = hpool__team_take_credit(&pool->team, &short_of_chunks);
        while (done != NULL) {
            hpool__batch *next = done->next;
            void *buffer;
            size_t size;
            if (rc == 0)
                rc = hpool__result_encode(done, completed, &buffer, &size);
            if (rc == 0)
                rc = hpool__transport_send(transport, pool->root, HPOOL__MSG_RESULT, buffer, size);
            if (rc == 0)
                completed_reported = completed;
            hpool__batch_free(done);
            done = next;
            busy = true;
        }
        if (rc == 0 && short_of_chunks && completed > completed_reported) {
            hpool__credit_header credit = {.chunks_completed = completed};
            rc = hpool__message_send(transport, pool->root, HPOOL__MSG_CREDIT, &credit, sizeof credit);
            if (rc == 0)
                completed_reported = completed;
            busy = true;
        }
        if (rc == 0)
            rc = send_heartbeat_if_due(pool);
        if (rc == 0)
            rc = hpool__stop_forward(pool);
        hpool__track_workers(pool);
        if (rc == 0)
            rc = hpool__transport_progress(transport);
        if (rc == 0)
            rc = hpool__keyed_progress(pool, &busy);
        /* A batch comes only when this rank is short of chunks (the root
         * sends no sooner): while its team holds enough, polls may be far
         * apart; once it is short, they are close, for the reply. */
        hpool__poll poll = hpool__team_is_short(&pool->team) ? HPOOL__POLL_SHORT : HPOOL__POLL_FULL;
        uint64_t now = hpool__now_ns();
        if (busy)
            last_busy_ns = now;
        /* Just after its team ran out of work, the root's next word (the
         * next call's batch, or STOP) is likeliest: the first polls stay
         * 16 µs apart for a while before they back off. A team with work
         * never waits for this, so it costs a busy rank nothing. */
        bool eager = now - last_busy_ns < RANK_EAGER_NS && hpool__team_is_idle(&pool->team);
        pthread_mutex_lock(&pool->lock);
        if (busy || eager)
            idle_rounds = 0;
        if (!stop && rc == 0)
            hpool__engine_wait(pool, true, &idle_rounds, poll);
        pthread_mutex_unlock(&pool->lock);
    }
    if (rc != 0) {
        report_engine_error(pool, rc, root_silent);
    } else {
        /* The root reads everything until this, so every send completes. */
        rc = hpool__message_send(transport, pool->root, HPOOL__MSG_STOPPED, NULL, 0);
        int flushed = hpool__transport_flush(transport);
        if (rc == 0)
            rc = flushed;
    }
    pthread_mutex_lock(&pool->lock);
    hpool__keep_pool_error(pool, rc);
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}
