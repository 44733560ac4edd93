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

/* Call with batch->lock held, or when only one thread can see the batch. */
int hpool__batch_add_failure(hpool__batch *batch, uint64_t index, int64_t code)
{
    hpool__failure *grown =
        hpool__grow_array(batch->failures, &batch->failure_capacity, batch->failure_count, sizeof *grown);
    if (grown == NULL) {
        /* Never a silent loss: the whole batch counts as failed. */
        if (batch->whole_failed == 0)
            batch->whole_failed = HPOOL_ENOMEM;
        return HPOOL_ENOMEM;
    }
    batch->failures = grown;
    batch->failures[batch->failure_count++] = (hpool__failure){index, code};
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
