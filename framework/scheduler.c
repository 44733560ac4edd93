/* scheduler.c: the root's engine: cuts calls into chunks and batches, and keeps every rank busy. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* A chunk should take about this much thread time once the item cost is
 * known: long enough to hide the per-chunk overhead, short enough that
 * threads that finish early find more work. */
#define TARGET_CHUNK_NS 1000000.0
/* A batch keeps a rank's threads busy for about this long, which hides
 * the round trip to the root. */
#define TARGET_BATCH_NS 10000000.0
/* Batches in flight per rank: one running, one waiting in its queue. */
#define CREDIT_PER_RANK 2
/* Input plus result bytes per batch, so streams stay in bounded memory. */
#define MAX_BATCH_BYTES (1u << 20)

static uint64_t ceil_div(uint64_t a, uint64_t b)
{
    return a / b + (a % b != 0);
}

/* Chunksize and item count of the next batch of call for a rank with
 * `threads` threads. */
static void size_batch(const hpool_pool *pool, const hpool__call *call, int threads, uint64_t *chunksize,
                       uint64_t *max_items)
{
    uint64_t workers = (uint64_t)pool->transport.size * (uint64_t)pool->thread_count;
    bool total_known = call->total != UINT64_MAX;
    uint64_t remaining = total_known ? call->total - call->cut : UINT64_MAX;
    double cost = call->ns_per_item;

    size_t bytes_per_item = hpool__source_item_bytes(call->source)
                            + (call->mode == HPOOL__FIXED_RESULT ? call->result_size : 0);
    uint64_t byte_cap = bytes_per_item > 0 ? MAX_BATCH_BYTES / bytes_per_item : UINT64_MAX;
    uint64_t chunk = call->spec.chunksize;
    if (chunk == 0) {
        /* Never coarser than Python's ceil(n / (4 × workers)); finer when
         * items are slow, so that 1 s items still spread over every core. */
        uint64_t python = total_known ? ceil_div(call->total ? call->total : 1, 4 * workers) : UINT64_MAX;
        chunk = cost > 0 ? (uint64_t)(TARGET_CHUNK_NS / cost) : 1;
        if (chunk < 1)
            chunk = 1;
        if (chunk > python)
            chunk = python;
        if (chunk > byte_cap)
            chunk = byte_cap > 0 ? byte_cap : 1; /* bounded memory beats fewer chunks */
    }

    if (call->block_size > 0) /* whole blocks, so batches start on one */
        chunk = ceil_div(chunk, call->block_size) * call->block_size;

    uint64_t items;
    if (cost > 0) {
        double wanted = TARGET_BATCH_NS * threads / cost;
        items = wanted > 1e15 ? (uint64_t)1e15 : (uint64_t)wanted;
    } else {
        items = chunk * (uint64_t)threads; /* a probe: one chunk per thread */
    }
    if (total_known) {
        /* Near the end, share what is left so every thread gets some. */
        uint64_t fair = ceil_div(remaining * (uint64_t)threads, 2 * workers);
        if (items > fair)
            items = fair;
    }
    if (items > byte_cap)
        items = byte_cap;
    if (items > chunk)
        items -= items % chunk; /* whole chunks, but for the last */
    if (items < chunk)
        items = chunk;
    if (items > remaining)
        items = remaining;
    *chunksize = chunk;
    *max_items = items;
}

/* The first call with items left to cut and room in its window. */
static hpool__call *next_call_to_cut(hpool_pool *pool)
{
    for (hpool__call *call = pool->calls; call != NULL; call = call->next)
        if (!call->source_ended && !call->canceled && call->in_flight < pool->window)
            return call;
    return NULL;
}

/* Cuts the next batch for rank dest, or returns NULL. With pool->lock held:
 * a producer source runs here. */
static hpool__batch *cut_batch(hpool_pool *pool, int dest)
{
    hpool__call *call = next_call_to_cut(pool);
    if (call == NULL)
        return NULL;
    hpool__batch *batch = hpool__batch_new();
    if (batch == NULL)
        return NULL;
    uint64_t chunksize, max_items;
    size_batch(pool, call, pool->thread_count, &chunksize, &max_items);
    bool ended = false;
    int rc = hpool__source_cut(call->source, call->cut, max_items, MAX_BATCH_BYTES, batch, &ended);
    if (rc != 0 || batch->count == 0) {
        hpool__batch_free(batch);
        call->source_ended = true;
        call->total = call->cut;
        if (rc != 0 && call->report.status == 0)
            call->report.status = rc;
        hpool__complete_if_done(pool, call);
        return NULL;
    }
    batch->call_id = call->id;
    batch->batch_id = call->next_batch_id++;
    batch->function = call->spec.function;
    batch->reducer = call->mode == HPOOL__REDUCE || call->mode == HPOOL__KEYED ? call->spec.reducer : -1;
    batch->mode = call->mode;
    batch->result_size = call->result_size;
    batch->chunksize = chunksize;
    batch->block_size = call->block_size;
    batch->origin_rank = dest;
    if (dest == pool->root && call->kind == HPOOL__CALL_MAP && call->mode == HPOOL__FIXED_RESULT)
        batch->results = (unsigned char *)call->spec.results + batch->first * call->result_size;
    if (dest == pool->root && call->mode == HPOOL__KEYED
        && (batch->store = hpool__keyed_store_get(pool, call->id, call->spec.reducer)) == NULL) {
        hpool__batch_free(batch);
        return NULL;
    }
    call->cut += batch->count;
    call->in_flight++;
    call->outstanding++;
    if (ended) {
        call->source_ended = true;
        call->total = call->cut;
    }
    return batch;
}

/* Hands out batches to every rank below its credit. With pool->lock held;
 * drops it around sends and submissions. */
static int dispatch(hpool_pool *pool, bool *busy)
{
    int size = pool->transport.size;
    for (int offset = 0; offset < size; offset++) {
        /* the root's own team first: it needs no message */
        int dest = (pool->root + offset) % size;
        while (pool->outstanding[dest] < CREDIT_PER_RANK) {
            hpool__batch *batch = cut_batch(pool, dest);
            if (batch == NULL)
                return 0;
            pool->outstanding[dest]++;
            *busy = true;
            pthread_mutex_unlock(&pool->lock);
            int rc = 0;
            if (dest == pool->root) {
                hpool__team_submit(&pool->team, batch);
            } else {
                void *buffer;
                size_t bytes;
                rc = hpool__batch_encode(batch, &buffer, &bytes);
                if (rc == 0)
                    rc = hpool__transport_send(&pool->transport, dest, HPOOL__MSG_BATCH, buffer, bytes);
                /* the root keeps only what it needs to collect the results */
                hpool__batch_free(batch);
            }
            pthread_mutex_lock(&pool->lock);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

/* Tells every rank about calls canceled since the last round. */
static int send_cancellations(hpool_pool *pool)
{
    for (hpool__call *call = pool->calls; call != NULL; call = call->next) {
        if (!call->cancel_pending)
            continue;
        call->cancel_pending = false;
        uint32_t id = call->id;
        pthread_mutex_unlock(&pool->lock);
        hpool__team_cancel(&pool->team, id);
        int rc = 0;
        for (int rank = 0; rank < pool->transport.size && rc == 0; rank++) {
            if (rank == pool->root)
                continue;
            uint32_t *message = malloc(sizeof *message);
            if (message == NULL) {
                rc = HPOOL_ENOMEM;
                break;
            }
            *message = id;
            rc = hpool__transport_send(&pool->transport, rank, HPOOL__MSG_CANCEL, message, sizeof *message);
        }
        pthread_mutex_lock(&pool->lock);
        if (rc != 0)
            return rc;
        /* the list may have changed while unlocked: start over */
        return send_cancellations(pool);
    }
    return 0;
}

/* Starts the shuffle of keyed calls whose map phase is over: every rank,
 * this one included, partitions its pairs. With pool->lock held. */
static int start_shuffles(hpool_pool *pool)
{
    for (hpool__call *call = pool->calls; call != NULL; call = call->next) {
        if (!call->shuffle_pending)
            continue;
        call->shuffle_pending = false;
        call->shuffling = true;
        uint32_t ids[2] = {call->id, (uint32_t)call->spec.reducer};
        pthread_mutex_unlock(&pool->lock);
        int rc = 0;
        for (int rank = 0; rank < pool->transport.size && rc == 0; rank++) {
            if (rank == pool->root)
                continue;
            uint32_t *message = malloc(sizeof ids);
            if (message == NULL) {
                rc = HPOOL_ENOMEM;
                break;
            }
            memcpy(message, ids, sizeof ids);
            rc = hpool__transport_send(&pool->transport, rank, HPOOL__MSG_SHUFFLE, message, sizeof ids);
        }
        if (rc == 0)
            rc = hpool__shuffle_start(pool, ids[0], (int)ids[1]);
        pthread_mutex_lock(&pool->lock);
        if (rc != 0)
            return rc;
        return start_shuffles(pool); /* the list may have changed while unlocked */
    }
    return 0;
}

/* Receives what the other ranks sent. With pool->lock held. */
static int receive_results(hpool_pool *pool, bool *busy)
{
    for (int round = 0; round < 64; round++) {
        hpool__message message;
        pthread_mutex_unlock(&pool->lock);
        int received = hpool__transport_receive(&pool->transport, &message);
        hpool__batch *batch = NULL;
        int rc = received < 0 ? received : 0;
        if (received > 0 && message.type == HPOOL__MSG_PAIRS) {
            rc = hpool__shuffle_receive(pool, &message);
            received = -1; /* handled: nothing to collect */
        } else if (received > 0 && message.type == HPOOL__MSG_KEYED_RESULT) {
            rc = hpool__shuffle_run_received(pool, &message);
            received = -1;
        } else if (received > 0) {
            if (message.type != HPOOL__MSG_RESULT || message.source == pool->root) {
                free(message.data);
                rc = HPOOL_EPEER;
            } else {
                rc = hpool__result_decode(message.data, message.size, &batch);
                if (rc != 0)
                    free(message.data);
            }
        }
        pthread_mutex_lock(&pool->lock);
        if (rc != 0)
            return rc;
        if (received == 0)
            return 0;
        *busy = true;
        if (received < 0)
            continue;
        batch->origin_rank = message.source;
        if (pool->outstanding[message.source] > 0)
            pool->outstanding[message.source]--;
        hpool__collect(pool, batch);
    }
    return 0;
}

/* Fails every call after a transport error, so no caller waits forever. */
static void fail_all_calls(hpool_pool *pool, int error)
{
    if (pool->error == 0)
        pool->error = error;
    for (hpool__call *call = pool->calls; call != NULL; call = call->next) {
        if (call->report.status == 0)
            call->report.status = error;
        call->source_ended = true;
        call->total = call->cut;
        call->outstanding = 0;
        call->shuffle_pending = call->shuffling = false;
        call->keyed_done = true;
    }
    hpool__call *call = pool->calls;
    while (call != NULL) {
        hpool__call *next = call->next;
        hpool__complete_if_done(pool, call);
        call = next;
    }
}

void *hpool__root_engine(void *argument)
{
    hpool_pool *pool = argument;
    bool polling = pool->transport.size > 1;
    unsigned idle_rounds = 0;
    int rc = 0;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        bool busy = false;
        while (pool->local_done_head != NULL) {
            hpool__batch *batch = pool->local_done_head;
            pool->local_done_head = batch->next;
            if (pool->local_done_head == NULL)
                pool->local_done_tail = NULL;
            if (pool->outstanding[pool->root] > 0)
                pool->outstanding[pool->root]--;
            hpool__collect(pool, batch);
            busy = true;
        }
        if (rc == 0 && polling)
            rc = receive_results(pool, &busy);
        if (rc == 0)
            rc = send_cancellations(pool);
        if (rc == 0)
            rc = start_shuffles(pool);
        if (rc == 0)
            rc = dispatch(pool, &busy);
        /* calls with nothing to cut, such as n = 0, complete here */
        for (hpool__call *call = pool->calls, *next; call != NULL; call = next) {
            next = call->next;
            hpool__complete_if_done(pool, call);
        }
        if (rc != 0 && pool->calls != NULL)
            fail_all_calls(pool, rc);
        if (pool->joining && pool->calls == NULL)
            break;
        if (rc == 0) {
            pthread_mutex_unlock(&pool->lock);
            if (polling)
                rc = hpool__transport_progress(&pool->transport);
            if (rc == 0)
                rc = hpool__shuffle_progress(pool, &busy);
            pthread_mutex_lock(&pool->lock);
        }
        if (busy)
            idle_rounds = 0;
        hpool__engine_wait(pool, polling && rc == 0, &idle_rounds);
    }
    pthread_mutex_unlock(&pool->lock);
    /* Release the other ranks from hpool_pool_join(). */
    for (int rank = 0; rank < pool->transport.size; rank++) {
        if (rank == pool->root)
            continue;
        void *empty = malloc(1);
        int sent = empty ? hpool__transport_send(&pool->transport, rank, HPOOL__MSG_STOP, empty, 0) : HPOOL_ENOMEM;
        if (rc == 0)
            rc = sent;
    }
    int flushed = hpool__transport_flush(&pool->transport);
    pthread_mutex_lock(&pool->lock);
    if (pool->error == 0)
        pool->error = rc ? rc : flushed;
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}
