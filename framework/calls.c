/* calls.c: the calls of the public API (map, starmap, imap, apply, map_reduce), their handles and streams. */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct hpool_async {
    hpool_pool *pool;
    hpool__call_state *call;
};

struct hpool_iter {
    hpool_pool *pool;
    hpool__call_state *call;
};

/* Checks the call against the pool and its kind; sets mode and result size. */
static int check_call(const hpool_pool *pool, const hpool_call *spec, enum hpool__call_kind kind,
                      enum hpool__result_mode *mode, size_t *result_size)
{
    if (spec->source == NULL || spec->function < 0 || (size_t)spec->function >= pool->function_count)
        return HPOOL_EINVAL;
    bool producer = spec->source->is_producer;
    switch (kind) {
    case HPOOL__CALL_MAP:
        if (spec->results != NULL && spec->records != NULL)
            return HPOOL_EINVAL;
        if (spec->records != NULL) {
            *mode = HPOOL__RECORD_RESULT;
            *result_size = 0;
        } else if (spec->results != NULL) {
            /* a producer's length is unknown, so no array can be sized */
            if (spec->result_size == 0 || producer)
                return HPOOL_EINVAL;
            *mode = HPOOL__FIXED_RESULT;
            *result_size = spec->result_size;
        } else if (spec->result_size > 0) {
            return HPOOL_EINVAL; /* results of that size, and nowhere to put them */
        } else {
            *mode = HPOOL__NO_RESULT;
            *result_size = 0;
        }
        return 0;
    case HPOOL__CALL_REDUCE:
        if (spec->reducer < 0 || (size_t)spec->reducer >= pool->reducer_count || spec->reduction == NULL)
            return HPOOL_EINVAL;
        /* Each item's value is the reducer's: any other size would be
         * read or written past. 0 means "the reducer's". */
        if (spec->result_size != 0 && spec->result_size != pool->reducers[spec->reducer].value_size)
            return HPOOL_EINVAL;
        *mode = HPOOL__REDUCE;
        *result_size = pool->reducers[spec->reducer].value_size;
        return 0;
    case HPOOL__CALL_KEYED:
        if (spec->reducer < 0 || (size_t)spec->reducer >= pool->keyed_reducer_count || spec->pairs == NULL)
            return HPOOL_EINVAL;
        *mode = HPOOL__KEYED;
        *result_size = 0;
        return 0;
    case HPOOL__CALL_IMAP:
    case HPOOL__CALL_IMAP_UNORDERED:
        *mode = spec->result_size > 0 ? HPOOL__FIXED_RESULT : HPOOL__RECORD_RESULT;
        *result_size = spec->result_size;
        return 0;
    }
    return HPOOL_EINVAL;
}

/* Queues a call for the engine. The returned call holds one reference for
 * the caller's handle. */
static int submit(hpool_pool *pool, const hpool_call *spec, enum hpool__call_kind kind, hpool__call_state **out)
{
    if (pool == NULL || spec == NULL)
        return HPOOL_EINVAL;
    if (!hpool_pool_is_root(pool))
        return HPOOL_ENOTROOT;
    enum hpool__result_mode mode;
    size_t result_size;
    int rc = check_call(pool, spec, kind, &mode, &result_size);
    if (rc != 0)
        return rc;
    hpool__call_state *call = hpool__calloc(1, sizeof *call);
    if (call == NULL)
        return HPOOL_ENOMEM;
    call->kind = kind;
    call->spec = *spec;
    call->source = spec->source;
    call->mode = mode;
    call->result_size = result_size;
    call->refcount = 2;
    call->total = spec->source->count;
    if (kind == HPOOL__CALL_REDUCE && spec->deterministic) {
        /* Depends on the item count only: never on ranks, threads or
         * chunksize. Small counts get small blocks, so slow items still
         * spread; a producer's count is unknown, so it gets a fixed size. */
        uint64_t block = call->total == UINT64_MAX ? 1024 : hpool__ceil_div(call->total, 65536);
        call->block_size = block < 1 ? 1 : block > 4096 ? 4096 : block;
    }
    call->source_ended = call->total == 0;
    if (mode == HPOOL__REDUCE) {
        const hpool_reducer *reducer = &pool->reducers[spec->reducer];
        call->reduction = hpool__malloc(reducer->value_size);
        if (call->reduction == NULL) {
            free(call);
            return HPOOL_ENOMEM;
        }
        memcpy(call->reduction, reducer->identity, reducer->value_size);
    }
    pthread_mutex_lock(&pool->lock);
    if (pool->closed) {
        pthread_mutex_unlock(&pool->lock);
        free(call->reduction);
        free(call);
        return HPOOL_ECLOSED;
    }
    call->id = pool->next_call_id++;
    if (pool->next_call_id == 0)
        pool->next_call_id = 1; /* 0 marks "no call" in the team's cancel ring */
    HPOOL__QUEUE_PUSH(&pool->calls, call);
    pool->engine_has_news = true;
    pthread_cond_signal(&pool->engine_wake);
    pthread_mutex_unlock(&pool->lock);
    *out = call;
    return 0;
}

/* Waits with pool->lock held until call completes or the timeout passes. */
static int wait_complete(hpool_pool *pool, hpool__call_state *call, double timeout)
{
    if (!call->complete && timeout != 0 && hpool__thread_owned_by(pool))
        return HPOOL_EDEADLK; /* a pool thread waiting on its own pool */
    hpool__deadline deadline = hpool__deadline_in_seconds(timeout);
    while (!call->complete)
        if (!hpool__cond_wait_until(&pool->changed, &pool->lock, &deadline))
            return call->complete ? 0 : HPOOL_ETIMEDOUT;
    return 0;
}

static int run_blocking(hpool_pool *pool, const hpool_call *spec, enum hpool__call_kind kind,
                        hpool_report *report)
{
    if (hpool__thread_owned_by(pool))
        return HPOOL_EDEADLK; /* its own thread would wait for itself */
    hpool__call_state *call;
    int rc = submit(pool, spec, kind, &call);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&pool->lock);
    wait_complete(pool, call, -1);
    if (report != NULL)
        *report = call->report;
    rc = call->report.status;
    hpool__call_release(pool, call);
    pthread_mutex_unlock(&pool->lock);
    return rc;
}

int hpool_map(hpool_pool *pool, const hpool_call *call, hpool_report *report)
{
    return run_blocking(pool, call, HPOOL__CALL_MAP, report);
}

int hpool_starmap(hpool_pool *pool, const hpool_call *call, hpool_report *report)
{
    if (call == NULL || call->source == NULL || call->source->kind != HPOOL__COLUMNS)
        return HPOOL_EINVAL;
    return run_blocking(pool, call, HPOOL__CALL_MAP, report);
}

int hpool_map_reduce(hpool_pool *pool, const hpool_call *call, hpool_report *report)
{
    return run_blocking(pool, call, HPOOL__CALL_REDUCE, report);
}

int hpool_map_reduce_keyed(hpool_pool *pool, const hpool_call *call, hpool_report *report)
{
    if (call != NULL && call->pairs != NULL)
        *call->pairs = NULL;
    return run_blocking(pool, call, HPOOL__CALL_KEYED, report);
}

/* ---- Asynchronous calls --------------------------------------------- */

static int start_async(hpool_pool *pool, const hpool_call *spec, enum hpool__call_kind kind, hpool_async **out)
{
    if (out == NULL)
        return HPOOL_EINVAL;
    *out = NULL;
    hpool_async *async = hpool__calloc(1, sizeof *async);
    if (async == NULL)
        return HPOOL_ENOMEM;
    int rc = submit(pool, spec, kind, &async->call);
    if (rc != 0) {
        free(async);
        return rc;
    }
    async->pool = pool;
    *out = async;
    return 0;
}

int hpool_map_async(hpool_pool *pool, const hpool_call *call, hpool_async **async)
{
    return start_async(pool, call, HPOOL__CALL_MAP, async);
}

int hpool_starmap_async(hpool_pool *pool, const hpool_call *call, hpool_async **async)
{
    if (call == NULL || call->source == NULL || call->source->kind != HPOOL__COLUMNS)
        return HPOOL_EINVAL;
    return start_async(pool, call, HPOOL__CALL_MAP, async);
}

int hpool_map_reduce_async(hpool_pool *pool, const hpool_call *call, hpool_async **async)
{
    return start_async(pool, call, HPOOL__CALL_REDUCE, async);
}

int hpool_apply_async(hpool_pool *pool, int function, const void *input, size_t input_size, void *result,
                      size_t result_size, hpool_async **async)
{
    if (async == NULL || (input == NULL && input_size > 0) || (result == NULL) != (result_size == 0))
        return HPOOL_EINVAL;
    *async = NULL;
    /* The input travels as one record, so it is copied: the caller may
     * reuse its buffer at once. */
    void *copy = hpool__malloc(input_size + 1);
    if (copy == NULL)
        return HPOOL_ENOMEM;
    if (input_size)
        memcpy(copy, input, input_size);
    hpool_source *source;
    int rc = hpool_source_array(&source, copy, input_size ? input_size : 1, 1);
    if (rc != 0) {
        free(copy);
        return rc;
    }
    hpool_call spec = HPOOL_CALL_INIT;
    spec.function = function;
    spec.source = source;
    spec.chunksize = 1;
    spec.results = result;
    spec.result_size = result_size;
    rc = start_async(pool, &spec, HPOOL__CALL_MAP, async);
    if (rc != 0) {
        hpool_source_free(source);
        free(copy);
        return rc;
    }
    /* The call owns them, and frees them with itself: whoever releases it
     * last, no thread can still read them, and no free has to wait. */
    pthread_mutex_lock(&pool->lock);
    (*async)->call->owned_input = copy;
    (*async)->call->owned_source = source;
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

int hpool_apply(hpool_pool *pool, int function, const void *input, size_t input_size, void *result,
                size_t result_size)
{
    if (hpool__thread_owned_by(pool))
        return HPOOL_EDEADLK;
    hpool_async *async;
    int rc = hpool_apply_async(pool, function, input, input_size, result, result_size, &async);
    if (rc != 0)
        return rc;
    rc = hpool_async_get(async, -1, NULL);
    hpool_async_free(async);
    return rc;
}

int hpool_async_wait(hpool_async *async, double timeout)
{
    if (async == NULL)
        return HPOOL_EINVAL;
    pthread_mutex_lock(&async->pool->lock);
    int rc = wait_complete(async->pool, async->call, timeout);
    pthread_mutex_unlock(&async->pool->lock);
    return rc;
}

int hpool_async_ready(const hpool_async *async)
{
    if (async == NULL)
        return 0;
    pthread_mutex_lock(&async->pool->lock);
    int ready = async->call->complete;
    pthread_mutex_unlock(&async->pool->lock);
    return ready;
}

int hpool_async_successful(const hpool_async *async)
{
    if (async == NULL)
        return 0;
    pthread_mutex_lock(&async->pool->lock);
    int successful = async->call->complete && async->call->report.status == 0;
    pthread_mutex_unlock(&async->pool->lock);
    return successful;
}

int hpool_async_get(hpool_async *async, double timeout, hpool_report *report)
{
    if (async == NULL)
        return HPOOL_EINVAL;
    pthread_mutex_lock(&async->pool->lock);
    int rc = wait_complete(async->pool, async->call, timeout);
    if (rc == 0) {
        rc = async->call->report.status;
        if (report != NULL)
            *report = async->call->report;
    }
    pthread_mutex_unlock(&async->pool->lock);
    return rc;
}

void hpool_async_free(hpool_async *async)
{
    if (async == NULL)
        return;
    hpool_pool *pool = async->pool;
    pthread_mutex_lock(&pool->lock);
    hpool__call_release(pool, async->call);
    pthread_mutex_unlock(&pool->lock);
    free(async);
}

/* ---- Streams --------------------------------------------------------- */

static int start_stream(hpool_pool *pool, const hpool_call *spec, enum hpool__call_kind kind, hpool_iter **out)
{
    if (out == NULL)
        return HPOOL_EINVAL;
    *out = NULL;
    hpool_iter *iter = hpool__calloc(1, sizeof *iter);
    if (iter == NULL)
        return HPOOL_ENOMEM;
    int rc = submit(pool, spec, kind, &iter->call);
    if (rc != 0) {
        free(iter);
        return rc;
    }
    iter->pool = pool;
    *out = iter;
    return 0;
}

int hpool_imap(hpool_pool *pool, const hpool_call *call, hpool_iter **iter)
{
    return start_stream(pool, call, HPOOL__CALL_IMAP, iter);
}

int hpool_imap_unordered(hpool_pool *pool, const hpool_call *call, hpool_iter **iter)
{
    return start_stream(pool, call, HPOOL__CALL_IMAP_UNORDERED, iter);
}

/* Gives the batch read so far back to the window. With pool->lock held. */
static void release_reading(hpool_pool *pool, hpool__call_state *call)
{
    if (call->reading == NULL)
        return;
    hpool__release_chunks(call, call->reading->chunk_count);
    hpool__batch_free(call->reading);
    call->reading = NULL;
    pool->engine_has_news = true;
    pthread_cond_signal(&pool->engine_wake);
}

static bool item_failed(const hpool__batch *batch, uint64_t index, int *code)
{
    for (size_t f = 0; f < batch->failure_count; f++)
        if (batch->failures[f].index == index) {
            *code = (int)batch->failures[f].code;
            return true;
        }
    return false;
}

int hpool_iter_next(hpool_iter *iter, hpool_result *result, double timeout)
{
    if (iter == NULL || result == NULL)
        return HPOOL_EINVAL;
    hpool_pool *pool = iter->pool;
    hpool__call_state *call = iter->call;
    if (timeout != 0 && hpool__thread_owned_by(pool))
        return HPOOL_EDEADLK;
    pthread_mutex_lock(&pool->lock);
    if (call->reading != NULL && call->reading_position >= call->reading->count)
        release_reading(pool, call);
    hpool__deadline deadline = hpool__deadline_in_seconds(timeout);
    while (call->reading == NULL) {
        if (call->ready.head != NULL) {
            HPOOL__QUEUE_POP(&call->ready, call->reading);
            call->reading->next = NULL;
            call->reading_position = 0;
            if (call->reading->count == 0)
                release_reading(pool, call);
            continue;
        }
        if (call->complete) {
            int status = call->report.status;
            pthread_mutex_unlock(&pool->lock);
            /* a stream ends with EOF; its failures are in the report */
            return status == 0 || status == HPOOL_EFAILED || status == HPOOL_ECANCELED ? HPOOL_EOF : status;
        }
        if (!hpool__cond_wait_until(&pool->changed, &pool->lock, &deadline) && call->ready.head == NULL
            && !call->complete) {
            pthread_mutex_unlock(&pool->lock);
            return HPOOL_ETIMEDOUT;
        }
    }
    hpool__batch *batch = call->reading;
    uint64_t i = call->reading_position++;
    result->index = batch->first + i;
    result->status = 0;
    if (batch->failure_count > 0)
        item_failed(batch, result->index, &result->status);
    if (batch->whole_failed != 0) {
        result->status = batch->whole_failed;
        result->data = NULL;
        result->size = 0;
    } else if (batch->mode == HPOOL__FIXED_RESULT) {
        result->data = batch->results + i * batch->result_size;
        result->size = batch->result_size;
    } else {
        result->data = batch->record_data + batch->record_offsets[i];
        result->size = batch->record_offsets[i + 1] - batch->record_offsets[i];
    }
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

int hpool_iter_report(const hpool_iter *iter, hpool_report *report)
{
    if (iter == NULL)
        return HPOOL_EINVAL;
    pthread_mutex_lock(&iter->pool->lock);
    int rc = iter->call->complete ? iter->call->report.status : HPOOL_EINVAL;
    if (iter->call->complete && report != NULL)
        *report = iter->call->report;
    pthread_mutex_unlock(&iter->pool->lock);
    return rc;
}

void hpool_iter_free(hpool_iter *iter)
{
    if (iter == NULL)
        return;
    hpool_pool *pool = iter->pool;
    hpool__call_state *call = iter->call;
    pthread_mutex_lock(&pool->lock);
    if (!call->complete) {
        /* The caller may free the source as soon as this returns, so wait
         * until no rank can touch it any more. */
        call->abandoned = true;
        hpool__cancel_call(pool, call);
        release_reading(pool, call);
        for (hpool__batch *batch = call->ready.head, *next; batch != NULL; batch = next) {
            next = batch->next;
            hpool__release_chunks(call, batch->chunk_count);
            hpool__batch_free(batch);
        }
        call->ready.head = call->ready.tail = NULL;
        for (hpool__batch *batch = call->waiting, *next; batch != NULL; batch = next) {
            next = batch->next;
            hpool__release_chunks(call, batch->chunk_count);
            hpool__batch_free(batch);
        }
        call->waiting = NULL;
        wait_complete(pool, call, -1);
    }
    hpool__call_release(pool, call);
    pthread_mutex_unlock(&pool->lock);
    free(iter);
}
