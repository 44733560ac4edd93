/* collection.c: the root gathers finished batches into results, streams and reductions, and completes calls. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

hpool__call_state *hpool__find_call(hpool_pool *pool, uint32_t id)
{
    for (hpool__call_state *call = pool->calls.head; call != NULL; call = call->next)
        if (call->id == id)
            return call;
    return NULL;
}

static void append_ready(hpool__call_state *call, hpool__batch *batch)
{
    HPOOL__QUEUE_PUSH(&call->ready, batch);
}

/* Files a batch among those that wait for an earlier one, by first item. */
static void wait_in_order(hpool__call_state *call, hpool__batch *batch)
{
    hpool__batch **link = &call->waiting;
    while (*link != NULL && (*link)->first < batch->first)
        link = &(*link)->next;
    batch->next = *link;
    *link = batch;
}

/* The waiting batch that continues the input where the last one ended, or
 * NULL while an earlier batch is still out. */
static hpool__batch *next_in_order(hpool__call_state *call)
{
    hpool__batch *next = call->waiting;
    if (next == NULL || next->first != call->next_to_deliver)
        return NULL;
    call->waiting = next->next;
    call->next_to_deliver += next->count;
    return next;
}

/* imap: a batch is delivered once every item before it has been. */
static void deliver_in_order(hpool__call_state *call, hpool__batch *batch)
{
    wait_in_order(call, batch);
    hpool__batch *ready;
    while ((ready = next_in_order(call)) != NULL)
        append_ready(call, ready);
}

/* Deterministic reduce: partials are folded block by block in input order,
 * as soon as every earlier batch is in. */
static void fold_in_order(hpool_pool *pool, hpool__call_state *call, hpool__batch *batch)
{
    const hpool_reducer *reducer = &pool->reducers[call->spec.reducer];
    wait_in_order(call, batch);
    hpool__batch *ready;
    while ((ready = next_in_order(call)) != NULL) {
        uint64_t partials = hpool__batch_partials(ready);
        for (uint64_t p = 0; ready->accumulator != NULL && p < partials; p++)
            reducer->combine(call->reduction, ready->accumulator + p * reducer->value_size, reducer->user);
        hpool__release_chunks(call, ready->chunk_count);
        hpool__batch_free(ready);
    }
}

static int keep_record_batch(hpool__call_state *call, hpool__batch *batch)
{
    hpool__batch **grown = hpool__grow_array(call->record_batches, &call->record_batch_capacity,
                                             call->record_batch_count, sizeof *grown);
    if (grown == NULL)
        return HPOOL_ENOMEM;
    call->record_batches = grown;
    call->record_batches[call->record_batch_count++] = batch;
    return 0;
}

static void count_failures(hpool__call_state *call, const hpool__batch *batch)
{
    hpool_report *report = &call->report;
    if (batch->whole_failed != 0) {
        if (batch->count > 0 && (report->failed == 0 || batch->first < report->first_failed_index)) {
            report->first_failed_index = batch->first;
            report->first_failed_code = batch->whole_failed;
        }
        report->failed += batch->count;
        if (batch->whole_failed == HPOOL_ECANCELED)
            report->canceled += batch->count;
        return;
    }
    for (size_t f = 0; f < batch->failure_count; f++) {
        const hpool__failure *failure = &batch->failures[f];
        if (report->failed == 0 || failure->index < report->first_failed_index) {
            report->first_failed_index = failure->index;
            report->first_failed_code = (int)failure->code;
        }
        report->failed += failure->count;
        if (failure->code == HPOOL_ECANCELED)
            report->canceled += failure->count;
    }
}

/* Another rank's fixed-size results into the caller's array, but for the
 * items that failed or were cancelled: their slots stay as the caller left
 * them (what the rank's buffer holds there is whatever the allocator gave
 * it, for an item that never ran), as a failed item's does on the root,
 * where a map function writes into the array itself. The failures are
 * sorted (hpool__collect) and lie within the batch. */
static void copy_results_that_succeeded(const hpool__call_state *call, const hpool__batch *batch)
{
    unsigned char *into = call->spec.results;
    size_t size = call->result_size;
    uint64_t from = batch->first, end = batch->first + batch->count;
    for (size_t f = 0; f <= batch->failure_count; f++) {
        uint64_t until = f < batch->failure_count ? batch->failures[f].index : end;
        if (until > end)
            until = end;
        if (until > from)
            memcpy(into + from * size, batch->results + (from - batch->first) * size, (until - from) * size);
        if (f < batch->failure_count && batch->failures[f].index + batch->failures[f].count > from)
            from = batch->failures[f].index + batch->failures[f].count;
    }
}

/* A batch that failed whole: nothing of it may be combined or copied; a
 * record map still gets an empty record per item. */
static void drop_outputs(hpool__batch *batch)
{
    free(batch->accumulator);
    batch->accumulator = NULL;
    batch->failure_count = 0;
    if (batch->mode == HPOOL__FIXED_RESULT && batch->results_owned)
        free(batch->results);
    if (batch->mode == HPOOL__FIXED_RESULT) {
        batch->results = NULL;
        batch->results_owned = false;
    }
    if (batch->mode == HPOOL__RECORD_RESULT) {
        free(batch->record_offsets);
        batch->record_offsets = hpool__calloc(batch->count + 1, sizeof(uint64_t)); /* NULL: the records fail */
        batch->record_data = (unsigned char *)batch->record_offsets;
    }
}

void hpool__collect(hpool_pool *pool, hpool__batch *batch)
{
    hpool__call_state *call = hpool__find_call(pool, batch->call_id);
    if (batch->origin_rank == pool->root)
        hpool__watchdog_returned(pool, pool->root, batch->call_id, batch->first);
    /* A batch whose call ended without it, or that its call gave up on
     * (an item of the root's team abandoned after terminate, which came
     * back after all): abandoned. */
    if (call == NULL || call->complete || (batch->origin_rank == pool->root && call->local_uncollected == 0)) {
        hpool__batch_free(batch);
        return;
    }
    HPOOL__ASSERT(call->batches_uncollected > 0);
    call->batches_uncollected--;
    if (batch->origin_rank == pool->root) {
        HPOOL__ASSERT(call->local_uncollected > 0);
        call->local_uncollected--;
    }
    call->done += batch->count;
    /* in item order: for error_callback, and for hpool_iter_next's search */
    hpool__failures_sort(batch->failures, batch->failure_count);
    uint64_t timed_ns = atomic_load(&batch->timed_ns), timed_items = atomic_load(&batch->timed_items);
    if (timed_items > 0 && timed_ns > 0) {
        /* A mean weighted by items, in which the estimate so far counts
         * for half the items it stands for: batches of one size move it
         * halfway to their own cost, as a plain average of the two would,
         * but the first batch of thousands of items is not outweighed by
         * the single item timed before it (dearer than the rest by the
         * clock reads around it): the chunks took half a dozen batches to
         * grow from that estimate to their 1 ms. */
        double weight = call->ns_per_item > 0 ? 0.5 * call->ns_per_item_weight : 0;
        call->ns_per_item = (call->ns_per_item * weight + (double)timed_ns) / (weight + (double)timed_items);
        call->ns_per_item_weight = weight + (double)timed_items;
    }
    count_failures(call, batch);
    if (call->journal != NULL) {
        /* Hashing and writing a record takes a while (a listing's results
         * are hundreds of MB): the batch is ours alone until placed
         * below, so the workers need not wait for the lock meanwhile. A
         * keyed call's note is small, and read by its checkpoint under
         * the lock. */
        bool unlocked = call->kind != HPOOL__CALL_KEYED;
        if (unlocked) {
            call->refcount++;
            pthread_mutex_unlock(&pool->lock);
        }
        int journaled = hpool__journal_append(pool, call, batch);
        if (unlocked) {
            pthread_mutex_lock(&pool->lock);
            call->refcount--;
        }
        if (journaled != 0)
            hpool__call_set_error(call, journaled);
    }
    if (batch->whole_failed != 0)
        drop_outputs(batch);
    bool report_failures = (batch->failure_count > 0 || batch->whole_failed != 0) && call->spec.error_callback != NULL;
    if (report_failures || call->spec.progress != NULL) {
        /* The batch is ours alone until placed below, so the lock can go. */
        call->refcount++;
        pthread_mutex_unlock(&pool->lock);
        if (report_failures && batch->whole_failed != 0)
            for (uint64_t i = 0; i < batch->count; i++)
                call->spec.error_callback(batch->first + i, batch->whole_failed, call->spec.user);
        else
            for (size_t f = 0; report_failures && f < batch->failure_count; f++)
                for (uint64_t i = 0; i < batch->failures[f].count; i++)
                    call->spec.error_callback(batch->failures[f].index + i, (int)batch->failures[f].code,
                                              call->spec.user);
        if (call->spec.progress != NULL)
            call->spec.progress(batch->first, batch->count, call->spec.user);
        pthread_mutex_lock(&pool->lock);
        call->refcount--;
    }

    bool keep = false;
    switch (call->kind) {
    case HPOOL__CALL_MAP:
        if (call->mode == HPOOL__FIXED_RESULT && batch->origin_rank != pool->root && call->spec.results != NULL
            && batch->results != NULL)
            copy_results_that_succeeded(call, batch);
        if (call->mode == HPOOL__RECORD_RESULT) {
            if (batch->record_offsets != NULL && keep_record_batch(call, batch) == 0)
                keep = true;
            else if (call->report.status == 0)
                call->report.status = HPOOL_ENOMEM;
        }
        hpool__release_chunks(call, batch->chunk_count);
        break;
    case HPOOL__CALL_KEYED:
        hpool__release_chunks(call, batch->chunk_count); /* its pairs went to this rank's store */
        break;
    case HPOOL__CALL_REDUCE:
        if (call->block_size > 0) {
            fold_in_order(pool, call, batch);
            keep = true; /* folded, and freed, in order */
            break;
        }
        if (batch->accumulator != NULL)
            pool->reducers[call->spec.reducer].combine(call->reduction, batch->accumulator,
                                                      pool->reducers[call->spec.reducer].user);
        hpool__release_chunks(call, batch->chunk_count);
        break;
    case HPOOL__CALL_IMAP:
        if (call->abandoned) {
            hpool__release_chunks(call, batch->chunk_count);
            break;
        }
        deliver_in_order(call, batch);
        keep = true;
        break;
    case HPOOL__CALL_IMAP_UNORDERED:
        if (call->abandoned) {
            hpool__release_chunks(call, batch->chunk_count);
            break;
        }
        append_ready(call, batch);
        keep = true;
        break;
    }
    if (!keep)
        hpool__batch_free(batch);
    /* A stream's reader waits for each result; a caller that waits for a
     * whole call hears of it when it completes (hpool__complete_if_done).
     * Waking it for every batch cost a context switch each on a busy
     * core: `square --sum 10000000` collects some 40 batches. */
    if (call->kind == HPOOL__CALL_IMAP || call->kind == HPOOL__CALL_IMAP_UNORDERED)
        pthread_cond_broadcast(&pool->changed);
    hpool__complete_if_done(pool, call);
}

static int by_first(const void *a, const void *b)
{
    const hpool__batch *x = *(hpool__batch *const *)a, *y = *(hpool__batch *const *)b;
    return x->first < y->first ? -1 : x->first > y->first;
}

static void unlink_call(hpool_pool *pool, hpool__call_state *call)
{
    hpool__call_state **link = &pool->calls.head;
    hpool__call_state *previous = NULL;
    while (*link != NULL && *link != call) {
        previous = *link;
        link = &(*link)->next;
    }
    if (*link == NULL)
        return;
    *link = call->next;
    if (pool->calls.tail == call)
        pool->calls.tail = previous;
    call->next = NULL;
}

void hpool__complete_if_done(hpool_pool *pool, hpool__call_state *call)
{
    if (call->complete || !call->source_ended || call->batches_uncollected > 0)
        return;
    if (call->kind == HPOOL__CALL_KEYED && !call->keyed_done && call->journal != NULL
        && (call->stopped || call->canceled) && !call->checkpoint_final_done && call->report.status == 0) {
        /* A stopped call's pairs are checkpointed before the shuffle
         * takes them (journal_keyed.c), so its rerun redoes no map work;
         * the shuffle then frees the ranks' stores, and its output, part
         * of the answer, comes with HPOOL_ESTOPPED. A call that ends is
         * not checkpointed again: that would cost a word count 15% of its
         * time, to spare a rerun the map work since the last checkpoint. */
        pool->engine_has_news = true;
        pthread_cond_signal(&pool->engine_wake);
        return;
    }
    if (call->kind == HPOOL__CALL_KEYED && !call->keyed_done) {
        /* The map phase is over; the shuffle runs even after a cancel, as
         * it is what frees the ranks' stores. */
        if (!call->shuffling && !call->shuffle_pending) {
            call->shuffle_pending = true;
            pool->engine_has_news = true;
            pthread_cond_signal(&pool->engine_wake);
        }
        return;
    }
    hpool_report *report = &call->report;
    report->items = call->total + call->canceled_before_start;
    if (call->canceled_before_start > 0) {
        if (report->failed == 0 || call->cut < report->first_failed_index) {
            report->first_failed_index = call->cut;
            report->first_failed_code = HPOOL_ECANCELED;
        }
        report->failed += call->canceled_before_start;
        report->canceled += call->canceled_before_start;
    }
    bool lost_items = report->canceled > 0 || call->cut_short;
    if (report->status == 0 && lost_items && call->stopped) {
        report->status = HPOOL_ESTOPPED;
        hpool__stop_describe(pool, call);
    } else if (report->status == 0 && lost_items) {
        report->status = HPOOL_ECANCELED;
    }
    else if (report->status == 0 && report->failed > 0)
        report->status = HPOOL_EFAILED;

    if (call->kind == HPOOL__CALL_REDUCE && call->spec.reduction != NULL)
        memcpy(call->spec.reduction, call->reduction, call->result_size);
    if (call->kind == HPOOL__CALL_MAP && call->mode == HPOOL__RECORD_RESULT) {
        if (call->record_batch_count > 1) /* none at all for an empty source: no qsort of NULL */
            qsort(call->record_batches, call->record_batch_count, sizeof *call->record_batches, by_first);
        /* after a cancel, total is what was cut, which the batches tile */
        hpool_records *records = hpool__records_build(call->record_batches, call->record_batch_count, call->total);
        if (records == NULL && (report->status == 0 || report->status == HPOOL_EFAILED))
            report->status = HPOOL_ENOMEM;
        *call->spec.records = records;
        for (size_t b = 0; b < call->record_batch_count; b++)
            hpool__batch_free(call->record_batches[b]);
        call->record_batch_count = 0;
    }
    if (call->journal != NULL) {
        /* synced before the caller can see the call end */
        hpool__journal *journal = call->journal;
        call->journal = NULL;
        hpool__journal_close(journal, call);
    }
    unlink_call(pool, call);
    /* The callback runs before anyone can see the call complete, so a
     * caller that waited can count on it having run. */
    if (call->spec.callback != NULL) {
        pthread_mutex_unlock(&pool->lock);
        call->spec.callback(report, call->spec.user);
        pthread_mutex_lock(&pool->lock);
    }
    call->complete = true;
    pthread_cond_broadcast(&pool->changed);
    hpool__call_release(pool, call);
}

void hpool__call_release(hpool_pool *pool, hpool__call_state *call)
{
    if (--call->refcount > 0)
        return;
    hpool__batch *lists[] = {call->ready.head, call->waiting, call->reading};
    for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++)
        for (hpool__batch *batch = lists[l], *next; batch != NULL; batch = next) {
            next = batch == call->reading ? NULL : batch->next;
            hpool__batch_free(batch);
        }
    for (size_t b = 0; b < call->record_batch_count; b++)
        hpool__batch_free(call->record_batches[b]);
    free(call->record_batches);
    hpool__journal_close(call->journal, NULL);
    free(call->checkpoint_files);
    hpool__buffer_release(&call->keyed_ranges);
    hpool__buffer_release(&call->keyed_failures);
    free(call->reduction);
    free(call->argument);
    hpool_source_free(call->owned_source);
    free(call->owned_input);
    for (int r = 0; call->runs != NULL && r < call->runs_received; r++)
        free(call->runs[r]);
    free(call->runs);
    free(call->run_sizes);
    free(call);
}

/* Stops cutting the call and tells the ranks to skip what has not started.
 * With pool->lock held. */
void hpool__cancel_call(hpool_pool *pool, hpool__call_state *call)
{
    if (call->complete || call->canceled)
        return;
    call->canceled = true;
    call->cancel_pending = true;
    if (!call->source_ended) {
        if (call->total != UINT64_MAX)
            call->canceled_before_start = call->total - call->cut;
        else
            call->cut_short = true;
        call->source_ended = true;
        call->total = call->cut;
    }
    pool->engine_has_news = true;
    pthread_cond_signal(&pool->engine_wake);
}

/* A rank's sorted run of a keyed call; the last one completes the call.
 * code: 0, a reduce function's positive code, or a negative error. */
void hpool__keyed_run_arrived(hpool_pool *pool, uint32_t call_id, int rank, int code, const char *detail,
                              uint64_t spilled_bytes, void *run, size_t size)
{
    hpool__call_state *call = hpool__find_call(pool, call_id);
    if (call == NULL || call->keyed_done) {
        free(run);
        return;
    }
    int ranks = pool->transport.size;
    if (call->runs == NULL) {
        call->runs = hpool__calloc((size_t)ranks, sizeof *call->runs);
        call->run_sizes = hpool__calloc((size_t)ranks, sizeof *call->run_sizes);
        if (call->runs == NULL || call->run_sizes == NULL) {
            free(run);
            call->keyed_done = true;
            call->report.status = HPOOL_ENOMEM;
            snprintf(call->detail, sizeof call->detail, "no memory on the root for the table of %d ranks' keyed output",
                     ranks);
            hpool__complete_if_done(pool, call);
            return;
        }
    }
    /* runs are kept in arrival order: the merge does not care */
    call->runs[call->runs_received] = run;
    call->run_sizes[call->runs_received] = size;
    call->runs_received++;
    if (code > 0 && call->keyed_code == 0) {
        call->keyed_code = code;
        call->keyed_code_rank = rank;
    } else if (code < 0 && call->report.status == 0) {
        call->report.status = code;
        /* The caller's detail names the rank when there are several. */
        if (detail != NULL && detail[0] != '\0' && ranks > 1)
            snprintf(call->detail, sizeof call->detail, "rank %d: %s", rank, detail);
        else if (detail != NULL && detail[0] != '\0')
            snprintf(call->detail, sizeof call->detail, "%s", detail);
    }
    call->report.spilled_bytes += spilled_bytes;
    if (call->runs_received < ranks)
        return;
    hpool_pairs *pairs = NULL;
    int rc = hpool__merge_runs(call->runs, call->run_sizes, (size_t)ranks, &pool->keyed_reducers[call->spec.reducer],
                               &pairs);
    call->runs_received = 0; /* the merge owns the runs now */
    if (rc != 0 && call->report.status == 0) {
        call->report.status = rc;
        snprintf(call->detail, sizeof call->detail, "the root could not merge the ranks' keyed output: %s",
                 rc == HPOOL_ENOMEM ? "no memory for its index of the pairs" : hpool_strerror(rc));
    }
    if (call->keyed_code != 0 && call->report.status == 0) {
        call->report.status = HPOOL_EFAILED;
        call->report.first_failed_code = call->keyed_code;
        /* The rank's code came from one of the functions that run after
         * the map phase: its merge (of the pairs it received), reduce or
         * write; the code does not say which, so the detail names those
         * the reducer has. */
        const hpool_keyed_reducer *spec = &pool->keyed_reducers[call->spec.reducer];
        const char *functions[] = {spec->merge ? "merge" : NULL, spec->reduce ? "reduce" : NULL,
                                   spec->write ? "write" : NULL};
        char named[32] = ""; /* "merge", "merge or reduce", "merge, reduce or write" */
        size_t left = (spec->merge != NULL) + (spec->reduce != NULL) + (spec->write != NULL);
        for (size_t f = 0; f < 3; f++)
            if (functions[f] != NULL)
                snprintf(named + strlen(named), sizeof named - strlen(named), "%s%s", functions[f],
                         --left == 0 ? "" : left == 1 ? " or " : ", ");
        snprintf(call->detail, sizeof call->detail,
                 "the %s function of keyed reducer \"%s\" returned %d on rank %d: the output holds none of that "
                 "rank's keys",
                 named, spec->name != NULL ? spec->name : "", call->keyed_code, call->keyed_code_rank);
    }
    *call->spec.pairs = pairs;
    call->keyed_done = true;
    call->shuffling = false;
    hpool__complete_if_done(pool, call);
}
