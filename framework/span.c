/* span.c: the public task and span API a map function calls while its chunk runs: inputs, emitted records, failures. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

void hpool__chunk_fail(hpool__chunk_context *chunk, uint64_t index, int64_t code)
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
    hpool__chunk_context *chunk = span->internal;
    static _Thread_local int64_t range_value;
    hpool__input_get(&chunk->batch->input, chunk->offset + i, data, size, &range_value);
    return 0;
}

int hpool_span_emit(hpool_span *span, size_t i, const void *data, size_t size)
{
    if (span == NULL || i >= span->count)
        return HPOOL_EINVAL;
    hpool__chunk_context *chunk = span->internal;
    hpool__chunk_output *output = chunk->output;
    if (output == NULL || i < output->emitted) /* that record is closed */
        return HPOOL_EINVAL;
    hpool__close_records_before(output, i);
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
    hpool__chunk_fail(span->internal, span->first + i, code);
}
