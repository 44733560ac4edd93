/* records.c: the hpool_records result set of a map with variable-size results. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

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
    hpool_records *records = hpool__malloc(sizeof *records);
    uint64_t *offsets = hpool__malloc((total + 1) * sizeof *offsets + bytes + 1);
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
    if (records == NULL || data == NULL || size == NULL)
        return hpool__fail(HPOOL_EINVAL, "hpool_records_get: records, data or size is NULL");
    if (i >= records->count)
        return hpool__fail(HPOOL_EINVAL, "hpool_records_get: record %llu of %llu", (unsigned long long)i,
                           (unsigned long long)records->count);
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
