/* team.c: a rank's OpenMP worker threads, which run the chunks of queued batches. */
#include "internal.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t hpool__now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* One worker thread's state for each function: made by init on first use. */
typedef struct worker_state {
    void *state;
    int init_code; /* init's return, once run */
    bool initialized;
} worker_state;

/* What hpool_span_emit and hpool_span_fail need while a chunk runs. */
typedef struct chunk_context {
    hpool__batch *batch;
    uint64_t offset;            /* the chunk's first item, within the batch */
    hpool__chunk_output *output;
    hpool__failure *failures;   /* this chunk's, merged into the batch after */
    size_t failure_count, failure_capacity;
    int error;                  /* an allocation failed */
} chunk_context;

static void chunk_fail(chunk_context *chunk, uint64_t index, int64_t code)
{
    hpool__failure *grown =
        hpool__grow_array(chunk->failures, &chunk->failure_capacity, chunk->failure_count, sizeof *grown);
    if (grown == NULL) {
        chunk->error = HPOOL_ENOMEM;
        return;
    }
    chunk->failures = grown;
    chunk->failures[chunk->failure_count++] = (hpool__failure){index, code};
}

int hpool_span_input(const hpool_span *span, size_t i, const void **data, size_t *size)
{
    if (span == NULL || data == NULL || size == NULL || i >= span->count)
        return HPOOL_EINVAL;
    chunk_context *chunk = span->internal;
    static _Thread_local int64_t range_value;
    hpool__input_get(&chunk->batch->input, chunk->offset + i, data, size, &range_value);
    return 0;
}

/* Closes the records of items before i, which emitted nothing more. */
static void close_records_before(hpool__chunk_output *output, size_t i)
{
    while (output->emitted < i) {
        output->ends[output->emitted] = output->bytes.size;
        output->emitted++;
    }
}

int hpool_span_emit(hpool_span *span, size_t i, const void *data, size_t size)
{
    if (span == NULL || i >= span->count)
        return HPOOL_EINVAL;
    chunk_context *chunk = span->internal;
    hpool__chunk_output *output = chunk->output;
    if (output == NULL || i < output->emitted) /* that record is closed */
        return HPOOL_EINVAL;
    close_records_before(output, i);
    if (hpool__buffer_append(&output->bytes, data, size) != 0)
        return HPOOL_ENOMEM;
    return 0;
}

int hpool_task_emit(hpool_task *task, const void *data, size_t size)
{
    if (task == NULL || task->span == NULL)
        return HPOOL_EINVAL;
    return hpool_span_emit(task->span, task->index - task->span->first, data, size);
}

void hpool_span_fail(hpool_span *span, size_t i, int code)
{
    if (span == NULL || i >= span->count || code == 0)
        return;
    chunk_fail(span->internal, span->first + i, code);
}

/* Keeps the item value after the chunk accumulator suitably aligned. */
static size_t aligned_value_size(const hpool_reducer *reducer)
{
    return reducer ? (reducer->value_size + 15) / 16 * 16 : 0;
}

/* Runs an item function over the span, item by item. */
static int run_items(const hpool_function *function, hpool_span *span, const hpool_reducer *reducer,
                     unsigned char *value)
{
    chunk_context *chunk = span->internal;
    const hpool__input *input = &chunk->batch->input;
    size_t result_size = span->result_size;
    hpool_task task = {.state = span->state, .span = span, .result_size = result_size, .emitter = span->emitter};
    const void *args[16];
    size_t arg_count = input->kind == HPOOL__COLUMNS ? input->column_count : 0;
    if (arg_count > 16)
        arg_count = 0; /* wider tuples read their row through task.input */
    task.args = arg_count ? args : NULL;
    task.arg_count = arg_count;
    int64_t range_value;
    for (size_t i = 0; i < span->count; i++) {
        task.index = span->first + i;
        hpool__input_get(input, chunk->offset + i, &task.input, &task.input_size, &range_value);
        for (size_t j = 0, at = 0; j < arg_count; at += input->column_sizes[j], j++)
            args[j] = (const unsigned char *)task.input + at;
        if (reducer != NULL) {
            memcpy(value, reducer->identity, reducer->value_size);
            task.result = value;
        } else if (span->results != NULL) {
            task.result = (unsigned char *)span->results + i * result_size;
        }
        int rc = function->map(&task, function->user);
        if (rc != 0)
            chunk_fail(chunk, task.index, rc);
        else if (reducer != NULL)
            reducer->combine(span->accumulator, value, reducer->user);
        if (chunk->output != NULL)
            close_records_before(chunk->output, i + 1);
    }
    return 0;
}

/* Deterministic reduce: each block of the chunk folds, in input order, into
 * its own partial in the batch, so no partial depends on who ran what. */
static int run_blocks(const hpool_function *function, hpool_span *span, chunk_context *chunk,
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
                                          : run_items(function, &part, reducer, value);
        if (code != 0) {
            /* the block failed as a whole: its partial counts for nothing */
            memcpy(part.accumulator, reducer->identity, reducer->value_size);
            for (uint64_t i = 0; i < part.count; i++)
                chunk_fail(chunk, part.first + i, code);
        }
    }
    chunk->offset = chunk_offset;
    return chunk->error;
}

static void run_chunk(hpool__team *team, hpool__batch *batch, uint64_t c, int thread_index, worker_state *states,
                      unsigned char *scratch)
{
    uint64_t offset = c * batch->chunksize;
    uint64_t count = batch->count - offset < batch->chunksize ? batch->count - offset : batch->chunksize;
    chunk_context chunk = {.batch = batch, .offset = offset};
    hpool_span span = {
        .first = batch->first + offset,
        .count = count,
        .range_first = batch->input.range_first + (int64_t)offset,
        .item_size = batch->input.item_size,
        .result_size = batch->result_size,
        .internal = &chunk,
    };
    if (batch->input.kind == HPOOL__FIXED || batch->input.kind == HPOOL__COLUMNS)
        span.items = batch->input.items + offset * batch->input.item_size;
    if (batch->mode == HPOOL__FIXED_RESULT)
        span.results = batch->results + offset * batch->result_size;
    if (batch->mode == HPOOL__RECORD_RESULT) {
        chunk.output = &batch->chunk_outputs[c];
        chunk.output->ends = calloc(count ? count : 1, sizeof *chunk.output->ends);
        if (chunk.output->ends == NULL)
            chunk.error = HPOOL_ENOMEM;
    }

    /* Keyed: pairs go straight into this thread's table in the rank's store. */
    hpool_emitter emitter;
    emitter.table = NULL;
    emitter.error = 0;
    emitter.staged_count = emitter.staged_bytes = 0;
    if (batch->mode == HPOOL__KEYED) {
        emitter.table = &batch->store->mapped[thread_index];
        span.emitter = &emitter;
    }

    const hpool_reducer *reducer = NULL;
    if (batch->mode == HPOOL__REDUCE) {
        reducer = &team->reducers[batch->reducer];
        span.accumulator = scratch;
        memcpy(scratch, reducer->identity, reducer->value_size);
    }

    /* The first chunks of a batch are timed, then one in eight. */
    bool timed = c < 4 || c % 8 == 0;
    uint64_t started = timed ? hpool__now_ns() : 0;
    int code = chunk.error;
    const hpool_function *function = NULL;
    if (code == 0 && atomic_load_explicit(&batch->canceled, memory_order_relaxed))
        code = HPOOL_ECANCELED;
    if (code == 0) {
        function = &team->functions[batch->function];
        worker_state *state = &states[batch->function];
        if (!state->initialized) {
            state->initialized = true;
            state->init_code = function->init ? function->init(&state->state, function->user) : 0;
        }
        code = state->init_code;
        span.state = state->state;
    }
    if (code == 0 && batch->block_size > 0) {
        code = run_blocks(function, &span, &chunk, reducer, scratch + aligned_value_size(reducer));
    } else if (code == 0) {
        if (function->span != NULL)
            code = function->span(&span, function->user);
        else
            code = run_items(function, &span, reducer, scratch + aligned_value_size(reducer));
        if (chunk.error != 0)
            code = chunk.error;
        if (emitter.table != NULL)
            hpool__emitter_flush(&emitter);
        if (code == 0 && emitter.error != 0)
            code = emitter.error;
    }
    if (batch->mode == HPOOL__KEYED) {
        /* The threads' tables share half the budget; the other half is for
         * what the shuffle reads back and sends. */
        hpool__keyed_store *store = batch->store;
        size_t share = store->budget / 2 / (size_t)store->thread_count;
        if (code == 0 && store->budget > 0 && hpool__pair_table_bytes(emitter.table) > share) {
            pthread_mutex_lock(&store->lock);
            code = hpool__spill_mapped(store, emitter.table);
            pthread_mutex_unlock(&store->lock);
        }
    }
    if (chunk.output != NULL && chunk.output->ends != NULL)
        close_records_before(chunk.output, count);
    if (timed) {
        atomic_fetch_add_explicit(&batch->timed_ns, hpool__now_ns() - started, memory_order_relaxed);
        atomic_fetch_add_explicit(&batch->timed_items, count, memory_order_relaxed);
    }
    bool folds_into_batch = reducer != NULL && batch->block_size == 0;
    if (code == 0 && chunk.failure_count == 0 && !folds_into_batch)
        return; /* nothing to merge into the batch */

    pthread_mutex_lock(&batch->lock);
    if (code != 0) {
        /* the whole chunk failed: its own per-item failures are subsumed */
        for (uint64_t i = 0; i < count; i++)
            hpool__batch_add_failure(batch, span.first + i, code);
    } else {
        for (size_t f = 0; f < chunk.failure_count; f++)
            hpool__batch_add_failure(batch, chunk.failures[f].index, chunk.failures[f].code);
        if (folds_into_batch)
            reducer->combine(batch->accumulator, scratch, reducer->user);
    }
    pthread_mutex_unlock(&batch->lock);
    free(chunk.failures);
}

/* Prepares a batch's outputs before any chunk of it runs. */
static int prepare_outputs(hpool__team *team, hpool__batch *batch)
{
    if (batch->mode == HPOOL__FIXED_RESULT && batch->results == NULL) {
        batch->results = malloc(batch->count * batch->result_size + 1);
        batch->results_owned = true;
        if (batch->results == NULL)
            return HPOOL_ENOMEM;
    }
    if (batch->mode == HPOOL__RECORD_RESULT) {
        batch->chunk_outputs = calloc(batch->chunk_count + 1, sizeof *batch->chunk_outputs);
        if (batch->chunk_outputs == NULL)
            return HPOOL_ENOMEM;
    }
    if (batch->mode == HPOOL__REDUCE) {
        const hpool_reducer *reducer = &team->reducers[batch->reducer];
        uint64_t partials = hpool__batch_partials(batch);
        batch->accumulator = malloc(partials * reducer->value_size);
        if (batch->accumulator == NULL)
            return HPOOL_ENOMEM;
        for (uint64_t p = 0; p < partials; p++)
            memcpy(batch->accumulator + p * reducer->value_size, reducer->identity, reducer->value_size);
    }
    return 0;
}

static bool recently_canceled(const hpool__team *team, uint32_t call_id)
{
    for (size_t i = 0; i < sizeof team->canceled_calls / sizeof team->canceled_calls[0]; i++)
        if (team->canceled_calls[i] == call_id && call_id != 0)
            return true;
    return false;
}

static void finish_batch(hpool__team *team, hpool__batch *batch)
{
    if (batch->mode == HPOOL__RECORD_RESULT && batch->chunk_outputs != NULL
        && hpool__batch_assemble_records(batch) != 0) {
        pthread_mutex_lock(&batch->lock);
        for (uint64_t i = 0; i < batch->count; i++)
            hpool__batch_add_failure(batch, batch->first + i, HPOOL_ENOMEM);
        pthread_mutex_unlock(&batch->lock);
        /* an empty record per item keeps the message well formed */
        batch->record_offsets = calloc(batch->count + 1, sizeof(uint64_t));
        batch->record_data = (unsigned char *)batch->record_offsets;
    }
    team->on_batch_done(batch, team->on_batch_done_user);
}

void hpool__team_submit(hpool__team *team, hpool__batch *batch)
{
    /* The root counted the batch's chunks as sent: every one of them is
     * counted completed here, run or not. */
    bool runnable = prepare_outputs(team, batch) == 0;
    if (!runnable)
        for (uint64_t i = 0; i < batch->count; i++)
            hpool__batch_add_failure(batch, batch->first + i, HPOOL_ENOMEM);
    pthread_mutex_lock(&team->lock);
    team->report_below = batch->report_below;
    team->chunks_received += batch->chunk_count;
    if (recently_canceled(team, batch->call_id))
        atomic_store(&batch->canceled, 1);
    if (!runnable || batch->chunk_count == 0) {
        team->chunks_completed += batch->chunk_count;
        pthread_mutex_unlock(&team->lock);
        finish_batch(team, batch);
        return;
    }
    batch->next = NULL;
    if (team->tail)
        team->tail->next = batch;
    else
        team->head = batch;
    team->tail = batch;
    pthread_cond_signal(&team->work_ready);
    if (batch->chunk_count > 1)
        pthread_cond_broadcast(&team->work_ready);
    pthread_mutex_unlock(&team->lock);
}

uint64_t hpool__team_take_credit(hpool__team *team, bool *pending)
{
    bool was_pending = false;
    uint64_t completed = team->chunks_completed;
    if (team->started) {
        pthread_mutex_lock(&team->lock);
        was_pending = team->credit_pending;
        team->credit_pending = false;
        completed = team->chunks_completed;
        pthread_mutex_unlock(&team->lock);
    }
    if (pending != NULL)
        *pending = was_pending;
    return completed;
}

bool hpool__team_is_short(hpool__team *team)
{
    if (!team->started)
        return false;
    pthread_mutex_lock(&team->lock);
    bool is_short = team->chunks_received - team->chunks_completed < team->report_below;
    pthread_mutex_unlock(&team->lock);
    return is_short;
}

/* After a chunk completed, with the team's lock held: whether the root
 * must hear that this rank holds fewer chunks than it asked for. Held is
 * judged as the root judges it, from the two totals: a count of running
 * chunks would still include those whose threads have counted them done
 * but not yet taken the lock, and hide the shortfall for good.
 *
 * Once told, the root needs no news of every chunk: it has answered, or
 * has nothing to send. So a report is repeated only after an eighth of the
 * mark has completed since the last, or at once when the rank holds fewer
 * chunks than it has threads (one is about to go idle). In between the
 * root's count is at most that eighth behind, while every thread has work.
 * (Without this, a rank of cheap items sent a report every engine round
 * while short: tiny items under mpirun -n 2, 4.1e7 -> 3.3e7 items/s.) */
static bool needs_credit(hpool__team *team)
{
    uint64_t completed = team->chunks_completed;
    uint64_t held = team->chunks_received - completed;
    if (team->credit_pending || team->on_credit == NULL || held >= team->report_below)
        return false;
    uint64_t spacing = team->report_below / 8 > 1 ? team->report_below / 8 : 1;
    bool urgent = held < (uint64_t)team->thread_count;
    if (!urgent && completed - team->completed_at_credit < spacing)
        return false;
    team->credit_pending = true;
    team->completed_at_credit = completed;
    return true;
}

void hpool__team_run(hpool__team *team, hpool__team_job_fn *fn, void *arg, int parts)
{
    if (!team->started || parts <= 1) {
        for (int part = 0; part < parts; part++)
            fn(arg, part, parts);
        return;
    }
    hpool__team_job job = {.fn = fn, .arg = arg, .parts = parts};
    pthread_mutex_lock(&team->lock);
    team->job = &job;
    pthread_cond_broadcast(&team->work_ready);
    while (job.parts_done < job.parts)
        pthread_cond_wait(&team->job_done, &team->lock);
    pthread_mutex_unlock(&team->lock);
}

/* Runs one part of the team's job, with the team's lock held on entry and
 * on return. */
static void run_job_part(hpool__team *team)
{
    hpool__team_job *job = team->job;
    int part = job->next_part++;
    if (job->next_part == job->parts)
        team->job = NULL; /* every part claimed; the caller waits for parts_done */
    pthread_mutex_unlock(&team->lock);
    job->fn(job->arg, part, job->parts);
    pthread_mutex_lock(&team->lock);
    if (++job->parts_done == job->parts)
        pthread_cond_signal(&team->job_done);
}

void hpool__team_cancel(hpool__team *team, uint32_t call_id)
{
    pthread_mutex_lock(&team->lock);
    team->canceled_calls[team->canceled_next] = call_id;
    team->canceled_next = (team->canceled_next + 1) % (sizeof team->canceled_calls / sizeof team->canceled_calls[0]);
    for (hpool__batch *batch = team->head; batch != NULL; batch = batch->next)
        if (batch->call_id == call_id)
            atomic_store(&batch->canceled, 1);
    pthread_mutex_unlock(&team->lock);
}

static size_t largest_reduce_value(const hpool__team *team)
{
    size_t largest = 0;
    for (size_t r = 0; r < team->reducer_count; r++)
        if (team->reducers[r].value_size > largest)
            largest = team->reducers[r].value_size;
    return largest;
}

/* Pins the calling worker if asked and OpenMP has not bound it already
 * (OMP_PROC_BIND, OMP_PLACES), then records where it runs. */
static void place_worker(hpool__team *team)
{
    int index = omp_get_thread_num();
    bool openmp_bound = omp_get_place_num() >= 0;
    if (team->pin && !openmp_bound)
        hpool__pin_this_thread(hpool__cpus_nth(&team->cpus, team->pin_offset + index)); /* a failure leaves it unpinned */
    hpool__cpus cpus;
    hpool__cpus_of_this_thread(&cpus);
    pthread_mutex_lock(&team->lock);
    if (team->threads_running == 0)
        team->threads_running = omp_get_num_threads();
    if (team->thread_cpus != NULL && index < team->thread_count)
        team->thread_cpus[index] = cpus;
    team->openmp_bound = team->openmp_bound || openmp_bound;
    team->threads_ready++;
    pthread_cond_broadcast(&team->threads_started);
    pthread_mutex_unlock(&team->lock);
}

void hpool__team_wait_started(hpool__team *team)
{
    pthread_mutex_lock(&team->lock);
    while (team->threads_running == 0 || team->threads_ready < team->threads_running)
        pthread_cond_wait(&team->threads_started, &team->lock);
    pthread_mutex_unlock(&team->lock);
}

static void worker_loop(hpool__team *team)
{
    place_worker(team);
    worker_state *states = calloc(team->function_count + 1, sizeof *states);
    /* room for a chunk's accumulator and an item's value */
    unsigned char *scratch = malloc(2 * ((largest_reduce_value(team) + 15) / 16 * 16) + 16);
    pthread_mutex_lock(&team->lock);
    for (;;) {
        while (team->head == NULL && team->job == NULL && !team->stopping)
            pthread_cond_wait(&team->work_ready, &team->lock);
        if (team->job != NULL) {
            run_job_part(team);
            continue;
        }
        if (team->head == NULL)
            break;
        hpool__batch *batch = team->head;
        uint64_t c = batch->next_chunk++;
        if (batch->next_chunk == batch->chunk_count) {
            team->head = batch->next;
            if (team->head == NULL)
                team->tail = NULL;
        }
        pthread_mutex_unlock(&team->lock);
        if (states == NULL || scratch == NULL) {
            pthread_mutex_lock(&batch->lock);
            uint64_t offset = c * batch->chunksize;
            for (uint64_t i = offset; i < batch->count && i < offset + batch->chunksize; i++)
                hpool__batch_add_failure(batch, batch->first + i, HPOOL_ENOMEM);
            pthread_mutex_unlock(&batch->lock);
        } else {
            run_chunk(team, batch, c, omp_get_thread_num(), states, scratch);
        }
        /* Both counts under the lock this thread takes anyway to claim its
         * next chunk, not as atomics: at chunksize 1 an atomic increment
         * costs as much as a cheap item. The team's is counted before the
         * batch can be reported done, so the count a result carries
         * includes the result's own chunks. */
        pthread_mutex_lock(&team->lock);
        team->chunks_completed++;
        bool batch_done = ++batch->chunks_done == batch->chunk_count;
        /* A finished batch's result tells the root anyway; a chunk of a
         * batch still running elsewhere (a slow item) must not keep the
         * root thinking this rank is full. */
        bool credit = !batch_done && needs_credit(team);
        if (batch_done || credit) {
            pthread_mutex_unlock(&team->lock);
            if (batch_done)
                finish_batch(team, batch); /* which may free it */
            if (credit)
                team->on_credit(team->on_batch_done_user);
            pthread_mutex_lock(&team->lock);
        }
    }
    pthread_mutex_unlock(&team->lock);
    for (size_t f = 0; states != NULL && f < team->function_count; f++)
        if (states[f].initialized && states[f].init_code == 0 && team->functions[f].fini != NULL)
            team->functions[f].fini(states[f].state, team->functions[f].user);
    free(states);
    free(scratch);
}

static void *team_main(void *argument)
{
    hpool__team *team = argument;
    /* Exactly thread_count threads, whatever OMP_DYNAMIC says. */
    omp_set_dynamic(0);
#pragma omp parallel num_threads(team->thread_count)
    worker_loop(team);
    return NULL;
}

void hpool__team_rank_cpus(hpool__cpus *cpus)
{
    /* With OMP_PROC_BIND or OMP_PLACES, libgomp binds the initial thread to
     * the first place as it loads, so that thread's mask no longer says
     * what the process was given; the places, made from that mask before,
     * still do. */
    int places = omp_get_num_places();
    if (places <= 0) {
        hpool__cpus_of_this_thread(cpus);
        return;
    }
    memset(cpus, 0, sizeof *cpus);
    for (int place = 0; place < places; place++) {
        int count = omp_get_place_num_procs(place);
        int *ids = malloc((size_t)(count > 0 ? count : 1) * sizeof *ids);
        if (ids == NULL)
            continue;
        omp_get_place_proc_ids(place, ids);
        for (int i = 0; i < count; i++)
            if (ids[i] >= 0 && ids[i] < (int)sizeof cpus->bits * 8)
                cpus->bits[ids[i] / 64] |= (uint64_t)1 << (ids[i] % 64);
        free(ids);
    }
    if (hpool__cpus_count(cpus) == 0)
        hpool__cpus_of_this_thread(cpus);
}

int hpool__team_start(hpool__team *team)
{
    team->thread_cpus = calloc((size_t)team->thread_count, sizeof *team->thread_cpus);
    if (team->thread_cpus == NULL)
        return HPOOL_ENOMEM;
    if (pthread_mutex_init(&team->lock, NULL) != 0)
        goto no_lock;
    if (pthread_cond_init(&team->work_ready, NULL) != 0)
        goto no_work_ready;
    if (pthread_cond_init(&team->threads_started, NULL) != 0)
        goto no_threads_started;
    if (pthread_cond_init(&team->job_done, NULL) != 0)
        goto no_job_done;
    if (pthread_create(&team->thread, NULL, team_main, team) != 0)
        goto no_thread;
    team->started = true;
    return 0;
no_thread:
    pthread_cond_destroy(&team->job_done);
no_job_done:
    pthread_cond_destroy(&team->threads_started);
no_threads_started:
    pthread_cond_destroy(&team->work_ready);
no_work_ready:
    pthread_mutex_destroy(&team->lock);
no_lock:
    free(team->thread_cpus);
    team->thread_cpus = NULL;
    return HPOOL_ETHREAD;
}

/* Lets the threads finish every queued chunk, then ends them. */
void hpool__team_stop(hpool__team *team)
{
    if (!team->started)
        return;
    pthread_mutex_lock(&team->lock);
    team->stopping = true;
    pthread_cond_broadcast(&team->work_ready);
    pthread_mutex_unlock(&team->lock);
    pthread_join(team->thread, NULL);
    pthread_cond_destroy(&team->job_done);
    pthread_cond_destroy(&team->threads_started);
    pthread_cond_destroy(&team->work_ready);
    pthread_mutex_destroy(&team->lock);
    free(team->thread_cpus);
    team->thread_cpus = NULL;
    team->started = false;
}
