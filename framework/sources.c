/* sources.c: the inputs a call maps over, and cutting them into batches. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static hpool_source *source_new(enum hpool__input_kind kind, uint64_t count)
{
    hpool_source *source = hpool__calloc(1, sizeof *source);
    if (source != NULL) {
        source->kind = kind;
        source->count = count;
    }
    return source;
}

int hpool_source_range(hpool_source **source, int64_t start, int64_t stop)
{
    if (source == NULL)
        return hpool__fail(HPOOL_EINVAL, "hpool_source_range: source is NULL");
    *source = NULL;
    uint64_t count = stop > start ? (uint64_t)stop - (uint64_t)start : 0;
    hpool_source *made = source_new(HPOOL__RANGE, count);
    if (made == NULL)
        return hpool__fail(HPOOL_ENOMEM, "hpool_source_range: no memory for a source");
    made->range_start = start;
    *source = made;
    return 0;
}

int hpool_source_array(hpool_source **source, const void *items, size_t item_size, uint64_t count)
{
    if (source == NULL)
        return hpool__fail(HPOOL_EINVAL, "hpool_source_array: source is NULL");
    *source = NULL;
    if (item_size == 0)
        return hpool__fail(HPOOL_EINVAL, "hpool_source_array: item_size is 0");
    if (items == NULL && count > 0)
        return hpool__fail(HPOOL_EINVAL, "hpool_source_array: items is NULL, for %llu items",
                           (unsigned long long)count);
    hpool_source *made = source_new(HPOOL__FIXED, count);
    if (made == NULL)
        return hpool__fail(HPOOL_ENOMEM, "hpool_source_array: no memory for a source");
    made->items = items;
    made->item_size = item_size;
    *source = made;
    return 0;
}

int hpool_source_records(hpool_source **source, const void *const *records, const size_t *sizes,
                         uint64_t count)
{
    if (source == NULL)
        return hpool__fail(HPOOL_EINVAL, "hpool_source_records: source is NULL");
    *source = NULL;
    if (records == NULL && count > 0)
        return hpool__fail(HPOOL_EINVAL, "hpool_source_records: records is NULL, for %llu records",
                           (unsigned long long)count);
    /* Checked here, once, rather than found by a worker that packs it. */
    for (uint64_t i = 0; i < count; i++)
        if (records[i] == NULL && (sizes == NULL || sizes[i] > 0))
            return hpool__fail(HPOOL_EINVAL, sizes == NULL ? "hpool_source_records: record %llu is NULL (sizes is NULL, "
                                                             "so each record must be a NUL-terminated string)"
                                                           : "hpool_source_records: record %llu is NULL, with a size "
                                                             "of %zu bytes",
                               (unsigned long long)i, sizes == NULL ? (size_t)0 : sizes[i]);
    hpool_source *made = source_new(HPOOL__RECORDS, count);
    if (made == NULL)
        return hpool__fail(HPOOL_ENOMEM, "hpool_source_records: no memory for a source");
    made->records = records;
    made->record_sizes = sizes;
    *source = made;
    return 0;
}

int hpool_source_columns(hpool_source **source, size_t column_count, const void *const *columns,
                         const size_t *sizes, uint64_t count)
{
    if (source == NULL)
        return hpool__fail(HPOOL_EINVAL, "hpool_source_columns: source is NULL");
    *source = NULL;
    if (column_count == 0 || columns == NULL || sizes == NULL)
        return hpool__fail(HPOOL_EINVAL, "hpool_source_columns: %s", column_count == 0 ? "column_count is 0"
                                                                     : columns == NULL ? "columns is NULL"
                                                                                       : "sizes is NULL");
    size_t row_size = 0;
    for (size_t j = 0; j < column_count; j++) {
        if (sizes[j] == 0)
            return hpool__fail(HPOOL_EINVAL, "hpool_source_columns: sizes[%zu] is 0", j);
        if (columns[j] == NULL && count > 0)
            return hpool__fail(HPOOL_EINVAL, "hpool_source_columns: columns[%zu] is NULL", j);
        row_size += sizes[j];
    }
    hpool_source *made = source_new(HPOOL__COLUMNS, count);
    if (made == NULL)
        return hpool__fail(HPOOL_ENOMEM, "hpool_source_columns: no memory for a source");
    made->columns = hpool__malloc(column_count * sizeof *made->columns);
    made->column_sizes = hpool__malloc(column_count * sizeof *made->column_sizes);
    if (made->columns == NULL || made->column_sizes == NULL) {
        hpool_source_free(made);
        return hpool__fail(HPOOL_ENOMEM, "hpool_source_columns: no memory for %zu columns", column_count);
    }
    memcpy(made->columns, columns, column_count * sizeof *made->columns);
    memcpy(made->column_sizes, sizes, column_count * sizeof *made->column_sizes);
    made->column_count = column_count;
    made->item_size = row_size;
    *source = made;
    return 0;
}

int hpool_source_producer(hpool_source **source, hpool_produce_fn *produce, void *user)
{
    if (source == NULL)
        return hpool__fail(HPOOL_EINVAL, "hpool_source_producer: source is NULL");
    *source = NULL;
    if (produce == NULL)
        return hpool__fail(HPOOL_EINVAL, "hpool_source_producer: produce is NULL");
    hpool_source *made = source_new(HPOOL__RECORDS, UINT64_MAX);
    if (made == NULL)
        return hpool__fail(HPOOL_ENOMEM, "hpool_source_producer: no memory for a source");
    made->is_producer = true;
    made->produce = produce;
    made->produce_user = user;
    *source = made;
    return 0;
}

void hpool_source_free(hpool_source *source)
{
    if (source == NULL)
        return;
    free(source->columns);
    free(source->column_sizes);
    free(source);
}

void hpool__input_get(const hpool__input *input, uint64_t i, const void **data, size_t *size,
                      int64_t *range_value)
{
    switch (input->kind) {
    case HPOOL__RANGE:
        *range_value = input->range_first + (int64_t)i;
        *data = range_value;
        *size = sizeof *range_value;
        break;
    case HPOOL__FIXED:
    case HPOOL__COLUMNS:
        *data = input->items + i * input->item_size;
        *size = input->item_size;
        break;
    case HPOOL__RECORDS:
        *data = input->data + input->offsets[i];
        *size = input->sizes[i];
        break;
    }
}

/* ---- Cutting a batch on the root ------------------------------------ */

static size_t padded_record_size(size_t size)
{
    return (size_t)hpool__round_up(size + 1, 8); /* the NUL, then up to 8 bytes */
}

/* Lays out count records in one allocation, offsets, sizes, then the bytes:
 * record(i, &data, &size) gives record i. */
static int pack(uint64_t count, int (*record)(uint64_t i, const void **data, size_t *size, void *user), void *user,
                hpool__batch *batch)
{
    size_t total = 0;
    for (uint64_t i = 0; i < count; i++) {
        const void *data;
        size_t size;
        record(i, &data, &size, user);
        total += padded_record_size(size);
    }
    uint64_t *offsets = hpool__malloc((2 * count + 1) * sizeof *offsets + total + 8);
    if (offsets == NULL)
        return HPOOL_ENOMEM;
    uint64_t *sizes = offsets + count + 1;
    unsigned char *bytes = (unsigned char *)(sizes + count);
    size_t at = 0;
    for (uint64_t i = 0; i < count; i++) {
        const void *data;
        size_t size;
        record(i, &data, &size, user);
        offsets[i] = at;
        sizes[i] = size;
        if (size > 0)
            memcpy(bytes + at, data, size);
        memset(bytes + at + size, 0, padded_record_size(size) - size);
        at += padded_record_size(size);
    }
    offsets[count] = at;
    batch->storage = offsets;
    batch->input.offsets = offsets;
    batch->input.sizes = sizes;
    batch->input.data = bytes;
    return 0;
}

typedef struct source_slice {
    const hpool_source *source;
    uint64_t first;
} source_slice;

static int source_record(uint64_t i, const void **data, size_t *size, void *user)
{
    const source_slice *slice = user;
    const hpool_source *source = slice->source;
    *data = source->records[slice->first + i];
    *size = source->record_sizes ? source->record_sizes[slice->first + i] : strlen(*data);
    return 0;
}

/* Packs records [first, first + count) of a record source. */
static int pack_records(const hpool_source *source, uint64_t first, uint64_t count, hpool__batch *batch)
{
    source_slice slice = {source, first};
    return pack(count, source_record, &slice, batch);
}

static int pack_rows(const hpool_source *source, uint64_t first, uint64_t count, hpool__batch *batch)
{
    size_t columns = source->column_count;
    uint64_t *sizes = hpool__malloc(columns * sizeof *sizes + count * source->item_size + 1);
    if (sizes == NULL)
        return HPOOL_ENOMEM;
    unsigned char *rows = (unsigned char *)(sizes + columns);
    for (size_t j = 0; j < columns; j++)
        sizes[j] = source->column_sizes[j];
    unsigned char *out = rows;
    for (uint64_t i = 0; i < count; i++)
        for (size_t j = 0; j < columns; j++) {
            memcpy(out, (const unsigned char *)source->columns[j] + (first + i) * sizes[j], sizes[j]);
            out += sizes[j];
        }
    batch->storage = sizes;
    batch->input.items = rows;
    batch->input.item_size = source->item_size;
    batch->input.column_count = columns;
    batch->input.column_sizes = sizes;
    return 0;
}

/* What a producer gave: its items copied one after another. */
typedef struct produced {
    hpool__buffer sizes, bytes;
    size_t next_offset;
} produced;

static int produced_record(uint64_t i, const void **data, size_t *size, void *user)
{
    produced *items = user;
    if (i == 0)
        items->next_offset = 0;
    *size = ((const size_t *)items->sizes.data)[i];
    *data = items->bytes.data + items->next_offset;
    items->next_offset += *size;
    return 0;
}

/* Calls the producer up to max_count times or until max_bytes are packed. */
static int pack_produced(const hpool_source *source, uint64_t max_count, size_t max_bytes,
                         hpool__batch *batch, bool *ended)
{
    produced items = {{0}, {0}, 0};
    uint64_t count = 0;
    int rc = 0;
    while (count < max_count && items.bytes.size < max_bytes) {
        const void *item = NULL;
        size_t size = 0;
        rc = source->produce(&item, &size, source->produce_user);
        if (rc == HPOOL_EOF) {
            *ended = true;
            rc = 0;
            break;
        }
        if (rc != 0) {
            rc = rc < 0 ? rc : HPOOL_EIO;
            break;
        }
        if (hpool__buffer_append(&items.sizes, &size, sizeof size) != 0
            || hpool__buffer_append(&items.bytes, item, size) != 0) {
            rc = HPOOL_ENOMEM;
            break;
        }
        count++;
    }
    if (rc == 0) {
        rc = pack(count, produced_record, &items, batch);
        batch->count = count;
    }
    hpool__buffer_release(&items.sizes);
    hpool__buffer_release(&items.bytes);
    return rc;
}

int hpool__source_cut(const hpool_source *source, uint64_t first, uint64_t max_count, size_t max_bytes,
                      hpool__batch *batch, bool *ended)
{
    batch->first = first;
    batch->input.kind = source->kind;
    if (source->is_producer)
        return pack_produced(source, max_count, max_bytes, batch, ended);
    uint64_t count = source->count - first < max_count ? source->count - first : max_count;
    batch->count = count;
    *ended = first + count >= source->count;
    switch (source->kind) {
    case HPOOL__RANGE:
        batch->input.range_first = source->range_start + (int64_t)first;
        return 0;
    case HPOOL__FIXED:
        batch->input.items = source->items + first * source->item_size;
        batch->input.item_size = source->item_size;
        return 0;
    case HPOOL__RECORDS:
        return pack_records(source, first, count, batch);
    case HPOOL__COLUMNS:
        return pack_rows(source, first, count, batch);
    }
    return HPOOL_EINVAL;
}

/* Bytes of input per item, to bound a batch's size. */
size_t hpool__source_item_bytes(const hpool_source *source)
{
    switch (source->kind) {
    case HPOOL__RANGE:
        return 0;
    case HPOOL__FIXED:
    case HPOOL__COLUMNS:
        return source->item_size;
    case HPOOL__RECORDS:
        return 64; /* a guess; producers are bounded by bytes as they go */
    }
    return 0;
}
