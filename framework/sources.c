/* sources.c: the inputs a call maps over, cut into batches and packed for travel. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static hpool_source *source_new(enum hpool__input_kind kind, uint64_t count)
{
    hpool_source *source = calloc(1, sizeof *source);
    if (source != NULL) {
        source->kind = kind;
        source->count = count;
    }
    return source;
}

int hpool_source_range(hpool_source **source, int64_t start, int64_t stop)
{
    if (source == NULL)
        return HPOOL_EINVAL;
    *source = NULL;
    uint64_t count = stop > start ? (uint64_t)stop - (uint64_t)start : 0;
    hpool_source *made = source_new(HPOOL__RANGE, count);
    if (made == NULL)
        return HPOOL_ENOMEM;
    made->range_start = start;
    *source = made;
    return 0;
}

int hpool_source_array(hpool_source **source, const void *items, size_t item_size, uint64_t count)
{
    if (source == NULL)
        return HPOOL_EINVAL;
    *source = NULL;
    if (item_size == 0 || (items == NULL && count > 0))
        return HPOOL_EINVAL;
    hpool_source *made = source_new(HPOOL__FIXED, count);
    if (made == NULL)
        return HPOOL_ENOMEM;
    made->items = items;
    made->item_size = item_size;
    *source = made;
    return 0;
}

int hpool_source_records(hpool_source **source, const void *const *records, const size_t *sizes,
                         uint64_t count)
{
    if (source == NULL)
        return HPOOL_EINVAL;
    *source = NULL;
    if (records == NULL && count > 0)
        return HPOOL_EINVAL;
    hpool_source *made = source_new(HPOOL__RECORDS, count);
    if (made == NULL)
        return HPOOL_ENOMEM;
    made->records = records;
    made->record_sizes = sizes;
    *source = made;
    return 0;
}

int hpool_source_columns(hpool_source **source, size_t column_count, const void *const *columns,
                         const size_t *sizes, uint64_t count)
{
    if (source == NULL)
        return HPOOL_EINVAL;
    *source = NULL;
    if (column_count == 0 || columns == NULL || sizes == NULL)
        return HPOOL_EINVAL;
    size_t row_size = 0;
    for (size_t j = 0; j < column_count; j++) {
        if (sizes[j] == 0 || (columns[j] == NULL && count > 0))
            return HPOOL_EINVAL;
        row_size += sizes[j];
    }
    hpool_source *made = source_new(HPOOL__COLUMNS, count);
    if (made == NULL)
        return HPOOL_ENOMEM;
    made->columns = malloc(column_count * sizeof *made->columns);
    made->column_sizes = malloc(column_count * sizeof *made->column_sizes);
    if (made->columns == NULL || made->column_sizes == NULL) {
        hpool_source_free(made);
        return HPOOL_ENOMEM;
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
        return HPOOL_EINVAL;
    *source = NULL;
    if (produce == NULL)
        return HPOOL_EINVAL;
    hpool_source *made = source_new(HPOOL__RECORDS, UINT64_MAX);
    if (made == NULL)
        return HPOOL_ENOMEM;
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
        *size = input->offsets[i + 1] - input->offsets[i] - 1; /* the NUL after */
        break;
    }
}

/* ---- Cutting a batch on the root ------------------------------------ */

/* Packs records [first, first + count) of a record source: offsets, then
 * the bytes, each record followed by a NUL. */
static int pack_records(const hpool_source *source, uint64_t first, uint64_t count, hpool__batch *batch)
{
    size_t total = 0;
    for (uint64_t i = 0; i < count; i++) {
        const void *record = source->records[first + i];
        total += (source->record_sizes ? source->record_sizes[first + i] : strlen(record)) + 1;
    }
    uint64_t *offsets = malloc((count + 1) * sizeof *offsets + total + 1);
    if (offsets == NULL)
        return HPOOL_ENOMEM;
    unsigned char *data = (unsigned char *)(offsets + count + 1);
    size_t at = 0;
    for (uint64_t i = 0; i < count; i++) {
        const void *record = source->records[first + i];
        size_t size = source->record_sizes ? source->record_sizes[first + i] : strlen(record);
        offsets[i] = at;
        memcpy(data + at, record, size);
        data[at + size] = '\0';
        at += size + 1;
    }
    offsets[count] = at;
    batch->storage = offsets;
    batch->input.offsets = offsets;
    batch->input.data = data;
    return 0;
}

static int pack_rows(const hpool_source *source, uint64_t first, uint64_t count, hpool__batch *batch)
{
    size_t columns = source->column_count;
    uint64_t *sizes = malloc(columns * sizeof *sizes + count * source->item_size + 1);
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

/* Calls the producer up to max_count times or until max_bytes are packed. */
static int pack_produced(const hpool_source *source, uint64_t max_count, size_t max_bytes,
                         hpool__batch *batch, bool *ended)
{
    hpool__buffer offsets = {0}, data = {0};
    uint64_t count = 0;
    int rc = 0;
    while (count < max_count && data.size < max_bytes) {
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
        uint64_t at = data.size;
        static const unsigned char nul = 0;
        if (hpool__buffer_append(&offsets, &at, sizeof at) != 0 || hpool__buffer_append(&data, item, size) != 0
            || hpool__buffer_append(&data, &nul, 1) != 0) {
            rc = HPOOL_ENOMEM;
            break;
        }
        count++;
    }
    if (rc == 0) {
        uint64_t end = data.size;
        if (hpool__buffer_append(&offsets, &end, sizeof end) != 0)
            rc = HPOOL_ENOMEM;
    }
    if (rc == 0) {
        /* One allocation, offsets then bytes, as pack_records lays it out. */
        uint64_t *packed = malloc(offsets.size + data.size + 1);
        if (packed == NULL) {
            rc = HPOOL_ENOMEM;
        } else {
            memcpy(packed, offsets.data, offsets.size);
            if (data.size > 0)
                memcpy((unsigned char *)packed + offsets.size, data.data, data.size);
            batch->storage = packed;
            batch->input.offsets = packed;
            batch->input.data = (unsigned char *)packed + offsets.size;
            batch->count = count;
        }
    }
    hpool__buffer_release(&offsets);
    hpool__buffer_release(&data);
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

/* ---- Batch messages -------------------------------------------------- */

typedef struct batch_header {
    uint32_t call_id, batch_id;
    int32_t function, reducer, mode, kind;
    uint64_t result_size, first, count, chunksize;
    int64_t range_first;
    uint64_t item_size, column_count, data_size;
} batch_header;

int hpool__batch_encode(const hpool__batch *batch, void **buffer, size_t *size)
{
    const hpool__input *input = &batch->input;
    size_t columns = input->kind == HPOOL__COLUMNS ? input->column_count : 0;
    size_t offsets = input->kind == HPOOL__RECORDS ? batch->count + 1 : 0;
    size_t data_size = 0;
    if (input->kind == HPOOL__FIXED || input->kind == HPOOL__COLUMNS)
        data_size = batch->count * input->item_size;
    else if (input->kind == HPOOL__RECORDS)
        data_size = input->offsets[batch->count];
    size_t total = sizeof(batch_header) + (columns + offsets) * sizeof(uint64_t) + data_size;
    unsigned char *out = malloc(total);
    if (out == NULL)
        return HPOOL_ENOMEM;
    batch_header header = {
        .call_id = batch->call_id, .batch_id = batch->batch_id, .function = batch->function,
        .reducer = batch->reducer, .mode = batch->mode, .kind = input->kind,
        .result_size = batch->result_size, .first = batch->first, .count = batch->count,
        .chunksize = batch->chunksize, .range_first = input->range_first, .item_size = input->item_size,
        .column_count = columns, .data_size = data_size,
    };
    unsigned char *at = out;
    memcpy(at, &header, sizeof header);
    at += sizeof header;
    if (columns > 0) {
        memcpy(at, input->column_sizes, columns * sizeof(uint64_t));
        at += columns * sizeof(uint64_t);
    }
    if (offsets > 0) {
        memcpy(at, input->offsets, offsets * sizeof(uint64_t));
        at += offsets * sizeof(uint64_t);
    }
    if (data_size > 0)
        memcpy(at, input->kind == HPOOL__RECORDS ? input->data : input->items, data_size);
    *buffer = out;
    *size = total;
    return 0;
}

int hpool__batch_decode(void *buffer, size_t size, hpool__batch **batch_out)
{
    batch_header header;
    if (size < sizeof header)
        return HPOOL_EPEER;
    memcpy(&header, buffer, sizeof header);
    size_t offsets = header.kind == HPOOL__RECORDS ? header.count + 1 : 0;
    if (header.kind < HPOOL__RANGE || header.kind > HPOOL__COLUMNS || header.chunksize == 0
        || size != sizeof header + (header.column_count + offsets) * sizeof(uint64_t) + header.data_size)
        return HPOOL_EPEER;
    hpool__batch *batch = hpool__batch_new();
    if (batch == NULL)
        return HPOOL_ENOMEM;
    batch->call_id = header.call_id;
    batch->batch_id = header.batch_id;
    batch->function = header.function;
    batch->reducer = header.reducer;
    batch->mode = header.mode;
    batch->result_size = header.result_size;
    batch->first = header.first;
    batch->count = header.count;
    batch->chunksize = header.chunksize;
    batch->input.kind = header.kind;
    batch->input.range_first = header.range_first;
    batch->input.item_size = header.item_size;
    batch->input.column_count = header.column_count;
    unsigned char *at = (unsigned char *)buffer + sizeof header;
    batch->input.column_sizes = (const uint64_t *)at;
    at += header.column_count * sizeof(uint64_t);
    if (offsets > 0) {
        batch->input.offsets = (const uint64_t *)at;
        at += offsets * sizeof(uint64_t);
        batch->input.data = at;
        if (batch->input.offsets[header.count] != header.data_size) {
            batch->storage = NULL;
            hpool__batch_free(batch);
            return HPOOL_EPEER;
        }
    } else {
        batch->input.items = at;
    }
    batch->storage = buffer;
    *batch_out = batch;
    return 0;
}
