/* root_engine.c: the root's engine: tops every rank up with batches, collects what comes back, and tells the ranks of cancels, shuffles and the end. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Tops every rank up to the chunks it should hold, a batch per rank per
 * round, the root's own team first (it needs no message). With pool->lock
 * held; drops it around sends and submissions. */
static int dispatch(hpool_pool *pool, bool *busy)
{
    int size = pool->transport.size;
    pool->loads[pool->root].chunks_completed = hpool__team_take_credit(&pool->team, NULL);
    for (;;) {
        bool sent = false;
        for (int offset = 0; offset < size; offset++) {
            int dest = (pool->root + offset) % size;
            hpool__batch_plan plan;
            hpool__call_state *call = hpool__next_call_to_cut(pool, dest, &plan);
            if (call == NULL)
                return 0;
            if (hpool__held_chunks(pool, dest) >= plan.want)
                continue;
            hpool__batch *batch = hpool__cut_batch(pool, call, dest, &plan);
            if (batch == NULL) {
                sent = true; /* that call ended: look again */
                continue;
            }
            sent = true;
            *busy = true;
            /* The root's own batches are listed too, for a stop at once to
             * name the first item it drops (stop.c); collect takes them off.
             * Without memory for the entry the batch still runs: the list
             * only names, and the call counts its batches itself. */
            if (dest == pool->root && hpool__watchdog_sent(pool, dest, batch->call_id, batch->first, batch->count) != 0)
                hpool__detail_clear(); /* not this engine's error */
            pthread_mutex_unlock(&pool->lock);
            int rc = 0;
            if (dest == pool->root) {
                hpool__team_submit(&pool->team, batch);
            } else {
                void *buffer;
                size_t bytes;
                uint32_t call_id = batch->call_id;
                uint64_t first = batch->first, count = batch->count;
                rc = hpool__batch_encode(batch, &buffer, &bytes);
                if (rc == 0)
                    rc = hpool__transport_send(&pool->transport, dest, HPOOL__MSG_BATCH, buffer, bytes);
                /* the root keeps only what it needs to collect the results */
                hpool__batch_free(batch);
                pthread_mutex_lock(&pool->lock);
                if (rc == 0)
                    rc = hpool__watchdog_sent(pool, dest, call_id, first, count);
                pthread_mutex_unlock(&pool->lock);
            }
            pthread_mutex_lock(&pool->lock);
            if (rc != 0)
                return rc;
        }
        if (!sent)
            return 0;
    }
}

/* A rank's count of chunks completed, from a result or credit message. */
static int note_completed(hpool_pool *pool, int rank, uint64_t completed)
{
    hpool__rank_load *load = &pool->loads[rank];
    if (completed > load->chunks_sent)
        return HPOOL_EPEER; /* it cannot have completed chunks it was never sent */
    if (completed > load->chunks_completed)
        load->chunks_completed = completed;
    return 0;
}

/* Tells every rank about calls canceled since the last round. */
static int send_cancellations(hpool_pool *pool)
{
    for (hpool__call_state *call = pool->calls.head; call != NULL; call = call->next) {
        if (!call->cancel_pending)
            continue;
        call->cancel_pending = false;
        uint32_t id = call->id;
        pthread_mutex_unlock(&pool->lock);
        hpool__team_cancel(&pool->team, id);
        hpool__cancel_header cancel = {.call_id = id};
        int rc = hpool__message_send_to_all(&pool->transport, pool->root, HPOOL__MSG_CANCEL, &cancel, sizeof cancel);
        pthread_mutex_lock(&pool->lock);
        if (rc != 0)
            return rc;
        /* the list may have changed while unlocked: start over */
        return send_cancellations(pool);
    }
    return 0;
}

/* SHUFFLE to every other rank, with the call's argument after the header. */
static int send_shuffle(hpool_pool *pool, const hpool__shuffle_header *shuffle, const void *argument)
{
    if (pool->transport.size == 1)
        return 0;
    size_t size = HPOOL__BODY_OFFSET(hpool__shuffle_header) + shuffle->argument_size;
    unsigned char *message = hpool__malloc(size);
    if (message == NULL)
        return hpool__fail(HPOOL_ENOMEM, "no memory for a SHUFFLE message");
    hpool__message_write_header(message, HPOOL__MSG_SHUFFLE, shuffle, sizeof *shuffle);
    if (shuffle->argument_size > 0)
        memcpy(message + HPOOL__BODY_OFFSET(hpool__shuffle_header), argument, shuffle->argument_size);
    return hpool__transport_send_to_all(&pool->transport, pool->root, HPOOL__MSG_SHUFFLE, message, size);
}

/* Starts the shuffle of keyed calls whose map phase is over: every rank,
 * this one included, partitions its pairs. With pool->lock held. */
static int start_shuffles(hpool_pool *pool)
{
    for (hpool__call_state *call = pool->calls.head; call != NULL; call = call->next) {
        if (!call->shuffle_pending)
            continue;
        call->shuffle_pending = false;
        call->shuffling = true;
        hpool__shuffle_header shuffle = {.call_id = call->id,
                                         .keyed = (uint32_t)call->spec.reducer,
                                         .argument_size = call->spec.argument_size};
        pthread_mutex_unlock(&pool->lock);
        int rc = send_shuffle(pool, &shuffle, call->argument);
        if (rc == 0)
            rc = hpool__keyed_shuffle_start(pool, shuffle.call_id, (int)shuffle.keyed, call->argument,
                                            call->spec.argument_size);
        pthread_mutex_lock(&pool->lock);
        if (rc != 0)
            return rc;
        return start_shuffles(pool); /* the list may have changed while unlocked */
    }
    return 0;
}

/* One message from another rank, on the root. With pool->lock not held;
 * a finished batch comes back in *batch for collection. */
static int receive_message(hpool_pool *pool, hpool__message *message, hpool__batch **batch)
{
    *batch = NULL;
    bool from_root = message->source == pool->root; /* batches' news never comes from the root itself */
    if (message->type == HPOOL__MSG_PAIRS)
        return hpool__keyed_pairs_received(pool, message);
    if (message->type == HPOOL__MSG_KEYED_RESULT)
        return hpool__keyed_run_received(pool, message);
    int rc = 0;
    switch (from_root ? -1 : message->type) {
    case HPOOL__MSG_RESULT:
        return hpool__result_decode(message, batch);
    case HPOOL__MSG_CREDIT: {
        hpool__credit_header credit;
        rc = hpool__message_decode(message, &credit, sizeof credit, NULL, NULL);
        if (rc == 0) {
            pthread_mutex_lock(&pool->lock);
            rc = note_completed(pool, message->source, credit.chunks_completed);
            pthread_mutex_unlock(&pool->lock);
        }
        break;
    }
    case HPOOL__MSG_HEARTBEAT: /* heard: that is all it says */
        rc = hpool__message_decode(message, NULL, 0, NULL, NULL);
        break;
    case HPOOL__MSG_CHECKPOINTED:
        return hpool__checkpoint_received(pool, message);
    case HPOOL__MSG_STOP_REQUEST: {
        hpool__stop_request_header request;
        rc = hpool__message_decode(message, &request, sizeof request, NULL, NULL);
        if (rc == 0)
            hpool__stop_requested(pool, request.level, request.signal);
        break;
    }
    case HPOOL__MSG_ERROR: {
        /* The rank's engine stopped: nothing it holds will come back. */
        hpool__error_header error;
        rc = hpool__message_decode(message, &error, sizeof error, NULL, NULL);
        if (rc == 0)
            rc = error.code < 0 ? error.code : HPOOL_EPEER;
        pthread_mutex_lock(&pool->lock);
        pool->loads[message->source].engine_ended = true;
        pthread_mutex_unlock(&pool->lock);
        break;
    }
    default:
        rc = HPOOL_EPEER;
        break;
    }
    free(message->data);
    return rc;
}

/* The detail of an error that a message from rank source brought. */
static void name_received_error(int rc, int type, int source)
{
    if (type == HPOOL__MSG_ERROR)
        hpool__fail(rc, "rank %d's engine stopped with %s (%s): what it held cannot come back", source,
                    hpool_err_name(rc), hpool_strerror(rc));
    else if (rc == HPOOL_EPEER)
        hpool__fail(rc, "rank %d sent a malformed message (type %d): do all ranks run one hpool build?", source,
                    type);
    else if (hpool__detail_text(rc)[0] == '\0')
        hpool__fail(rc, "a message from rank %d (type %d) could not be taken: %s", source, type,
                    hpool_strerror(rc));
}

/* Receives what the other ranks sent. With pool->lock held. */
static int receive_results(hpool_pool *pool, bool *busy)
{
    for (int round = 0; round < 64; round++) {
        hpool__message message;
        hpool__batch *batch = NULL;
        pthread_mutex_unlock(&pool->lock);
        int received = hpool__transport_receive(&pool->transport, &message);
        int rc = received < 0 ? received : 0;
        if (received > 0) {
            int type = message.type;
            rc = receive_message(pool, &message, &batch);
            if (rc != 0)
                name_received_error(rc, type, message.source);
        }
        pthread_mutex_lock(&pool->lock);
        if (received > 0)
            hpool__watchdog_heard(pool, message.source);
        if (rc == 0 && batch != NULL
            && (pool->loads[message.source].engine_ended || pool->loads[message.source].given_up)) {
            /* Given up on (give_up_stuck_ranks, a stop at once): its call
             * no longer counts it. */
            hpool__batch_free(batch);
            batch = NULL;
        }
        if (rc == 0 && batch != NULL) {
            hpool__watchdog_returned(pool, message.source, batch->call_id, batch->first);
            batch->origin_rank = message.source;
            rc = note_completed(pool, message.source, batch->sender_chunks_completed);
            if (rc == 0)
                hpool__collect(pool, batch);
            else
                hpool__batch_free(batch);
        }
        if (rc != 0)
            return rc;
        if (received == 0)
            return 0;
        *busy = true;
    }
    return 0;
}

/* Fails every call after a transport error, so no caller waits forever. */
static void fail_all_calls(hpool_pool *pool, int error)
{
    /* The engine's error detail (this thread's) goes with the calls to the
     * threads that take their status, and with the pool to hpool_pool_join. */
    hpool__keep_pool_error(pool, error);
    for (hpool__call_state *call = pool->calls.head; call != NULL; call = call->next) {
        bool first_time = call->report.status == 0; /* this runs every round until the calls end */
        hpool__call_set_error(call, error);
        call->source_ended = true;
        call->total = call->cut;
        /* What other ranks hold will not come back; what the root's own
         * team holds will, and until then it may write to the caller's
         * results: the call completes only once those are collected. */
        call->batches_uncollected = call->local_uncollected;
        if (first_time)
            hpool__team_cancel(&pool->team, call->id);
        call->shuffle_pending = call->shuffling = false;
        call->keyed_done = true;
    }
    hpool__call_state *call = pool->calls.head;
    while (call != NULL) {
        hpool__call_state *next = call->next;
        hpool__complete_if_done(pool, call);
        call = next;
    }
}

/* After STOP: receives, and drops, whatever the ranks still send until each
 * has said it stopped. After an error the root stops reading results, and
 * a rank whose results were never received would wait for its sends to
 * complete forever. */
static int count_waiting(const hpool_pool *pool)
{
    int waiting = 0;
    for (int rank = 0; rank < pool->transport.size; rank++)
        waiting += rank != pool->root && !pool->loads[rank].engine_ended;
    return waiting;
}

/* For this long after STOP the root looks every 16 µs, and backs off
 * only after: STOPPED comes within a rank's poll (16 µs just after its
 * team ran out of work, see rank_engine.c), and each doubling of the
 * root's own wait added as much again to every pool's teardown (mpirun -n
 * 2 square --sum 10: the root's join took 1.14 ms at the median with the
 * backoff of a root whose ranks are busy, 64 to 512 µs; 0.33 ms now). */
#define DRAIN_EAGER_NS 2000000u

/* After a stop at once the root waits this long for STOPPED, not the
 * stall timeout: a rank's engine answers STOP within a poll, unless it is
 * inside a keyed reduce function, and a stop at once is not to wait for
 * those. */
#define AT_ONCE_WAIT_NS 5000000000u

/* Once a stop at once has waited AT_ONCE_WAIT_NS: the ranks that have not
 * answered are given up, and the join says which. With pool->lock held. */
static int give_up_unanswered(hpool_pool *pool)
{
    char ranks[160] = "";
    size_t used = 0;
    for (int rank = 0; rank < pool->transport.size; rank++) {
        if (rank == pool->root || pool->loads[rank].engine_ended)
            continue;
        pool->loads[rank].engine_ended = true;
        if (used + 16 < sizeof ranks)
            used += (size_t)snprintf(ranks + used, sizeof ranks - used, "%s%d", used ? ", " : "", rank);
    }
    return hpool__fail(HPOOL_ESTALLED,
                       "stopped at once, and rank %s had not said it stopped %.0f s later (its engine may be in a "
                       "keyed reduce function): join no longer waits for it, and MPI_Finalize would; end the job "
                       "with MPI_Abort", ranks, (double)AT_ONCE_WAIT_NS / 1e9);
}

/* ... and the watchdog stops it waiting for a rank that went silent. */
static int drain_until_stopped(hpool_pool *pool)
{
    unsigned idle_rounds = 0;
    int stalled = 0;
    uint64_t eager_until = hpool__now_ns() + DRAIN_EAGER_NS;
    pthread_mutex_lock(&pool->lock);
    uint64_t at_once_until = pool->stop_applied == 2 ? hpool__now_ns() + AT_ONCE_WAIT_NS : 0;
    while (count_waiting(pool) > 0) {
        int rc = hpool__watchdog_check(pool);
        if (rc == 0 && at_once_until != 0 && hpool__now_ns() >= at_once_until)
            rc = give_up_unanswered(pool);
        if (rc != 0) {
            stalled = stalled ? stalled : rc;
            continue;
        }
        pthread_mutex_unlock(&pool->lock);
        hpool__message message;
        int received = hpool__transport_receive(&pool->transport, &message);
        if (received < 0)
            return received;
        if (received == 0) {
            if (hpool__transport_progress(&pool->transport) != 0)
                return HPOOL_EMPI;
            pthread_mutex_lock(&pool->lock);
            if (hpool__now_ns() < eager_until)
                idle_rounds = 0;
            hpool__engine_wait(pool, true, &idle_rounds, HPOOL__POLL_SHORT);
            continue;
        }
        idle_rounds = 0;
        pthread_mutex_lock(&pool->lock);
        hpool__watchdog_heard(pool, message.source);
        bool ended = message.type == HPOOL__MSG_STOPPED || message.type == HPOOL__MSG_ERROR;
        if (ended && message.source != pool->root)
            pool->loads[message.source].engine_ended = true;
        free(message.data);
    }
    pthread_mutex_unlock(&pool->lock);
    return stalled;
}

/* Whether the caller gave up waiting on a call still under way. */
static bool some_wait_timed_out(const hpool_pool *pool)
{
    for (const hpool__call_state *call = pool->calls.head; call != NULL; call = call->next)
        if (call->wait_timed_out)
            return true;
    return false;
}

/* After hpool_pool_terminate: an item that still runs past the stall
 * timeout is abandoned, and its call ends with HPOOL_ESTALLED, so that
 * terminate and free return. With pool->lock held. */
static void abandon_stuck_items(hpool_pool *pool)
{
    uint64_t age;
    char running[300];
    if (hpool__longest_running(pool, &age, running, sizeof running) < 0 || age <= pool->stall_timeout_ns)
        return;
    pool->team_abandoned = true;
    int code = hpool__fail(HPOOL_ESTALLED,
                           "%s after %.0f s, past the stall timeout (%.0f s, HPOOL_STALL_TIMEOUT), with the pool "
                           "terminated or joined after a wait timed out: abandoned with its thread, which may still "
                           "write its own result",
                           running, (double)age / 1e9, (double)pool->stall_timeout_ns / 1e9);
    for (hpool__call_state *call = pool->calls.head; call != NULL; call = call->next) {
        if (call->local_uncollected == 0)
            continue;
        call->batches_uncollected -= call->local_uncollected;
        call->local_uncollected = 0;
        call->source_ended = true;
        call->total = call->cut;
        hpool__call_set_error(call, code);
    }
}

/* After hpool_pool_terminate, what a rank still holds the stall timeout
 * later is items it still runs (those it had not started came back
 * cancelled): they are given up as the root's own are, their calls end
 * with HPOOL_ESTALLED naming the rank, and join no longer waits for it.
 * That rank abandons them, with their threads, when the root ends the
 * pool (hpool_pool_join). With pool->lock held. */
static void give_up_stuck_ranks(hpool_pool *pool)
{
    uint64_t now = hpool__now_ns();
    if (now - pool->terminate_started_ns <= pool->stall_timeout_ns)
        return;
    for (int rank = 0; rank < pool->transport.size; rank++) {
        hpool__rank_load *load = &pool->loads[rank];
        if (rank == pool->root || load->engine_ended || load->outstanding_count == 0)
            continue;
        char held[256];
        hpool__watchdog_describe_held(load, held, sizeof held);
        int code = hpool__fail(HPOOL_ESTALLED,
                               "rank %d (host %s) still had %s running %.0f s after hpool_pool_terminate, past the "
                               "stall timeout (%.0f s, HPOOL_STALL_TIMEOUT): given up, and abandoned with their "
                               "threads on that rank when the pool ends",
                               rank, load->host[0] ? load->host : "?", held,
                               (double)(now - pool->terminate_started_ns) / 1e9,
                               (double)pool->stall_timeout_ns / 1e9);
        for (size_t i = 0; i < load->outstanding_count; i++) {
            hpool__call_state *call = hpool__find_call(pool, load->outstanding[i].call_id);
            if (call == NULL || call->complete)
                continue;
            HPOOL__ASSERT(call->batches_uncollected > 0);
            call->batches_uncollected--;
            call->source_ended = true;
            call->total = call->cut;
            hpool__call_set_error(call, code);
        }
        load->outstanding_count = 0;
        load->engine_ended = true; /* what it still sends is dropped (receive_results) */
    }
}

/* hpool_pool_join waits for every call, and a stream whose window is full
 * waits for its reader: a stream not read for the stall timeout since
 * the join began is cancelled, so that join (and free) end, and the call
 * and the join say why. With pool->lock held. */
static void give_up_unread_streams(hpool_pool *pool)
{
    uint64_t now = hpool__now_ns();
    for (hpool__call_state *call = pool->calls.head; call != NULL; call = call->next) {
        if ((call->kind != HPOOL__CALL_IMAP && call->kind != HPOOL__CALL_IMAP_UNORDERED) || call->complete
            || call->canceled || call->source_ended || call->batches_uncollected > 0)
            continue;
        uint64_t since = call->last_read_ns > pool->join_started_ns ? call->last_read_ns : pool->join_started_ns;
        if (now - since < pool->stall_timeout_ns)
            continue;
        int code = hpool__fail(HPOOL_EDEADLK,
                               "hpool_pool_join: the stream of call %u (hpool_imap%s) has a full window of results "
                               "that nobody read for %.0f s (the stall timeout) since the join began: cancelled, "
                               "with its items not yet run. Read a stream to its end, or hpool_iter_free it, "
                               "before joining",
                               (unsigned)call->id, call->kind == HPOOL__CALL_IMAP ? "" : "_unordered",
                               (double)pool->stall_timeout_ns / 1e9);
        hpool__call_set_error(call, code);
        hpool__keep_pool_error(pool, code);
        hpool__cancel_call(pool, call);
    }
}

void *hpool__root_engine(void *argument)
{
    hpool_pool *pool = argument;
    hpool__prepare_engine_thread();
    hpool__crash_worker_started(&pool->team, -1); /* it runs keyed reduce functions too */
    bool polling = pool->transport.size > 1;
    unsigned idle_rounds = 0;
    int rc = 0;
    pthread_mutex_lock(&pool->lock);
    hpool__watchdog_start(pool);
    for (;;) {
        bool busy = false;
        while (pool->local_done.head != NULL) {
            hpool__batch *batch;
            HPOOL__QUEUE_POP(&pool->local_done, batch);
            hpool__collect(pool, batch);
            busy = true;
        }
        if (rc == 0 && polling)
            rc = receive_results(pool, &busy);
        if (rc == 0 && polling)
            rc = hpool__watchdog_check(pool);
        hpool__track_workers(pool);
        hpool__stop_apply(pool);
        if (rc == 0)
            rc = send_cancellations(pool);
        hpool__checkpoint_round(pool);
        if (rc == 0)
            rc = start_shuffles(pool);
        if (rc == 0)
            rc = dispatch(pool, &busy);
        if (rc == 0 && polling && hpool__now_ns() - pool->heartbeat_sent_ns >= HPOOL__HEARTBEAT_NS) {
            /* the ranks watch the root as it watches them (rank_engine.c) */
            pool->heartbeat_sent_ns = hpool__now_ns();
            pthread_mutex_unlock(&pool->lock);
            rc = hpool__message_send_to_all(&pool->transport, pool->root, HPOOL__MSG_HEARTBEAT, NULL, 0);
            pthread_mutex_lock(&pool->lock);
        }
        if (pool->stall_timeout_ns != 0 && !pool->team_abandoned && pool->calls.head != NULL
            && (pool->terminating || (pool->joining && some_wait_timed_out(pool))))
            abandon_stuck_items(pool);
        if (pool->terminating && pool->stall_timeout_ns != 0 && pool->calls.head != NULL)
            give_up_stuck_ranks(pool);
        if (pool->joining && pool->stall_timeout_ns != 0 && pool->calls.head != NULL)
            give_up_unread_streams(pool);
        /* calls with nothing to cut, such as n = 0, complete here */
        for (hpool__call_state *call = pool->calls.head, *next; call != NULL; call = next) {
            next = call->next;
            hpool__complete_if_done(pool, call);
        }
        if (rc != 0 && pool->calls.head != NULL)
            fail_all_calls(pool, rc);
        if (pool->joining && pool->calls.head == NULL)
            break;
        if (rc == 0) {
            pthread_mutex_unlock(&pool->lock);
            if (polling)
                rc = hpool__transport_progress(&pool->transport);
            if (rc == 0)
                rc = hpool__keyed_progress(pool, &busy);
            pthread_mutex_lock(&pool->lock);
        }
        if (busy)
            idle_rounds = 0;
        hpool__engine_wait(pool, polling && rc == 0, &idle_rounds, HPOOL__POLL_ROOT);
    }
    pthread_mutex_unlock(&pool->lock);
    /* Release the other ranks from hpool_pool_join(); after a stop at
     * once, they abandon what they still run, as the root did. */
    hpool__stop_request_header stop = {.level = pool->stop_applied == 2 ? 2 : 0,
                                       .signal = atomic_load(&pool->stop_signal)};
    int sent = hpool__message_send_to_all(&pool->transport, pool->root, HPOOL__MSG_STOP, &stop, sizeof stop);
    if (rc == 0)
        rc = sent;
    int drained = sent == 0 ? drain_until_stopped(pool) : 0;
    if (rc == 0)
        rc = drained;
    int flushed = hpool__transport_flush(&pool->transport);
    pthread_mutex_lock(&pool->lock);
    hpool__keep_pool_error(pool, rc ? rc : flushed);
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}
