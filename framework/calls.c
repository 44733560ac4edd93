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

static const char *call_name(enum hpool__call_kind kind)
{
    switch (kind) {
    case HPOOL__CALL_MAP:
        return "hpool_map";
    case HPOOL__CALL_REDUCE:
        return "hpool_map_reduce";
    case HPOOL__CALL_IMAP:
        return "hpool_imap";
    case HPOOL__CALL_IMAP_UNORDERED:
        return "hpool_imap_unordered";
    case HPOOL__CALL_KEYED:
        return "hpool_map_reduce_keyed";
    }
    return "a call";
}

/* The largest fixed-size result (1 TiB: far past any machine's memory for
 * one item, and far enough below 2^64 that sums of such sizes with their
 * messages' headers cannot wrap), and the most bytes one chunk of them may
 * hold. */
#define MAX_RESULT_SIZE ((size_t)1 << 40)
#define MAX_CHUNK_RESULT_BYTES ((uint64_t)1 << 62)

/* Whether the call's results have sizes that can be held: a product of
 * sizes that wrapped would size a buffer too small, which the results then
 * overrun (on another rank, too). */
static int check_result_bytes(const hpool_call *spec, const char *name, enum hpool__result_mode mode,
                              size_t result_size)
{
    if ((mode == HPOOL__FIXED_RESULT || mode == HPOOL__REDUCE) && result_size > MAX_RESULT_SIZE)
        return hpool__fail(HPOOL_EINVAL, "%s: a result of %zu bytes: fixed-size results are at most %zu bytes "
                                         "(1 TiB)", name, result_size, MAX_RESULT_SIZE);
    uint64_t count = spec->source->count;
    if (mode == HPOOL__FIXED_RESULT && spec->results != NULL && count != UINT64_MAX && count > SIZE_MAX / result_size)
        return hpool__fail(HPOOL_EINVAL, "%s: %llu results of %zu bytes are more bytes than memory has: "
                                         "call.results cannot be that array", name, (unsigned long long)count,
                           result_size);
    uint64_t chunk = spec->chunksize < count ? spec->chunksize : count;
    if (mode == HPOOL__FIXED_RESULT && chunk > MAX_CHUNK_RESULT_BYTES / result_size)
        return hpool__fail(HPOOL_EINVAL, "%s: call.chunksize %llu of results of %zu bytes: more bytes than a chunk "
                                         "can hold; give a smaller chunksize, or 0", name, (unsigned long long)chunk,
                           result_size);
    return 0;
}

/* Checks the call against the pool and its kind; sets mode and result size. */
static int check_call(const hpool_pool *pool, const hpool_call *spec, enum hpool__call_kind kind, const char *name,
                      enum hpool__result_mode *mode, size_t *result_size)
{
    if (spec->source == NULL)
        return hpool__fail(HPOOL_EINVAL, "%s: call.source is NULL: make one with hpool_source_range, _array, "
                                         "_records, _columns or _producer", name);
    if (spec->function < 0 || (size_t)spec->function >= pool->function_count)
        return hpool__fail(HPOOL_EINVAL, "%s: call.function is %d, and the pool has functions 0 to %d", name,
                           spec->function, (int)pool->function_count - 1);
    if (spec->argument == NULL && spec->argument_size > 0)
        return hpool__fail(HPOOL_EINVAL, "%s: call.argument is NULL but call.argument_size is %zu", name,
                           spec->argument_size);
    bool producer = spec->source->is_producer;
    switch (kind) {
    case HPOOL__CALL_MAP:
        if (spec->results != NULL && spec->records != NULL)
            return hpool__fail(HPOOL_EINVAL, "%s: call.results and call.records are both set: fixed-size "
                                             "results go to one, variable-size to the other", name);
        if (spec->records != NULL) {
            *mode = HPOOL__RECORD_RESULT;
            *result_size = 0;
        } else if (spec->results != NULL) {
            /* a producer's length is unknown, so no array can be sized */
            if (spec->result_size == 0)
                return hpool__fail(HPOOL_EINVAL, "%s: call.results is set but call.result_size is 0", name);
            if (producer)
                return hpool__fail(HPOOL_EINVAL, "%s: call.results cannot hold the results of a producer "
                                                 "source, whose length is unknown: use call.records or hpool_imap",
                                   name);
            *mode = HPOOL__FIXED_RESULT;
            *result_size = spec->result_size;
        } else if (spec->result_size > 0) {
            return hpool__fail(HPOOL_EINVAL, "%s: call.result_size is %zu but call.results is NULL: give an array "
                                             "for the results, or result_size 0 for none", name, spec->result_size);
        } else {
            *mode = HPOOL__NO_RESULT;
            *result_size = 0;
        }
        return 0;
    case HPOOL__CALL_REDUCE: {
        if (spec->reducer < 0 || (size_t)spec->reducer >= pool->reducer_count)
            return hpool__fail(HPOOL_EINVAL, "%s: call.reducer is %d, and the pool has reducers 0 to %d", name,
                               spec->reducer, (int)pool->reducer_count - 1);
        const hpool_reducer *reducer = &pool->reducers[spec->reducer];
        if (spec->reduction == NULL)
            return hpool__fail(HPOOL_EINVAL, "%s: call.reduction is NULL: give %zu bytes for the result of \"%s\"",
                               name, reducer->value_size, reducer->name);
        /* Each item's value is the reducer's: any other size would be
         * read or written past. 0 means "the reducer's". */
        if (spec->result_size != 0 && spec->result_size != reducer->value_size)
            return hpool__fail(HPOOL_EINVAL, "%s: call.result_size is %zu but the reducer \"%s\" has value_size %zu: "
                                             "give 0 or %zu", name, spec->result_size, reducer->name,
                               reducer->value_size, reducer->value_size);
        *mode = HPOOL__REDUCE;
        *result_size = reducer->value_size;
        return 0;
    }
    case HPOOL__CALL_KEYED:
        if (spec->reducer < 0 || (size_t)spec->reducer >= pool->keyed_reducer_count)
            return hpool__fail(HPOOL_EINVAL, "%s: call.reducer is %d, and the pool has keyed reducers 0 to %d", name,
                               spec->reducer, (int)pool->keyed_reducer_count - 1);
        if (spec->pairs == NULL)
            return hpool__fail(HPOOL_EINVAL, "%s: call.pairs is NULL: give a place for the output", name);
        *mode = HPOOL__KEYED;
        *result_size = 0;
        return 0;
    case HPOOL__CALL_IMAP:
    case HPOOL__CALL_IMAP_UNORDERED:
        *mode = spec->result_size > 0 ? HPOOL__FIXED_RESULT : HPOOL__RECORD_RESULT;
        *result_size = spec->result_size;
        return 0;
    }
    return hpool__fail(HPOOL_EINVAL, "unknown call kind %d", (int)kind);
}

/* The checks every call's entry makes, in this order, with details. A
 * call that waits for itself is refused on the pool's own threads; one
 * that only starts (async, a stream) is allowed there, as hpool.h says. */
static int check_entry(const hpool_pool *pool, const hpool_call *call, const char *name, bool waits)
{
    if (pool == NULL)
        return hpool__fail(HPOOL_EINVAL, "%s: pool is NULL", name);
    if (call == NULL)
        return hpool__fail(HPOOL_EINVAL, "%s: call is NULL", name);
    if (waits && hpool__thread_owned_by(pool))
        return hpool__fail(HPOOL_EDEADLK,
                           "%s was called from a map function or callback of the same pool, which would wait for "
                           "itself: start it with an _async call or hpool_imap instead, or call it from the "
                           "program's own thread", name);
    if (!hpool_pool_is_root(pool))
        return hpool__fail(HPOOL_ENOTROOT, "%s was called on rank %d; only the root, rank %d, makes calls, while the "
                                           "other ranks serve them in hpool_pool_join", name, pool->transport.rank,
                           pool->root);
    return 0;
}

/* Queues a call for the engine. The returned call holds one reference for
 * the caller's handle. name: the function the caller called, for details. */
static int submit(hpool_pool *pool, const hpool_call *caller_spec, enum hpool__call_kind kind, const char *name,
                  bool waits, hpool__call_state **out)
{
    hpool__detail_clear();
    int rc = check_entry(pool, caller_spec, name, waits);
    if (rc != 0)
        return rc;
    hpool_call accepted = HPOOL_CALL_INIT;
    rc = hpool__accept_struct(&accepted, sizeof accepted, HPOOL__CALL_SIZE_0_1, caller_spec, caller_spec->struct_size,
                              "call", "HPOOL_CALL_INIT");
    if (rc != 0)
        return rc;
    const hpool_call *spec = &accepted;
    enum hpool__result_mode mode = HPOOL__NO_RESULT;
    size_t result_size = 0;
    rc = check_call(pool, spec, kind, name, &mode, &result_size);
    if (rc == 0)
        rc = check_result_bytes(spec, name, mode, result_size);
    if (rc != 0)
        return rc;
    hpool__call_state *call = hpool__calloc(1, sizeof *call);
    if (call == NULL)
        return hpool__fail(HPOOL_ENOMEM, "%s: no memory for the call's state", name);
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
    if (spec->argument_size > 0) {
        /* the caller may reuse its argument as soon as the call has started */
        call->argument = hpool__malloc(spec->argument_size);
        if (call->argument == NULL) {
            free(call);
            return hpool__fail(HPOOL_ENOMEM, "%s: no memory for a copy of the %zu-byte call.argument",
                               name, spec->argument_size);
        }
        memcpy(call->argument, spec->argument, spec->argument_size);
    }
    call->spec.argument = call->argument;
    if (mode == HPOOL__REDUCE) {
        const hpool_reducer *reducer = &pool->reducers[spec->reducer];
        call->reduction = hpool__malloc(reducer->value_size);
        if (call->reduction == NULL) {
            free(call->argument);
            free(call);
            return hpool__fail(HPOOL_ENOMEM, "%s: no memory for the reduction", name);
        }
        memcpy(call->reduction, reducer->identity, reducer->value_size);
    }
    if (spec->journal != NULL && (rc = hpool__journal_open(pool, call, name)) != 0) {
        free(call->reduction);
        free(call->argument);
        free(call);
        return rc;
    }
    pthread_mutex_lock(&pool->lock);
    bool stopped = pool->stop_applied != 0 || atomic_load(&pool->stop_asked) != 0;
    if (pool->closed || stopped) {
        pthread_mutex_unlock(&pool->lock);
        hpool__journal_close(call->journal, NULL);
        free(call->reduction);
        free(call->argument);
        free(call);
        if (stopped)
            return hpool__fail(HPOOL_ESTOPPED, "%s: the pool was stopped (hpool_pool_stop, or a signal): no more "
                                               "calls", name);
        return hpool__fail(HPOOL_ECLOSED, "%s: the pool is closed (hpool_pool_close, _terminate or _join was "
                                          "called): no more calls", name);
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

/* The call's status, with its detail set on this thread: the engine's
 * words when it failed the call, else what the report says. With
 * pool->lock held, after the call completed. */
static int take_status(const hpool__call_state *call)
{
    int status = call->report.status;
    if (status == 0) {
        hpool__detail_clear();
    } else if (call->detail[0] != '\0') {
        hpool__detail_restore(status, call->detail);
    } else {
        char text[384];
        hpool_report_format(&call->report, text, sizeof text);
        hpool__detail_restore(status, text);
    }
    return status;
}

/* Waits with pool->lock held until call completes or the timeout passes. */
static int wait_complete(hpool_pool *pool, hpool__call_state *call, double timeout)
{
    if (!call->complete && timeout != 0 && hpool__thread_owned_by(pool))
        return hpool__fail(HPOOL_EDEADLK, "a map function or callback of the pool waited on a call of that pool, "
                                          "which would wait for itself: wait from the program's own thread");
    hpool__deadline deadline = hpool__deadline_in_seconds(timeout);
    while (!call->complete)
        if (!hpool__cond_wait_until(&pool->changed, &pool->lock, &deadline)) {
            if (call->complete)
                return 0;
            if (timeout > 0) /* a poll (timeout 0) is not a wait given up */
                call->wait_timed_out = true;
            return hpool__fail(HPOOL_ETIMEDOUT, "the call was not done after %g s: %llu of its items are done",
                               timeout, (unsigned long long)call->done);
        }
    return 0;
}

static int run_blocking(hpool_pool *pool, const hpool_call *spec, enum hpool__call_kind kind, const char *name,
                        hpool_report *report)
{
    hpool__call_state *call;
    int rc = submit(pool, spec, kind, name, true, &call);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&pool->lock);
    wait_complete(pool, call, -1);
    if (report != NULL)
        *report = call->report;
    rc = take_status(call);
    hpool__call_release(pool, call);
    pthread_mutex_unlock(&pool->lock);
    return rc;
}

int hpool_map(hpool_pool *pool, const hpool_call *call, hpool_report *report)
{
    return run_blocking(pool, call, HPOOL__CALL_MAP, "hpool_map", report);
}

/* starmap maps over zipped columns, and nothing else. */
static int check_starmap(const hpool_call *call, const char *name)
{
    hpool__detail_clear();
    if (call != NULL && call->source != NULL && call->source->kind != HPOOL__COLUMNS)
        return hpool__fail(HPOOL_EINVAL, "%s: call.source is not a columns source (hpool_source_columns)", name);
    return 0;
}

int hpool_starmap(hpool_pool *pool, const hpool_call *call, hpool_report *report)
{
    int rc = check_starmap(call, "hpool_starmap");
    if (rc != 0)
        return rc;
    return run_blocking(pool, call, HPOOL__CALL_MAP, "hpool_starmap", report);
}

int hpool_map_reduce(hpool_pool *pool, const hpool_call *call, hpool_report *report)
{
    return run_blocking(pool, call, HPOOL__CALL_REDUCE, "hpool_map_reduce", report);
}

int hpool_map_reduce_keyed(hpool_pool *pool, const hpool_call *call, hpool_report *report)
{
    if (call != NULL && call->pairs != NULL)
        *call->pairs = NULL;
    return run_blocking(pool, call, HPOOL__CALL_KEYED, "hpool_map_reduce_keyed", report);
}

/* ---- Asynchronous calls --------------------------------------------- */

static int start_async(hpool_pool *pool, const hpool_call *spec, enum hpool__call_kind kind, const char *name,
                       hpool_async **out)
{
    if (out == NULL)
        return hpool__fail(HPOOL_EINVAL, "%s: async is NULL", name);
    *out = NULL;
    hpool_async *async = hpool__calloc(1, sizeof *async);
    if (async == NULL)
        return hpool__fail(HPOOL_ENOMEM, "%s: no memory for a handle", name);
    int rc = submit(pool, spec, kind, name, false, &async->call);
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
    return start_async(pool, call, HPOOL__CALL_MAP, "hpool_map_async", async);
}

int hpool_starmap_async(hpool_pool *pool, const hpool_call *call, hpool_async **async)
{
    int rc = check_starmap(call, "hpool_starmap_async");
    if (rc != 0)
        return rc;
    return start_async(pool, call, HPOOL__CALL_MAP, "hpool_starmap_async", async);
}

int hpool_map_reduce_async(hpool_pool *pool, const hpool_call *call, hpool_async **async)
{
    return start_async(pool, call, HPOOL__CALL_REDUCE, "hpool_map_reduce_async", async);
}

int hpool_apply_async(hpool_pool *pool, int function, const void *input, size_t input_size, void *result,
                      size_t result_size, hpool_async **async)
{
    hpool__detail_clear();
    if (async == NULL)
        return hpool__fail(HPOOL_EINVAL, "hpool_apply_async: async is NULL");
    *async = NULL;
    if (input == NULL && input_size > 0)
        return hpool__fail(HPOOL_EINVAL, "hpool_apply: input is NULL but input_size is %zu", input_size);
    if ((result == NULL) != (result_size == 0))
        return hpool__fail(HPOOL_EINVAL, "hpool_apply: result is %s but result_size is %zu: give both or neither",
                           result == NULL ? "NULL" : "set", result_size);
    /* The input travels as one record, so it is copied: the caller may
     * reuse its buffer at once. */
    void *copy = hpool__malloc(input_size + 1);
    if (copy == NULL)
        return hpool__fail(HPOOL_ENOMEM, "hpool_apply: no memory for a copy of the %zu-byte input", input_size);
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
    rc = start_async(pool, &spec, HPOOL__CALL_MAP, "hpool_apply", async);
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
    if (pool != NULL && hpool__thread_owned_by(pool))
        return hpool__fail(HPOOL_EDEADLK, "hpool_apply was called from a map function or callback of the same "
                                          "pool, which would wait for itself: use hpool_apply_async");
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
    hpool__detail_clear();
    if (async == NULL)
        return hpool__fail(HPOOL_EINVAL, "hpool_async_wait: async is NULL");
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
    hpool__detail_clear();
    if (async == NULL)
        return hpool__fail(HPOOL_EINVAL, "hpool_async_get: async is NULL");
    pthread_mutex_lock(&async->pool->lock);
    int rc = wait_complete(async->pool, async->call, timeout);
    if (rc == 0) {
        rc = take_status(async->call);
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
    const char *name = call_name(kind);
    if (out == NULL)
        return hpool__fail(HPOOL_EINVAL, "%s: iter is NULL", name);
    *out = NULL;
    hpool_iter *iter = hpool__calloc(1, sizeof *iter);
    if (iter == NULL)
        return hpool__fail(HPOOL_ENOMEM, "%s: no memory for a stream", name);
    int rc = submit(pool, spec, kind, name, false, &iter->call);
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

int hpool_iter_next(hpool_iter *iter, hpool_result *result, double timeout)
{
    hpool__detail_clear();
    if (iter == NULL || result == NULL)
        return hpool__fail(HPOOL_EINVAL, "hpool_iter_next: %s is NULL", iter == NULL ? "iter" : "result");
    hpool_pool *pool = iter->pool;
    hpool__call_state *call = iter->call;
    if (timeout != 0 && hpool__thread_owned_by(pool))
        return hpool__fail(HPOOL_EDEADLK, "hpool_iter_next with a timeout was called from a map function or "
                                          "callback of the same pool, which would wait for itself: pass timeout 0");
    pthread_mutex_lock(&pool->lock);
    if (call->reading != NULL && call->reading_position >= call->reading->count)
        release_reading(pool, call);
    hpool__deadline deadline = hpool__deadline_in_seconds(timeout);
    while (call->reading == NULL) {
        if (call->ready.head != NULL) {
            HPOOL__QUEUE_POP(&call->ready, call->reading);
            call->reading->next = NULL;
            call->reading_position = 0;
            call->last_read_ns = hpool__now_ns();
            if (call->reading->count == 0)
                release_reading(pool, call);
            continue;
        }
        if (call->complete) {
            int status = take_status(call);
            pthread_mutex_unlock(&pool->lock);
            /* a stream ends with EOF; its failures are in the report */
            return status == 0 || status == HPOOL_EFAILED || status == HPOOL_ECANCELED || status == HPOOL_ESTOPPED
                       ? HPOOL_EOF
                       : status;
        }
        if (!hpool__cond_wait_until(&pool->changed, &pool->lock, &deadline) && call->ready.head == NULL
            && !call->complete) {
            if (timeout > 0) /* a poll (timeout 0) is not a wait given up */
                call->wait_timed_out = true;
            pthread_mutex_unlock(&pool->lock);
            return hpool__fail(HPOOL_ETIMEDOUT, "no result within %g s", timeout);
        }
    }
    hpool__batch *batch = call->reading;
    uint64_t i = call->reading_position++;
    memset(result, 0, sizeof *result); /* its reserved fields too */
    result->index = batch->first + i;
    if (batch->failure_count > 0) /* sorted when collected */
        result->status = (int)hpool__failures_find(batch->failures, batch->failure_count, result->index);
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
    hpool__detail_clear();
    if (iter == NULL)
        return hpool__fail(HPOOL_EINVAL, "hpool_iter_report: iter is NULL");
    pthread_mutex_lock(&iter->pool->lock);
    int rc = iter->call->complete ? take_status(iter->call)
                                  : hpool__fail(HPOOL_EINVAL, "hpool_iter_report: the stream has not ended: read "
                                                              "it until hpool_iter_next returns HPOOL_EOF");
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
