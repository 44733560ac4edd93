/* test_protocol.c: every message of framework/protocol.h round-trips, and a cut, foreign or corrupt one is refused. */
#include "check.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* A received message made of a copy of bytes, as the transport hands it. */
static hpool__message received(int type, const void *bytes, size_t size)
{
    void *copy = malloc(size ? size : 1);
    memcpy(copy, bytes, size);
    return (hpool__message){.type = type, .source = 1, .data = copy, .size = size};
}

/* Every truncation, a flipped magic, version and type: all HPOOL_EPEER,
 * and none reads past the bytes it was given (ASan watches). */
static void check_refused(int type, const void *bytes, size_t size,
                          int (*decode)(hpool__message *message, hpool__batch **batch))
{
    for (size_t cut = 0; cut < size; cut++) {
        hpool__message message = received(type, bytes, cut);
        hpool__batch *batch = NULL;
        int rc = decode(&message, &batch);
        if (rc != HPOOL_EPEER)
            fprintf(stderr, "cut at %zu of %zu\n", cut, size);
        CHECK_RC(HPOOL_EPEER, rc);
        CHECK(batch == NULL);
    }
    hpool__envelope envelope;
    memcpy(&envelope, bytes, sizeof envelope);
    for (int field = 0; field < 3; field++) {
        hpool__envelope wrong = envelope;
        if (field == 0)
            wrong.magic = __builtin_bswap32(wrong.magic); /* another byte order */
        else if (field == 1)
            wrong.version++;                              /* another build */
        unsigned char *copy = malloc(size);
        memcpy(copy, bytes, size);
        memcpy(copy, &wrong, sizeof wrong);
        hpool__message message = received(field == 2 ? type + 1 : type, copy, size); /* field 2: the wrong tag */
        free(copy);
        hpool__batch *batch = NULL;
        CHECK_RC(HPOOL_EPEER, decode(&message, &batch));
    }
}

static hpool__batch *cut(const hpool_source *source, uint64_t first, uint64_t count, uint64_t chunksize)
{
    hpool__batch *batch = hpool__batch_new();
    bool ended = false;
    CHECK_RC(0, hpool__source_cut(source, first, count, 1 << 20, batch, &ended));
    batch->call_id = 7;
    batch->function = 0;
    batch->mode = HPOOL__FIXED_RESULT;
    batch->result_size = 8;
    batch->chunksize = chunksize;
    batch->chunk_count = hpool__ceil_div(batch->count, chunksize);
    batch->report_below = 12;
    return batch;
}

/* Encodes batch, decodes it, and checks that every input item survived. */
static void round_trip_batch(hpool__batch *batch)
{
    void *bytes;
    size_t size;
    CHECK_RC(0, hpool__batch_encode(batch, &bytes, &size));
    hpool__message message = received(HPOOL__MSG_BATCH, bytes, size);
    hpool__batch *decoded = NULL;
    CHECK_RC(0, hpool__batch_decode(&message, &decoded));
    if (decoded != NULL) {
        CHECK(decoded->call_id == 7 && decoded->count == batch->count && decoded->first == batch->first);
        CHECK(decoded->chunksize == batch->chunksize && decoded->chunk_count == batch->chunk_count);
        CHECK(decoded->report_below == 12 && decoded->mode == HPOOL__FIXED_RESULT && decoded->result_size == 8);
        for (uint64_t i = 0; i < batch->count; i++) {
            const void *a, *b;
            size_t a_size, b_size;
            int64_t a_range, b_range;
            hpool__input_get(&batch->input, i, &a, &a_size, &a_range);
            hpool__input_get(&decoded->input, i, &b, &b_size, &b_range);
            CHECK(a_size == b_size && memcmp(a, b, a_size) == 0);
        }
        hpool__batch_free(decoded);
    }
    check_refused(HPOOL__MSG_BATCH, bytes, size, hpool__batch_decode);
    free(bytes);
}

static void test_batches(void)
{
    hpool_source *source;
    CHECK_RC(0, hpool_source_range(&source, -5, 100));
    hpool__batch *batch = cut(source, 3, 10, 4);
    round_trip_batch(batch);
    hpool__batch_free(batch);
    hpool_source_free(source);

    uint32_t numbers[40];
    for (int i = 0; i < 40; i++)
        numbers[i] = (uint32_t)(i * 2654435761u);
    CHECK_RC(0, hpool_source_array(&source, numbers, sizeof numbers[0], 40));
    batch = cut(source, 5, 30, 7);
    round_trip_batch(batch);
    hpool__batch_free(batch);
    hpool_source_free(source);

    const char *words[] = {"", "a", "seven b", "a longer record than eight bytes", "x"};
    CHECK_RC(0, hpool_source_records(&source, (const void *const *)words, NULL, 5));
    batch = cut(source, 0, 5, 2);
    round_trip_batch(batch);
    hpool__batch_free(batch);
    hpool_source_free(source);

    double weights[6] = {1, 2, 3, 4, 5, 6};
    int16_t ids[6] = {-1, 2, -3, 4, -5, 6};
    const void *columns[2] = {weights, ids};
    size_t sizes[2] = {sizeof weights[0], sizeof ids[0]};
    CHECK_RC(0, hpool_source_columns(&source, 2, columns, sizes, 6));
    batch = cut(source, 1, 5, 5);
    round_trip_batch(batch);
    hpool__batch_free(batch);
    hpool_source_free(source);
}

/* A batch header whose counts disagree with its bytes is refused. */
static void test_inconsistent_batch(void)
{
    const char *words[] = {"one", "two", "three"};
    hpool_source *source;
    CHECK_RC(0, hpool_source_records(&source, (const void *const *)words, NULL, 3));
    hpool__batch *batch = cut(source, 0, 3, 1);
    void *bytes;
    size_t size;
    CHECK_RC(0, hpool__batch_encode(batch, &bytes, &size));
    hpool__batch_header header;
    for (int field = 0; field < 4; field++) {
        unsigned char *copy = malloc(size);
        memcpy(copy, bytes, size);
        memcpy(&header, copy + HPOOL__HEADER_OFFSET, sizeof header);
        uint64_t *offsets = (uint64_t *)(copy + HPOOL__BODY_OFFSET(hpool__batch_header));
        if (field == 0)
            header.chunk_count++;          /* not ceil(count / chunksize) */
        else if (field == 1)
            header.chunksize = 0;
        else if (field == 2)
            header.count = header.chunksize = UINT64_MAX / 2, header.chunk_count = 1; /* more records than bytes */
        else
            offsets[1] = 1u << 30;         /* a record outside the data */
        memcpy(copy + HPOOL__HEADER_OFFSET, &header, sizeof header);
        hpool__message message = received(HPOOL__MSG_BATCH, copy, size);
        free(copy);
        hpool__batch *decoded = NULL;
        CHECK_RC(HPOOL_EPEER, hpool__batch_decode(&message, &decoded));
    }
    free(bytes);
    hpool__batch_free(batch);
    hpool_source_free(source);
}

static void test_results(void)
{
    /* Fixed-size results with two failures. */
    hpool__batch *batch = hpool__batch_new();
    batch->call_id = 3;
    batch->mode = HPOOL__FIXED_RESULT;
    batch->result_size = sizeof(uint64_t);
    batch->first = 10;
    batch->count = 4;
    batch->chunk_count = 2;
    uint64_t values[4] = {100, 121, 144, 169};
    batch->results = (unsigned char *)values;
    CHECK_RC(0, hpool__batch_add_failures(batch, 11, 1, -7));
    CHECK_RC(0, hpool__batch_add_failures(batch, 13, 1, 42));
    void *bytes;
    size_t size;
    CHECK_RC(0, hpool__result_encode(batch, 99, &bytes, &size));
    hpool__message message = received(HPOOL__MSG_RESULT, bytes, size);
    hpool__batch *decoded = NULL;
    CHECK_RC(0, hpool__result_decode(&message, &decoded));
    if (decoded != NULL) {
        CHECK(decoded->sender_chunks_completed == 99 && decoded->count == 4 && decoded->first == 10);
        CHECK(memcmp(decoded->results, values, sizeof values) == 0);
        CHECK(decoded->failure_count == 2 && decoded->failures[1].index == 13 && decoded->failures[1].code == 42);
        hpool__batch_free(decoded);
    }
    check_refused(HPOOL__MSG_RESULT, bytes, size, hpool__result_decode);
    free(bytes);

    /* A failed run that reaches past the batch's items is refused. */
    batch->failures[1].count = 2;
    CHECK_RC(0, hpool__result_encode(batch, 99, &bytes, &size));
    message = received(HPOOL__MSG_RESULT, bytes, size);
    decoded = NULL;
    CHECK_RC(HPOOL_EPEER, hpool__result_decode(&message, &decoded));
    CHECK(decoded == NULL);
    free(bytes);
    batch->results = NULL;
    hpool__batch_free(batch);

    /* Records: offsets and bytes. */
    batch = hpool__batch_new();
    batch->mode = HPOOL__RECORD_RESULT;
    batch->count = 3;
    batch->chunk_count = 1;
    uint64_t *offsets = malloc(4 * sizeof *offsets + 16);
    offsets[0] = 0, offsets[1] = 2, offsets[2] = 2, offsets[3] = 7;
    memcpy(offsets + 4, "abcdefg", 7);
    batch->record_offsets = offsets;
    batch->record_data = (unsigned char *)(offsets + 4);
    CHECK_RC(0, hpool__result_encode(batch, 1, &bytes, &size));
    message = received(HPOOL__MSG_RESULT, bytes, size);
    CHECK_RC(0, hpool__result_decode(&message, &decoded));
    if (decoded != NULL) {
        CHECK(decoded->record_offsets[3] == 7 && memcmp(decoded->record_data + 2, "cdefg", 5) == 0);
        hpool__batch_free(decoded);
    }
    check_refused(HPOOL__MSG_RESULT, bytes, size, hpool__result_decode);
    /* offsets that fall backwards */
    unsigned char *copy = malloc(size);
    memcpy(copy, bytes, size);
    uint64_t backwards = 1; /* below offsets[1] = 2 */
    memcpy(copy + HPOOL__BODY_OFFSET(hpool__result_header) + 2 * sizeof(uint64_t), &backwards, sizeof backwards);
    message = received(HPOOL__MSG_RESULT, copy, size);
    free(copy);
    CHECK_RC(HPOOL_EPEER, hpool__result_decode(&message, &decoded));
    free(bytes);
    hpool__batch_free(batch);

    /* A reduce's partials: as many as its blocks. */
    batch = hpool__batch_new();
    batch->mode = HPOOL__REDUCE;
    batch->reducer = 0;
    batch->result_size = sizeof(double);
    batch->count = 10;
    batch->block_size = 4; /* 3 partials */
    batch->chunk_count = 1;
    batch->accumulator = malloc(3 * sizeof(double));
    memcpy(batch->accumulator, (double[]){1.5, 2.5, 3.5}, 3 * sizeof(double));
    CHECK_RC(0, hpool__result_encode(batch, 1, &bytes, &size));
    message = received(HPOOL__MSG_RESULT, bytes, size);
    CHECK_RC(0, hpool__result_decode(&message, &decoded));
    if (decoded != NULL) {
        CHECK(memcmp(decoded->accumulator, batch->accumulator, 3 * sizeof(double)) == 0);
        hpool__batch_free(decoded);
    }
    check_refused(HPOOL__MSG_RESULT, bytes, size, hpool__result_decode);
    free(bytes);
    hpool__batch_free(batch);
}

/* The fixed-header messages: what goes in comes out; a short one is refused. */
/* Failed items kept as runs: joined when they continue each other with
 * one code, found by item after sorting. */
static void test_failure_runs(void)
{
    hpool__failure *runs = NULL;
    size_t count = 0, capacity = 0;
    CHECK_RC(0, hpool__failures_add(&runs, &count, &capacity, 100, 50, HPOOL_ECANCELED));
    CHECK_RC(0, hpool__failures_add(&runs, &count, &capacity, 150, 1000000000, HPOOL_ECANCELED)); /* joined */
    CHECK_RC(0, hpool__failures_add(&runs, &count, &capacity, 1000000150, 1, 5));                  /* another code */
    CHECK_RC(0, hpool__failures_add(&runs, &count, &capacity, 7, 1, 5));                           /* not next */
    CHECK_RC(0, hpool__failures_add(&runs, &count, &capacity, 8, 0, 5));                           /* nothing */
    CHECK(count == 3 && runs[0].index == 100 && runs[0].count == 1000000050);
    hpool__failures_sort(runs, count);
    CHECK(runs[0].index == 7 && runs[1].index == 100 && runs[2].index == 1000000150);
    CHECK(hpool__failures_find(runs, count, 6) == 0);
    CHECK(hpool__failures_find(runs, count, 7) == 5);
    CHECK(hpool__failures_find(runs, count, 8) == 0);
    CHECK(hpool__failures_find(runs, count, 99) == 0);
    CHECK(hpool__failures_find(runs, count, 100) == HPOOL_ECANCELED);
    CHECK(hpool__failures_find(runs, count, 1000000149) == HPOOL_ECANCELED);
    CHECK(hpool__failures_find(runs, count, 1000000150) == 5);
    CHECK(hpool__failures_find(runs, count, 1000000151) == 0);
    CHECK(hpool__failures_find(runs, 0, 7) == 0);
    free(runs);
}

static void test_control_messages(void)
{
    void *bytes;
    size_t size;
    hpool__credit_header credit = {.chunks_completed = 123456789012u}, credit_out = {0};
    CHECK_RC(0, hpool__message_encode(HPOOL__MSG_CREDIT, &credit, sizeof credit, &bytes, &size));
    hpool__message message = received(HPOOL__MSG_CREDIT, bytes, size);
    CHECK_RC(0, hpool__message_decode(&message, &credit_out, sizeof credit_out, NULL, NULL));
    CHECK(credit_out.chunks_completed == credit.chunks_completed);
    free(message.data);
    message = received(HPOOL__MSG_CREDIT, bytes, size - 1);
    CHECK_RC(HPOOL_EPEER, hpool__message_decode(&message, &credit_out, sizeof credit_out, NULL, NULL));
    free(message.data);
    message = received(HPOOL__MSG_CANCEL, bytes, size); /* a credit on the cancel tag */
    hpool__cancel_header cancel;
    CHECK_RC(HPOOL_EPEER, hpool__message_decode(&message, &cancel, sizeof cancel, NULL, NULL));
    free(message.data);
    free(bytes);

    hpool__shuffle_header shuffle = {.call_id = 5, .keyed = 2}, shuffle_out;
    CHECK_RC(0, hpool__message_encode(HPOOL__MSG_SHUFFLE, &shuffle, sizeof shuffle, &bytes, &size));
    message = received(HPOOL__MSG_SHUFFLE, bytes, size);
    CHECK_RC(0, hpool__message_decode(&message, &shuffle_out, sizeof shuffle_out, NULL, NULL));
    CHECK(shuffle_out.call_id == 5 && shuffle_out.keyed == 2);
    free(message.data);
    free(bytes);

    hpool__stop_request_header stop = {.level = 2, .signal = 15}, stop_out;
    CHECK_RC(0, hpool__message_encode(HPOOL__MSG_STOP, &stop, sizeof stop, &bytes, &size));
    CHECK(size == sizeof(hpool__envelope) + sizeof stop);
    message = received(HPOOL__MSG_STOP, bytes, size);
    CHECK_RC(0, hpool__message_decode(&message, &stop_out, sizeof stop_out, NULL, NULL));
    CHECK(stop_out.level == 2 && stop_out.signal == 15);
    free(message.data);
    free(bytes);
    /* a STOP of protocol 6, without its level, is refused */
    CHECK_RC(0, hpool__message_encode(HPOOL__MSG_STOP, NULL, 0, &bytes, &size));
    message = received(HPOOL__MSG_STOP, bytes, size);
    CHECK_RC(HPOOL_EPEER, hpool__message_decode(&message, &stop_out, sizeof stop_out, NULL, NULL));
    free(message.data);
    free(bytes);
}

int main(void)
{
    test_batches();
    test_inconsistent_batch();
    test_results();
    test_failure_runs();
    test_control_messages();
    if (check_failures == 0)
        printf("protocol: all checks passed\n");
    return check_failures ? 1 : 0;
}
