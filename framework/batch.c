/* batch.c: a batch's lifetime and its outputs. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

hpool__batch *hpool__batch_new(void)
{
    hpool__batch *batch = hpool__calloc(1, sizeof *batch);
    if (batch == NULL)
        return NULL;
    if (pthread_mutex_init(&batch->lock, NULL) != 0) {
        free(batch);
        return NULL;
    }
    batch->reducer = -1;
    return batch;
}

void hpool__batch_free(hpool__batch *batch)
{
    if (batch == NULL)
        return;
    if (batch->chunk_outputs != NULL) {
        for (uint64_t c = 0; c < batch->chunk_count; c++) {
            hpool__buffer_release(&batch->chunk_outputs[c].bytes);
            free(batch->chunk_outputs[c].ends);
        }
        free(batch->chunk_outputs);
    }
    if (batch->results_owned)
        free(batch->results);
    free(batch->record_offsets);
    free(batch->accumulator);
    free(batch->failures);
    free(batch->storage);
    pthread_mutex_destroy(&batch->lock);
    free(batch);
}

/* A reduce batch's partial values: one, or one per block in deterministic
 * mode. */
uint64_t hpool__batch_partials(const hpool__batch *batch)
{
    if (batch->block_size == 0)
        return 1;
    uint64_t blocks = hpool__ceil_div(batch->count, batch->block_size);
    return blocks ? blocks : 1;
}

/* ---- Failed items, as runs ------------------------------------------- */

int hpool__failures_add(hpool__failure **failures, size_t *count, size_t *capacity, uint64_t index, uint64_t run,
                        int64_t code)
{
    if (run == 0)
        return 0;
    if (*count > 0) {
        hpool__failure *last = &(*failures)[*count - 1];
        if (last->code == code && last->index + last->count == index) {
            last->count += run;
            return 0;
        }
    }
    hpool__failure *grown = hpool__grow_array(*failures, capacity, *count, sizeof *grown);
    if (grown == NULL)
        return HPOOL_ENOMEM;
    *failures = grown;
    grown[(*count)++] = (hpool__failure){.index = index, .count = run, .code = code};
    return 0;
}

static int by_first_item(const void *a, const void *b)
{
    uint64_t x = ((const hpool__failure *)a)->index, y = ((const hpool__failure *)b)->index;
    return x < y ? -1 : x > y;
}

void hpool__failures_sort(hpool__failure *failures, size_t count)
{
    if (count > 1)
        qsort(failures, count, sizeof *failures, by_first_item);
}

int64_t hpool__failures_find(const hpool__failure *failures, size_t count, uint64_t index)
{
    size_t low = 0, high = count; /* the first run past index is in [low, high] */
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (failures[middle].index <= index)
            low = middle + 1;
        else
            high = middle;
    }
    if (low == 0)
        return 0;
    const hpool__failure *run = &failures[low - 1];
    return index - run->index < run->count ? run->code : 0;
}

/* Call with batch->lock held, or when only one thread can see the batch. */
int hpool__batch_add_failures(hpool__batch *batch, uint64_t index, uint64_t count, int64_t code)
{
    if (hpool__failures_add(&batch->failures, &batch->failure_count, &batch->failure_capacity, index, count, code)
        != 0) {
        /* Never a silent loss: the whole batch counts as failed. */
        if (batch->whole_failed == 0)
            batch->whole_failed = HPOOL_ENOMEM;
        return HPOOL_ENOMEM;
    }
    return 0;
}

int hpool__batch_each_run_that_ran(const hpool__batch *batch, int (*visit)(void *user, uint64_t first, uint64_t count),
                                   void *user)
{
    uint64_t at = batch->first, end = batch->first + batch->count;
    for (size_t f = 0; f <= batch->failure_count; f++) {
        const hpool__failure *failure = f < batch->failure_count ? &batch->failures[f] : NULL;
        if (failure != NULL && !hpool__failure_not_run(failure->code))
            continue;
        uint64_t stop = failure != NULL ? failure->index : end;
        int rc = stop > at ? visit(user, at, stop - at) : 0;
        if (rc != 0)
            return rc;
        if (failure != NULL && failure->index + failure->count > at)
            at = failure->index + failure->count;
    }
    return 0;
}

int hpool__batch_assemble_records(hpool__batch *batch)
{
    size_t bytes = 0;
    for (uint64_t c = 0; c < batch->chunk_count; c++) {
        if (batch->chunk_outputs[c].ends == NULL)
            return HPOOL_ENOMEM; /* that chunk could not record its items' ends */
        bytes += batch->chunk_outputs[c].bytes.size;
    }
    uint64_t *offsets = hpool__malloc((batch->count + 1) * sizeof *offsets + bytes + 1);
    if (offsets == NULL)
        return HPOOL_ENOMEM;
    unsigned char *data = (unsigned char *)(offsets + batch->count + 1);
    uint64_t at = 0, item = 0;
    for (uint64_t c = 0; c < batch->chunk_count; c++) {
        hpool__chunk_output *chunk = &batch->chunk_outputs[c];
        uint64_t items_in_chunk = c + 1 < batch->chunk_count ? batch->chunksize
                                                             : batch->count - c * batch->chunksize;
        for (uint64_t i = 0; i < items_in_chunk; i++)
            offsets[item++] = at + (i == 0 ? 0 : chunk->ends[i - 1]);
        if (chunk->bytes.size > 0)
            memcpy(data + at, chunk->bytes.data, chunk->bytes.size);
        at += chunk->bytes.size;
        hpool__buffer_release(&chunk->bytes);
        free(chunk->ends);
        chunk->ends = NULL;
    }
    offsets[batch->count] = at;
    free(batch->chunk_outputs);
    batch->chunk_outputs = NULL;
    batch->record_offsets = offsets;
    batch->record_data = data;
    return 0;
}
