/* records.c: growable byte buffers and the hpool_records result set. */
#include "internal.h"

#include <sys/mman.h>

#include <stdlib.h>
#include <string.h>

int hpool__buffer_reserve(hpool__buffer *buffer, size_t extra)
{
    if (buffer->capacity - buffer->size >= extra)
        return 0;
    size_t capacity = buffer->capacity ? buffer->capacity : 64;
    while (capacity - buffer->size < extra)
        capacity *= 2;
    unsigned char *grown = realloc(buffer->data, capacity);
    if (grown == NULL)
        return HPOOL_ENOMEM;
    buffer->data = grown;
    buffer->capacity = capacity;
    hpool__advise_huge_pages(grown, capacity);
    return 0;
}

void hpool__advise_huge_pages(void *data, size_t size)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    uintptr_t start = ((uintptr_t)data + huge - 1) & ~(huge - 1), end = ((uintptr_t)data + size) & ~(huge - 1);
    if (end > start)
        (void)madvise((void *)start, end - start, MADV_HUGEPAGE); /* advice: refused is fine */
#else
    (void)data;
    (void)size;
#endif
}

int hpool__buffer_append(hpool__buffer *buffer, const void *data, size_t size)
{
    if (hpool__buffer_reserve(buffer, size) != 0)
        return HPOOL_ENOMEM;
    if (size > 0)
        memcpy(buffer->data + buffer->size, data, size);
    buffer->size += size;
    return 0;
}

void *hpool__grow_array(void *array, size_t *capacity, size_t count, size_t element_size)
{
    if (count < *capacity)
        return array;
    size_t grown_capacity = *capacity ? 2 * *capacity : 8;
    void *grown = realloc(array, grown_capacity * element_size);
    if (grown != NULL)
        *capacity = grown_capacity;
    return grown;
}

void hpool__buffer_release(hpool__buffer *buffer)
{
    free(buffer->data);
    buffer->data = NULL;
    buffer->size = buffer->capacity = 0;
}

/* All records of a call in one block: count + 1 offsets, then the bytes. */
struct hpool_records {
    uint64_t count;
    uint64_t *offsets;
    unsigned char *data;
};

hpool_records *hpool__records_build(hpool__batch **batches, size_t batch_count, uint64_t total)
{
    size_t bytes = 0;
    uint64_t expected_first = 0;
    for (size_t b = 0; b < batch_count; b++) {
        if (batches[b]->first != expected_first)
            return NULL; /* a batch is missing: only after a transport error */
        expected_first += batches[b]->count;
        bytes += batches[b]->record_offsets[batches[b]->count];
    }
    if (expected_first != total)
        return NULL;
    hpool_records *records = malloc(sizeof *records);
    uint64_t *offsets = malloc((total + 1) * sizeof *offsets + bytes + 1);
    if (records == NULL || offsets == NULL) {
        free(records);
        free(offsets);
        return NULL;
    }
    records->count = total;
    records->offsets = offsets;
    records->data = (unsigned char *)(offsets + total + 1);
    uint64_t at = 0, item = 0;
    for (size_t b = 0; b < batch_count; b++) {
        const hpool__batch *batch = batches[b];
        for (uint64_t i = 0; i < batch->count; i++)
            offsets[item++] = at + batch->record_offsets[i];
        size_t size = batch->record_offsets[batch->count];
        if (size > 0)
            memcpy(records->data + at, batch->record_data, size);
        at += size;
    }
    assert(item == total);
    offsets[total] = at;
    return records;
}

uint64_t hpool_records_count(const hpool_records *records)
{
    return records ? records->count : 0;
}

int hpool_records_get(const hpool_records *records, uint64_t i, const void **data, size_t *size)
{
    if (records == NULL || data == NULL || size == NULL || i >= records->count)
        return HPOOL_EINVAL;
    *data = records->data + records->offsets[i];
    *size = records->offsets[i + 1] - records->offsets[i];
    return 0;
}

void hpool_records_free(hpool_records *records)
{
    if (records == NULL)
        return;
    free(records->offsets);
    free(records);
}
