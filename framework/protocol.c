/* protocol.c: encoding and checking every message of protocol.h. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Headers follow the 8-byte envelope and keep what follows them 8-byte
 * aligned, so a receiver reads u64 arrays in place. */
_Static_assert(sizeof(hpool__envelope) == 8, "envelope size");
_Static_assert(sizeof(hpool__batch_header) % 8 == 0, "batch header keeps alignment");
_Static_assert(sizeof(hpool__result_header) % 8 == 0, "result header keeps alignment");
_Static_assert(sizeof(hpool__pairs_header) % 8 == 0, "pairs header keeps alignment");
_Static_assert(sizeof(hpool__run_header) % 8 == 0, "run header keeps alignment");
_Static_assert(sizeof(hpool__failure) == 24, "failure layout: index, count, code");

void hpool__message_write_header(void *message, int type, const void *header, size_t header_size)
{
    hpool__envelope envelope = {HPOOL__PROTOCOL_MAGIC, HPOOL__PROTOCOL_VERSION, (uint16_t)type};
    memcpy(message, &envelope, sizeof envelope);
    if (header_size > 0)
        memcpy((unsigned char *)message + sizeof envelope, header, header_size);
}

int hpool__message_encode(int type, const void *header, size_t header_size, void **buffer, size_t *size)
{
    size_t total = sizeof(hpool__envelope) + header_size;
    void *out = hpool__malloc(total);
    if (out == NULL)
        return HPOOL_ENOMEM;
    hpool__message_write_header(out, type, header, header_size);
    *buffer = out;
    *size = total;
    return 0;
}

int hpool__message_send(hpool__transport *transport, int dest, int type, const void *header, size_t header_size)
{
    void *message;
    size_t size;
    int rc = hpool__message_encode(type, header, header_size, &message, &size);
    return rc != 0 ? rc : hpool__transport_send(transport, dest, type, message, size);
}

int hpool__message_send_to_all(hpool__transport *transport, int except, int type, const void *header,
                               size_t header_size)
{
    if (transport->size == 1)
        return 0;
    void *message;
    size_t size;
    int rc = hpool__message_encode(type, header, header_size, &message, &size);
    return rc != 0 ? rc : hpool__transport_send_to_all(transport, except, type, message, size);
}

int hpool__message_decode(const hpool__message *message, void *header, size_t header_size,
                          const unsigned char **body, size_t *body_size)
{
    hpool__envelope envelope;
    if (message->size < sizeof envelope + header_size)
        return HPOOL_EPEER;
    memcpy(&envelope, message->data, sizeof envelope);
    /* Creation compared the versions, so a mismatch here is a corrupt or
     * foreign message, not an old build. */
    if (envelope.magic != HPOOL__PROTOCOL_MAGIC || envelope.version != HPOOL__PROTOCOL_VERSION
        || envelope.type != message->type)
        return HPOOL_EPEER;
    const unsigned char *at = (const unsigned char *)message->data + sizeof envelope;
    if (header_size > 0)
        memcpy(header, at, header_size);
    if (body != NULL) {
        *body = at + header_size;
        *body_size = message->size - sizeof envelope - header_size;
    }
    return 0;
}

/* ---- BATCH -------------------------------------------------------------- */

int hpool__batch_encode(const hpool__batch *batch, void **buffer, size_t *size)
{
    const hpool__input *input = &batch->input;
    size_t columns = input->kind == HPOOL__COLUMNS ? input->column_count : 0;
    size_t offsets = input->kind == HPOOL__RECORDS ? 2 * batch->count + 1 : 0; /* and sizes */
    size_t data_size = 0;
    if (input->kind == HPOOL__FIXED || input->kind == HPOOL__COLUMNS)
        data_size = batch->count * input->item_size;
    else if (input->kind == HPOOL__RECORDS)
        data_size = input->offsets[batch->count];
    size_t before_argument = (size_t)hpool__round_up((columns + offsets) * sizeof(uint64_t) + data_size, 8);
    size_t total = HPOOL__BODY_OFFSET(hpool__batch_header) + before_argument + batch->argument_size;
    unsigned char *out = hpool__malloc(total);
    if (out == NULL)
        return HPOOL_ENOMEM;
    hpool__batch_header header = {
        .call_id = batch->call_id, .function = batch->function, .reducer = batch->reducer, .mode = batch->mode,
        .kind = input->kind, .result_size = batch->result_size, .first = batch->first, .count = batch->count,
        .chunksize = batch->chunksize, .chunk_count = batch->chunk_count, .block_size = batch->block_size,
        .report_below = batch->report_below, .range_first = input->range_first, .item_size = input->item_size,
        .column_count = columns, .data_size = data_size, .argument_size = batch->argument_size,
    };
    hpool__message_write_header(out, HPOOL__MSG_BATCH, &header, sizeof header);
    unsigned char *at = out + HPOOL__BODY_OFFSET(hpool__batch_header);
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
    unsigned char *body = out + HPOOL__BODY_OFFSET(hpool__batch_header);
    memset(at + data_size, 0, (size_t)(body + before_argument - (at + data_size)));
    if (batch->argument_size > 0)
        memcpy(body + before_argument, batch->argument, batch->argument_size);
    *buffer = out;
    *size = total;
    return 0;
}

/* Whether a batch header's sizes describe a message of body_size bytes,
 * computed without overflow. */
static bool batch_sizes_agree(const hpool__batch_header *header, size_t body_size)
{
    if (header->kind < HPOOL__RANGE || header->kind > HPOOL__COLUMNS)
        return false;
    /* chunk_count is the root's: both sides count the same chunks. */
    bool chunks_agree = header->count == 0 ? header->chunk_count == 0
                                           : header->chunksize > 0 && header->chunksize <= header->count
                                                 && header->chunk_count == hpool__ceil_div(header->count,
                                                                                           header->chunksize);
    if (!chunks_agree)
        return false;
    uint64_t words = body_size / sizeof(uint64_t);
    uint64_t offsets = header->kind == HPOOL__RECORDS ? 2 * header->count + 1 : 0;
    if (header->kind == HPOOL__RECORDS && header->count > words)
        return false;
    if (header->column_count > words || offsets > words - header->column_count)
        return false;
    uint64_t fixed = (header->column_count + offsets) * sizeof(uint64_t);
    /* then the data, padding to 8 bytes, and the argument */
    if (body_size < fixed || header->argument_size > body_size - fixed)
        return false;
    uint64_t data_and_padding = body_size - fixed - header->argument_size;
    return header->data_size <= data_and_padding
           && hpool__round_up(fixed + header->data_size, 8) == fixed + data_and_padding;
}

int hpool__batch_decode(hpool__message *message, hpool__batch **batch_out)
{
    hpool__batch_header header;
    const unsigned char *body;
    size_t body_size;
    if (hpool__message_decode(message, &header, sizeof header, &body, &body_size) != 0
        || !batch_sizes_agree(&header, body_size)) {
        free(message->data);
        return HPOOL_EPEER;
    }
    hpool__batch *batch = hpool__batch_new();
    if (batch == NULL) {
        free(message->data);
        return HPOOL_ENOMEM;
    }
    batch->call_id = header.call_id;
    batch->function = header.function;
    batch->reducer = header.reducer;
    batch->mode = header.mode;
    batch->result_size = header.result_size;
    batch->first = header.first;
    batch->count = header.count;
    batch->chunksize = header.chunksize;
    batch->chunk_count = header.chunk_count;
    batch->block_size = header.block_size;
    batch->report_below = header.report_below;
    batch->input.kind = header.kind;
    batch->input.range_first = header.range_first;
    batch->input.item_size = header.item_size;
    batch->input.column_count = header.column_count;
    batch->storage = message->data;
    batch->argument_size = header.argument_size;
    batch->argument = header.argument_size ? body + body_size - header.argument_size : NULL;
    const unsigned char *at = body;
    batch->input.column_sizes = (const uint64_t *)at;
    at += header.column_count * sizeof(uint64_t);
    if (header.kind == HPOOL__RECORDS) {
        batch->input.offsets = (const uint64_t *)at;
        batch->input.sizes = batch->input.offsets + header.count + 1;
        at += (2 * header.count + 1) * sizeof(uint64_t);
        batch->input.data = at;
        /* every record must lie inside the data */
        bool inside = batch->input.offsets[header.count] == header.data_size;
        for (uint64_t i = 0; inside && i < header.count; i++)
            inside = batch->input.offsets[i] <= header.data_size
                     && batch->input.sizes[i] <= header.data_size - batch->input.offsets[i];
        if (!inside) {
            hpool__batch_free(batch);
            return HPOOL_EPEER;
        }
    } else {
        batch->input.items = at;
        bool sized = header.kind == HPOOL__RANGE
                     || (header.item_size == 0 ? header.data_size == 0
                                               : header.count <= header.data_size / header.item_size
                                                     && header.data_size == header.count * header.item_size);
        if (header.kind == HPOOL__COLUMNS) {
            uint64_t row = 0;
            for (uint64_t j = 0; j < header.column_count; j++)
                row += batch->input.column_sizes[j];
            sized = sized && row == header.item_size;
        }
        if (!sized) {
            hpool__batch_free(batch);
            return HPOOL_EPEER;
        }
    }
    *batch_out = batch;
    return 0;
}

/* ---- RESULT ------------------------------------------------------------- */

static size_t result_data_size(const hpool__batch *batch)
{
    if (batch->whole_failed != 0)
        return 0;
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
    size_t failure_count = batch->whole_failed != 0 ? 0 : batch->failure_count;
    size_t failures = failure_count * sizeof(hpool__failure);
    size_t total = HPOOL__BODY_OFFSET(hpool__result_header) + failures + data_size;
    unsigned char *out = hpool__malloc(total);
    if (out == NULL)
        return HPOOL_ENOMEM;
    hpool__result_header header = {
        .call_id = batch->call_id, .mode = batch->mode, .reducer = batch->reducer, .first = batch->first,
        .count = batch->count, .chunk_count = batch->chunk_count, .result_size = batch->result_size,
        .block_size = batch->block_size, .timed_ns = atomic_load(&batch->timed_ns),
        .timed_items = atomic_load(&batch->timed_items), .failure_count = failure_count,
        .data_size = data_size, .chunks_completed = chunks_completed, .whole_failed = batch->whole_failed,
    };
    hpool__message_write_header(out, HPOOL__MSG_RESULT, &header, sizeof header);
    unsigned char *at = out + HPOOL__BODY_OFFSET(hpool__result_header);
    if (failures > 0) {
        memcpy(at, batch->failures, failures);
        at += failures;
    }
    switch (batch->whole_failed != 0 ? HPOOL__NO_RESULT : batch->mode) {
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
    case HPOOL__KEYED:
        break;
    }
    *buffer = out;
    *size = total;
    return 0;
}

/* Whether the result's data is as big as its mode says. */
static bool result_sizes_agree(const hpool__result_header *header, uint64_t partials)
{
    if (header->whole_failed != 0)
        return header->whole_failed < 0 && header->data_size == 0 && header->failure_count == 0;
    switch (header->mode) {
    case HPOOL__FIXED_RESULT:
        if (header->result_size == 0)
            return header->data_size == 0;
        return header->count <= header->data_size / header->result_size
               && header->data_size == header->count * header->result_size;
    case HPOOL__RECORD_RESULT:
        return header->count < header->data_size / sizeof(uint64_t);
    case HPOOL__REDUCE:
        return header->result_size > 0 && partials <= header->data_size / header->result_size
               && header->data_size == header->result_size * partials;
    case HPOOL__NO_RESULT:
    case HPOOL__KEYED:
        return header->data_size == 0;
    }
    return false;
}

int hpool__result_decode(hpool__message *message, hpool__batch **batch_out)
{
    hpool__result_header header;
    const unsigned char *at;
    size_t body_size;
    int rc = hpool__message_decode(message, &header, sizeof header, &at, &body_size);
    if (rc == 0 && (header.failure_count > body_size / sizeof(hpool__failure)
                    || body_size != header.failure_count * sizeof(hpool__failure) + header.data_size))
        rc = HPOOL_EPEER;
    hpool__batch *batch = rc == 0 ? hpool__batch_new() : NULL;
    if (rc == 0 && batch == NULL)
        rc = HPOOL_ENOMEM;
    if (rc != 0) {
        free(message->data);
        return rc;
    }
    batch->storage = message->data;
    batch->call_id = header.call_id;
    batch->mode = header.mode;
    batch->reducer = header.reducer;
    batch->first = header.first;
    batch->count = header.count;
    batch->chunk_count = header.chunk_count;
    batch->sender_chunks_completed = header.chunks_completed;
    batch->result_size = header.result_size;
    batch->block_size = header.block_size;
    batch->whole_failed = header.whole_failed;
    if (!result_sizes_agree(&header, hpool__batch_partials(batch))) {
        hpool__batch_free(batch);
        return HPOOL_EPEER;
    }
    atomic_store(&batch->timed_ns, header.timed_ns);
    atomic_store(&batch->timed_items, header.timed_items);
    if (header.failure_count > 0) {
        /* copied out, so the batch may add its own and free them alike */
        batch->failures = hpool__malloc(header.failure_count * sizeof(hpool__failure));
        if (batch->failures == NULL) {
            hpool__batch_free(batch);
            return HPOOL_ENOMEM;
        }
        memcpy(batch->failures, at, header.failure_count * sizeof(hpool__failure));
        batch->failure_count = batch->failure_capacity = header.failure_count;
        at += header.failure_count * sizeof(hpool__failure);
        for (size_t f = 0; f < batch->failure_count; f++) {
            if (!hpool__failure_inside(&batch->failures[f], batch->first, batch->count)) {
                hpool__batch_free(batch); /* failed runs outside the batch's items */
                return HPOOL_EPEER;
            }
        }
    }
    switch (batch->whole_failed != 0 ? HPOOL__NO_RESULT : batch->mode) {
    case HPOOL__FIXED_RESULT:
        batch->results = (unsigned char *)at; /* inside storage, not owned separately */
        break;
    case HPOOL__RECORD_RESULT: {
        /* record_offsets is freed with the batch: copy it out of storage */
        size_t offsets = (header.count + 1) * sizeof(uint64_t);
        batch->record_offsets = hpool__malloc(header.data_size + 1);
        if (batch->record_offsets == NULL) {
            hpool__batch_free(batch);
            return HPOOL_ENOMEM;
        }
        memcpy(batch->record_offsets, at, header.data_size);
        batch->record_data = (unsigned char *)batch->record_offsets + offsets;
        /* offsets rise within the records' bytes */
        bool inside = batch->record_offsets[0] == 0
                      && batch->record_offsets[header.count] == header.data_size - offsets;
        for (uint64_t i = 0; inside && i < header.count; i++)
            inside = batch->record_offsets[i] <= batch->record_offsets[i + 1];
        if (!inside) {
            hpool__batch_free(batch);
            return HPOOL_EPEER;
        }
        break;
    }
    case HPOOL__REDUCE:
        batch->accumulator = hpool__malloc(header.data_size ? header.data_size : 1);
        if (batch->accumulator == NULL) {
            hpool__batch_free(batch);
            return HPOOL_ENOMEM;
        }
        memcpy(batch->accumulator, at, header.data_size);
        break;
    case HPOOL__NO_RESULT:
    case HPOOL__KEYED:
        break;
    }
    *batch_out = batch;
    return 0;
}
