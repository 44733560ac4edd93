/* batch.c: a batch's lifetime, its outputs, and the result messages that carry them. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

hpool__batch *hpool__batch_new(void)
{
    hpool__batch *batch = calloc(1, sizeof *batch);
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
    uint64_t blocks = (batch->count + batch->block_size - 1) / batch->block_size;
    return blocks ? blocks : 1;
}

/* Call with batch->lock held, or when only one thread can see the batch. */
int hpool__batch_add_failure(hpool__batch *batch, uint64_t index, int64_t code)
{
    hpool__failure *grown =
        hpool__grow_array(batch->failures, &batch->failure_capacity, batch->failure_count, sizeof *grown);
    if (grown == NULL)
        return HPOOL_ENOMEM;
    batch->failures = grown;
    batch->failures[batch->failure_count++] = (hpool__failure){index, code};
    return 0;
}

int hpool__batch_assemble_records(hpool__batch *batch)
{
    size_t bytes = 0;
    for (uint64_t c = 0; c < batch->chunk_count; c++)
        bytes += batch->chunk_outputs[c].bytes.size;
    uint64_t *offsets = malloc((batch->count + 1) * sizeof *offsets + bytes + 1);
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

/* ---- Result messages: a finished batch on its way to the root ------- */

typedef struct result_header {
    uint32_t call_id, batch_id;
    int32_t mode, reducer;
    uint64_t first, count, chunk_count, result_size, block_size, timed_ns, timed_items, failure_count, data_size;
    uint64_t sender_chunks_completed;
} result_header;

static size_t result_data_size(const hpool__batch *batch)
{
    switch (batch->mode) {
    case HPOOL__FIXED_RESULT:
        return batch->count * batch->result_size;
    case HPOOL__RECORD_RESULT:
        return (batch->count + 1) * sizeof(uint64_t) + batch->record_offsets[batch->count];
    case HPOOL__REDUCE:
        return batch->result_size * hpool__batch_partials(batch);
    case HPOOL__NO_RESULT:
    case HPOOL__KEYED: /* its pairs stay in the rank's store */
        break;
    }
    return 0;
}

int hpool__result_encode(hpool__batch *batch, uint64_t chunks_completed, void **buffer, size_t *size)
{
    size_t data_size = result_data_size(batch);
    size_t total = sizeof(result_header) + batch->failure_count * sizeof(hpool__failure) + data_size;
    unsigned char *out = malloc(total);
    if (out == NULL)
        return HPOOL_ENOMEM;
    result_header header = {
        .call_id = batch->call_id, .batch_id = batch->batch_id, .mode = batch->mode,
        .reducer = batch->reducer, .first = batch->first, .count = batch->count, .chunk_count = batch->chunk_count,
        .sender_chunks_completed = chunks_completed, .result_size = batch->result_size, .block_size = batch->block_size, .timed_ns = atomic_load(&batch->timed_ns), .timed_items = atomic_load(&batch->timed_items),
        .failure_count = batch->failure_count, .data_size = data_size,
    };
    unsigned char *at = out;
    memcpy(at, &header, sizeof header);
    at += sizeof header;
    if (batch->failure_count > 0) {
        memcpy(at, batch->failures, batch->failure_count * sizeof(hpool__failure));
        at += batch->failure_count * sizeof(hpool__failure);
    }
    switch (batch->mode) {
    case HPOOL__FIXED_RESULT:
        memcpy(at, batch->results, data_size);
        break;
    case HPOOL__RECORD_RESULT: {
        size_t offsets = (batch->count + 1) * sizeof(uint64_t);
        memcpy(at, batch->record_offsets, offsets);
        memcpy(at + offsets, batch->record_data, data_size - offsets);
        break;
    }
    case HPOOL__REDUCE:
        memcpy(at, batch->accumulator, data_size);
        break;
    case HPOOL__NO_RESULT:
    case HPOOL__KEYED: /* its pairs stay in the rank's store */
        break;
    }
    *buffer = out;
    *size = total;
    return 0;
}

/* The batch returned points into buffer, which it now owns. */
int hpool__result_decode(void *buffer, size_t size, hpool__batch **batch_out)
{
    result_header header;
    if (size < sizeof header)
        return HPOOL_EPEER;
    memcpy(&header, buffer, sizeof header);
    if (size != sizeof header + header.failure_count * sizeof(hpool__failure) + header.data_size)
        return HPOOL_EPEER;
    hpool__batch *batch = hpool__batch_new();
    if (batch == NULL)
        return HPOOL_ENOMEM;
    batch->call_id = header.call_id;
    batch->batch_id = header.batch_id;
    batch->mode = header.mode;
    batch->reducer = header.reducer;
    batch->first = header.first;
    batch->count = header.count;
    batch->chunk_count = header.chunk_count;
    batch->sender_chunks_completed = header.sender_chunks_completed;
    batch->result_size = header.result_size;
    batch->block_size = header.block_size;
    if (header.mode == HPOOL__REDUCE && header.data_size != header.result_size * hpool__batch_partials(batch)) {
        hpool__batch_free(batch);
        return HPOOL_EPEER;
    }
    atomic_store(&batch->timed_ns, header.timed_ns);
    atomic_store(&batch->timed_items, header.timed_items);
    unsigned char *at = (unsigned char *)buffer + sizeof header;
    if (header.failure_count > 0) {
        /* copied out, so the batch may add its own and free them alike */
        batch->failures = malloc(header.failure_count * sizeof(hpool__failure));
        if (batch->failures == NULL) {
            hpool__batch_free(batch);
            return HPOOL_ENOMEM;
        }
        memcpy(batch->failures, at, header.failure_count * sizeof(hpool__failure));
        batch->failure_count = batch->failure_capacity = header.failure_count;
        at += header.failure_count * sizeof(hpool__failure);
    }
    switch (batch->mode) {
    case HPOOL__FIXED_RESULT:
        batch->results = at; /* inside storage, not owned separately */
        break;
    case HPOOL__RECORD_RESULT: {
        /* record_offsets is freed with the batch: copy it out of storage */
        size_t offsets = (header.count + 1) * sizeof(uint64_t);
        batch->record_offsets = malloc(offsets + (header.data_size - offsets) + 1);
        if (batch->record_offsets == NULL) {
            hpool__batch_free(batch);
            return HPOOL_ENOMEM;
        }
        memcpy(batch->record_offsets, at, header.data_size);
        batch->record_data = (unsigned char *)batch->record_offsets + offsets;
        break;
    }
    case HPOOL__REDUCE:
        batch->accumulator = malloc(header.data_size ? header.data_size : 1);
        if (batch->accumulator == NULL) {
            hpool__batch_free(batch);
            return HPOOL_ENOMEM;
        }
        memcpy(batch->accumulator, at, header.data_size);
        break;
    case HPOOL__NO_RESULT:
    case HPOOL__KEYED: /* its pairs stay in the rank's store */
        break;
    }
    batch->storage = buffer;
    *batch_out = batch;
    return 0;
}
