/* span.c: the public task and span API a map function calls while its chunk runs: inputs, emitted records, failures. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

void hpool__chunk_fail(hpool__chunk_context *chunk, uint64_t index, uint64_t count, int64_t code)
{
    if (hpool__failures_add(&chunk->failures, &chunk->failure_count, &chunk->failure_capacity, index, count, code)
        != 0)
        chunk->error = HPOOL_ENOMEM;
}

int hpool_span_input(const hpool_span *span, size_t i, const void **data, size_t *size)
{
    if (span == NULL || data == NULL || size == NULL)
        return hpool__fail(HPOOL_EINVAL, "hpool_span_input: span, data or size is NULL");
    if (i >= span->count)
        return hpool__fail(HPOOL_EINVAL, "hpool_span_input: item %zu of a span of %zu", i, span->count);
    hpool__chunk_context *chunk = span->internal;
    static _Thread_local int64_t range_value;
    hpool__input_get(&chunk->batch->input, chunk->offset + i, data, size, &range_value);
    return 0;
}

int hpool_span_emit(hpool_span *span, size_t i, const void *data, size_t size)
{
    if (span == NULL)
        return hpool__fail(HPOOL_EINVAL, "hpool_span_emit: span is NULL");
    if (i >= span->count)
        return hpool__fail(HPOOL_EINVAL, "hpool_span_emit: item %zu of a span of %zu", i, span->count);
    hpool__chunk_context *chunk = span->internal;
    hpool__chunk_output *output = chunk->output;
    if (output == NULL)
        return hpool__fail(HPOOL_EINVAL, "hpool_span_emit: the call has no variable-size results (call.records, "
                                         "or hpool_imap with result_size 0)");
    if (i < output->emitted) /* that record is closed */
        return hpool__fail(HPOOL_EINVAL, "hpool_span_emit: item %zu after item %zu: emit in increasing order", i,
                           output->emitted);
    hpool__close_records_before(output, i);
    if (hpool__buffer_append(&output->bytes, data, size) != 0)
        return hpool__fail(HPOOL_ENOMEM, "hpool_span_emit: no memory for %zu more bytes of results", size);
    return 0;
}

int hpool_task_emit(hpool_task *task, const void *data, size_t size)
{
    if (task == NULL || task->span == NULL)
        return hpool__fail(HPOOL_EINVAL, "hpool_task_emit: task is NULL, or not one hpool made");
    return hpool_span_emit(task->span, task->index - task->span->first, data, size);
}

void hpool_span_fail(hpool_span *span, size_t i, int code)
{
    if (span == NULL || i >= span->count || code == 0)
        return;
    hpool__chunk_fail(span->internal, span->first + i, 1, code);
}
