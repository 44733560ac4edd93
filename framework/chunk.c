/* chunk.c: running one chunk of a batch on a team thread: its span, its function, and what it hands back to the batch. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* One team thread's state for each function: made by init on first use. */
typedef struct function_state {
    void *state;
    int init_code; /* init's return, once run */
    bool initialized;
} function_state;

struct hpool__thread_state {
    function_state *functions;
    /* Room for a chunk's accumulator and an item's value, each 16-byte
     * aligned for the reducer's struct. */
    unsigned char *scratch;
};

/* Keeps the item value after the chunk accumulator suitably aligned. */
static size_t aligned_value_size(const hpool_reducer *reducer)
{
    return reducer ? hpool__round_up(reducer->value_size, 16) : 0;
}

/* Items from .. to - 1 of the span, for execute_items, whose task it is
 * (the crash report reads it). */
static inline __attribute__((always_inline)) void run_items(const hpool_function *function, hpool_span *span,
                                                           hpool__chunk_context *chunk, const hpool_reducer *reducer,
                                                           unsigned char *value, hpool_task *task, const void **args,
                                                           size_t arg_count, uint64_t from, uint64_t to)
{
    const hpool__input *input = &chunk->batch->input;
    size_t result_size = span->result_size;
    int64_t range_value;
    for (uint64_t i = from; i < to; i++) {
        task->index = span->first + i;
        hpool__input_get(input, chunk->offset + i, &task->input, &task->input_size, &range_value);
        for (size_t j = 0, at = 0; j < arg_count; at += input->column_sizes[j], j++)
            args[j] = (const unsigned char *)task->input + at;
        if (reducer != NULL) {
            memcpy(value, reducer->identity, reducer->value_size);
            task->result = value;
        } else if (span->results != NULL) {
            task->result = (unsigned char *)span->results + i * result_size;
        }
        int rc = function->map(task, function->user);
        if (rc != 0)
            hpool__chunk_fail(chunk, task->index, 1, rc);
        else if (reducer != NULL)
            reducer->combine(span->accumulator, value, reducer->user);
        if (chunk->output != NULL)
            hpool__close_records_before(chunk->output, i + 1);
    }
}

/* Runs an item function over the span, item by item. */
static int execute_items(const hpool_function *function, hpool_span *span, const hpool_reducer *reducer,
                     unsigned char *value)
{
    hpool__chunk_context *chunk = span->internal;
    const hpool__input *input = &chunk->batch->input;
    size_t result_size = span->result_size;
    hpool_task task = {.state = span->state,
                       .span = span,
                       .result_size = result_size,
                       .emitter = span->emitter,
                       .argument = span->argument,
                       .argument_size = span->argument_size};
    const void *args[16];
    size_t arg_count = input->kind == HPOOL__COLUMNS ? input->column_count : 0;
    if (arg_count > 16)
        arg_count = 0; /* wider tuples read their row through task.input */
    task.args = arg_count ? args : NULL;
    task.arg_count = arg_count;
    /* The crash report reads the item from task itself, on this thread: no
     * store per item (a store and a reload per item cost tiny items 16%). */
    hpool__crash_set_task(&task);
    /* The items, all of them here or claimed a few at a time from the
     * chunk's share (share.c). */
    uint64_t from = 0, to = span->count;
    bool claiming = chunk->share != NULL;
    if (claiming && chunk->owns_share)
        hpool__share_started(chunk->team, chunk->share); /* after init: helpers never run a chunk whose init failed */
    for (;;) {
        if (claiming && !hpool__share_claim(chunk->team, chunk->share, &from, &to))
            break;
        run_items(function, span, chunk, reducer, value, &task, args, arg_count, from, to);
        chunk->ran += to - from;
        if (!claiming)
            break;
    }
    hpool__crash_set_task(NULL);
    return 0;
}

/* Deterministic reduce: each block of the chunk folds, in input order, into
 * its own partial in the batch, so no partial depends on who ran what. */
static int execute_blocks(const hpool_function *function, hpool_span *span, hpool__chunk_context *chunk,
                      const hpool_reducer *reducer, unsigned char *value)
{
    hpool__batch *batch = chunk->batch;
    uint64_t block = batch->block_size, chunk_offset = chunk->offset;
    hpool_span whole = *span;
    for (uint64_t at = 0; at < whole.count; at += block) {
        hpool_span part = whole;
        part.first = whole.first + at;
        part.count = whole.count - at < block ? whole.count - at : block;
        part.range_first = whole.range_first + (int64_t)at;
        if (whole.items != NULL)
            part.items = (const unsigned char *)whole.items + at * whole.item_size;
        part.accumulator = batch->accumulator + (chunk_offset + at) / block * reducer->value_size;
        chunk->offset = chunk_offset + at;
        int code = function->span != NULL ? function->span(&part, function->user)
                                          : execute_items(function, &part, reducer, value);
        if (code != 0) {
            /* the block failed as a whole: its partial counts for nothing */
            memcpy(part.accumulator, reducer->identity, reducer->value_size);
            hpool__chunk_fail(chunk, part.first, part.count, code);
        }
    }
    chunk->offset = chunk_offset;
    return chunk->error;
}

/* Fails every item of chunk c, which could not run. */
static void fail_chunk_items(hpool__batch *batch, uint64_t c, int code)
{
    uint64_t count = hpool__chunk_items(batch, c);
    pthread_mutex_lock(&batch->lock);
    if (count > 0)
        hpool__batch_add_failures(batch, batch->first + c * batch->chunksize, count, code);
    pthread_mutex_unlock(&batch->lock);
}

/* The span of chunk c of batch, as the map function sees it; 0 or
 * HPOOL_ENOMEM for its record output. */
static int open_span(hpool__batch *batch, uint64_t c, hpool__chunk_context *chunk, hpool_span *span)
{
    uint64_t offset = c * batch->chunksize, count = hpool__chunk_items(batch, c);
    *chunk = (hpool__chunk_context){.batch = batch, .offset = offset};
    *span = (hpool_span){
        .first = batch->first + offset,
        .count = count,
        .range_first = batch->input.range_first + (int64_t)offset,
        .item_size = batch->input.item_size,
        .result_size = batch->result_size,
        .internal = chunk,
        .argument = batch->argument,
        .argument_size = batch->argument_size,
    };
    if (batch->input.kind == HPOOL__FIXED || batch->input.kind == HPOOL__COLUMNS)
        span->items = batch->input.items + offset * batch->input.item_size;
    if (batch->mode == HPOOL__FIXED_RESULT)
        span->results = batch->results + offset * batch->result_size;
    if (batch->mode == HPOOL__RECORD_RESULT) {
        chunk->output = &batch->chunk_outputs[c];
        chunk->output->ends = hpool__calloc(count ? count : 1, sizeof *chunk->output->ends);
        if (chunk->output->ends == NULL)
            return HPOOL_ENOMEM;
    }
    return 0;
}

/* Runs the batch's function over the span: its thread state made on first
 * use, then span by span, item by item, or block by block. */
static int execute_function(const hpool__team *team, hpool__batch *batch, hpool_span *span, hpool__chunk_context *chunk,
                        const hpool_reducer *reducer, hpool__thread_state *thread)
{
    const hpool_function *function = &team->functions[batch->function];
    function_state *state = &thread->functions[batch->function];
    hpool__worker_status *status = chunk->status;
    if (status != NULL)
        atomic_store_explicit(&status->function, batch->function, memory_order_relaxed);
    if (!state->initialized) {
        state->initialized = true;
        if (status != NULL)
            atomic_store_explicit(&status->kind, HPOOL__WORK_INIT, memory_order_relaxed);
        state->init_code = function->init ? function->init(&state->state, function->user) : 0;
    }
    if (state->init_code != 0)
        return state->init_code;
    span->state = state->state;
    unsigned char *value = thread->scratch + aligned_value_size(reducer);
    if (status != NULL) {
        /* a span function's work is its span; an item function's, each item */
        atomic_store_explicit(&status->item, span->first, memory_order_relaxed);
        atomic_store_explicit(&status->count, span->count, memory_order_relaxed);
        atomic_store_explicit(&status->sequence, status->sequence + 1, memory_order_relaxed);
        atomic_store_explicit(&status->kind, function->span != NULL ? HPOOL__WORK_SPAN : HPOOL__WORK_MAP,
                              memory_order_relaxed);
    }
    int code;
    if (batch->block_size > 0)
        code = execute_blocks(function, span, chunk, reducer, value);
    else
        code = function->span != NULL ? function->span(span, function->user)
                                      : execute_items(function, span, reducer, value);
    if (status != NULL)
        atomic_store_explicit(&status->kind, HPOOL__WORK_IDLE, memory_order_relaxed);
    if (batch->block_size > 0)
        return code;
    return chunk->error != 0 ? chunk->error : code;
}

/* Merges what the chunk found into its batch: its failures (all of its
 * items, if it failed as a whole) and a reduce's partial. */
static void merge_into_batch(hpool__batch *batch, const hpool_span *span, hpool__chunk_context *chunk,
                             const hpool_reducer *reducer, const unsigned char *partial, int code)
{
    bool folds_into_batch = reducer != NULL && batch->block_size == 0;
    if (code == 0 && chunk->failure_count == 0 && !folds_into_batch)
        return; /* nothing to merge */
    pthread_mutex_lock(&batch->lock);
    if (code != 0) {
        /* the whole chunk failed: its own per-item failures are subsumed */
        hpool__batch_add_failures(batch, span->first, span->count, code);
    } else {
        for (size_t f = 0; f < chunk->failure_count; f++)
            hpool__batch_add_failures(batch, chunk->failures[f].index, chunk->failures[f].count,
                                      chunk->failures[f].code);
        if (folds_into_batch)
            reducer->combine(batch->accumulator, partial, reducer->user);
    }
    pthread_mutex_unlock(&batch->lock);
}

/* A thread's run of chunk c of batch, its own (share: NULL, or its
 * share to open) or another's (helping: share joined), from its span to
 * what it hands the batch. */
static void run_chunk(hpool__team *team, hpool__batch *batch, uint64_t c, int thread_index, hpool__thread_state *thread,
                      hpool__chunk_share *share, bool helping)
{
    hpool__chunk_context chunk;
    hpool_span span;
    int code = open_span(batch, c, &chunk, &span);
    chunk.team = team;
    chunk.share = share;
    chunk.owns_share = share != NULL && !helping;
    if (team->statuses != NULL && thread_index >= 0 && thread_index < team->thread_count)
        chunk.status = &team->statuses[thread_index];
    if (batch->mode == HPOOL__KEYED) /* pairs go into this thread's table of the rank's store */
        span.emitter = hpool__keyed_emitter(batch->store, thread_index);
    const hpool_reducer *reducer = NULL;
    if (batch->mode == HPOOL__REDUCE) {
        reducer = &team->reducers[batch->reducer];
        span.accumulator = thread->scratch;
        memcpy(thread->scratch, reducer->identity, reducer->value_size);
    }

    /* The first chunks of a batch are timed, then one in eight. */
    bool timed = c < 4 || c % 8 == 0;
    uint64_t started = timed ? hpool__now_ns() : 0;
    if (code == 0 && !helping && atomic_load_explicit(&batch->canceled, memory_order_relaxed))
        code = HPOOL_ECANCELED;
    if (code == 0)
        code = execute_function(team, batch, &span, &chunk, reducer, thread);
    uint64_t ran = share != NULL ? chunk.ran : span.count;
    if (batch->mode == HPOOL__KEYED)
        code = hpool__keyed_chunk_done(batch->store, thread_index, code);
    if (chunk.output != NULL && chunk.output->ends != NULL)
        hpool__close_records_before(chunk.output, span.count);
    if (timed && ran > 0) {
        atomic_fetch_add_explicit(&batch->timed_ns, hpool__now_ns() - started, memory_order_relaxed);
        atomic_fetch_add_explicit(&batch->timed_items, ran, memory_order_relaxed);
    }
    /* A helper whose own init failed claimed nothing: the chunk's items are
     * others', and not failed by it. */
    if (!helping || ran > 0)
        merge_into_batch(batch, &span, &chunk, reducer, thread->scratch, code);
    free(chunk.failures);
}

void hpool__execute_chunk(hpool__team *team, hpool__batch *batch, uint64_t c, int thread_index,
                          hpool__thread_state *thread, hpool__chunk_share *share)
{
    if (thread == NULL) {
        fail_chunk_items(batch, c, HPOOL_ENOMEM); /* its share never starts: no helper claims */
        return;
    }
    run_chunk(team, batch, c, thread_index, thread, share, false);
}

void hpool__help_chunk(hpool__team *team, hpool__chunk_share *share, int thread_index, hpool__thread_state *thread)
{
    if (thread != NULL)
        run_chunk(team, share->batch, share->chunk, thread_index, thread, share, true);
}

static size_t largest_reduce_value(const hpool__team *team)
{
    size_t largest = 0;
    for (size_t r = 0; r < team->reducer_count; r++)
        if (team->reducers[r].value_size > largest)
            largest = team->reducers[r].value_size;
    return largest;
}

hpool__thread_state *hpool__thread_state_new(const hpool__team *team)
{
    hpool__thread_state *thread = hpool__calloc(1, sizeof *thread);
    if (thread == NULL)
        return NULL;
    thread->functions = hpool__calloc(team->function_count + 1, sizeof *thread->functions);
    thread->scratch = hpool__malloc(2 * hpool__round_up(largest_reduce_value(team), 16) + 16);
    if (thread->functions == NULL || thread->scratch == NULL) {
        free(thread->functions);
        free(thread->scratch);
        free(thread);
        return NULL;
    }
    return thread;
}

void hpool__thread_state_free(const hpool__team *team, hpool__thread_state *thread)
{
    if (thread == NULL)
        return;
    for (size_t f = 0; f < team->function_count; f++) {
        const function_state *state = &thread->functions[f];
        if (state->initialized && state->init_code == 0 && team->functions[f].fini != NULL)
            team->functions[f].fini(state->state, team->functions[f].user);
    }
    free(thread->functions);
    free(thread->scratch);
    free(thread);
}
