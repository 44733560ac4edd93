/* journal_keyed.c: keyed calls' journal: the root has every rank write its map-side pairs to a file, then records the checkpoint. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A keyed call's work lives in the ranks' tables, not on the root, so it
 * is journaled as checkpoints: the root stops cutting the call, waits for
 * every batch out to come back (then each rank's tables hold exactly the
 * pairs of the items completed so far), and asks every rank, itself
 * included, to write its pairs to JOURNAL.GENERATION.RANK.keyed. Once all
 * have, one CHECKPOINT record names the items done (and their failures)
 * and each file's size and checksum, and the files of the generation
 * before are removed: a crash at any moment leaves the last record's files
 * whole. A rerun restores every file of the last checkpoint into the
 * root's store before its first batch, and skips the items done. */

typedef struct checkpoint_record {
    uint64_t generation;
    uint32_t ranks, reserved;
    uint64_t range_count, failure_count;
    /* then range_count (first, count), failure_count hpool__failure, and
     * ranks (bytes, checksum) */
} checkpoint_record;

static void checkpoint_path(const char *journal, uint64_t generation, int rank, char *buf, size_t size)
{
    snprintf(buf, size, "%s.%llu.%d.keyed", journal, (unsigned long long)generation, rank);
}

/* ---- What the journal holds (journal.c reads the record) --------------- */

int hpool__checkpoint_parse(const void *payload, size_t size, uint64_t *generation, const uint64_t **ranges,
                            uint64_t *range_count, const hpool__failure **failures, uint64_t *failure_count,
                            const uint64_t **files, int *ranks)
{
    checkpoint_record record;
    if (size < sizeof record)
        return HPOOL_EJOURNAL;
    memcpy(&record, payload, sizeof record);
    const unsigned char *at = (const unsigned char *)payload + sizeof record;
    uint64_t rest = size - sizeof record;
    if (record.ranks == 0 || record.ranks > (1u << 24) || record.range_count > rest / 16
        || record.failure_count > rest / sizeof(hpool__failure)
        || rest != record.range_count * 16 + record.failure_count * sizeof(hpool__failure) + (uint64_t)record.ranks * 16)
        return HPOOL_EJOURNAL;
    *generation = record.generation;
    *ranges = (const uint64_t *)at; /* 8-byte aligned: the payload is malloc'd and the record a multiple of 8 */
    *range_count = record.range_count;
    *failures = (const hpool__failure *)(at + record.range_count * 16);
    *failure_count = record.failure_count;
    *files = (const uint64_t *)(at + record.range_count * 16 + record.failure_count * sizeof(hpool__failure));
    *ranks = (int)record.ranks;
    return 0;
}

/* ---- The done set of a call, as its batches come back ------------------- */

static int note_done_range(void *user, uint64_t first, uint64_t count)
{
    hpool__call_state *call = user;
    uint64_t range[2] = {first, count};
    return hpool__buffer_append(&call->keyed_ranges, range, sizeof range) != 0 ? HPOOL_ENOMEM : 0;
}

int hpool__checkpoint_note_batch(hpool__call_state *call, const hpool__batch *batch)
{
    if (batch->whole_failed != 0)
        return 0; /* nothing of it counts as done: a rerun runs it */
    /* The runs that failed (and ran) are kept for the replay; items that
     * did not run are not done, the runs between them are. */
    for (size_t f = 0; f < batch->failure_count; f++)
        if (!hpool__failure_not_run(batch->failures[f].code)
            && hpool__buffer_append(&call->keyed_failures, &batch->failures[f], sizeof batch->failures[f]) != 0)
            return HPOOL_ENOMEM;
    return hpool__batch_each_run_that_ran(batch, note_done_range, call);
}

static int by_first(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* Sorts the done ranges and joins the ones that touch. */
static void coalesce(hpool__buffer *ranges)
{
    size_t count = ranges->size / 16;
    uint64_t *r = (uint64_t *)ranges->data;
    if (count < 2)
        return;
    qsort(r, count, 16, by_first);
    size_t kept = 0;
    for (size_t i = 1; i < count; i++) {
        if (r[2 * kept] + r[2 * kept + 1] == r[2 * i]) {
            r[2 * kept + 1] += r[2 * i + 1];
        } else {
            kept++;
            r[2 * kept] = r[2 * i];
            r[2 * kept + 1] = r[2 * i + 1];
        }
    }
    ranges->size = (kept + 1) * 16;
}

/* ---- The root's rounds ----------------------------------------------------- */

static int send_checkpoint(hpool_pool *pool, const hpool__call_state *call, uint64_t generation)
{
    const char *journal = hpool__journal_path(call->journal);
    size_t path_size = strlen(journal);
    hpool__checkpoint_header header = {.call_id = call->id,
                                       .keyed = (uint32_t)call->spec.reducer,
                                       .generation = generation,
                                       .path_size = path_size};
    size_t size = HPOOL__BODY_OFFSET(hpool__checkpoint_header) + path_size;
    unsigned char *message = hpool__malloc(size);
    if (message == NULL)
        return hpool__fail(HPOOL_ENOMEM, "no memory for a CHECKPOINT message");
    hpool__message_write_header(message, HPOOL__MSG_CHECKPOINT, &header, sizeof header);
    memcpy(message + HPOOL__BODY_OFFSET(hpool__checkpoint_header), journal, path_size);
    return hpool__transport_send_to_all(&pool->transport, pool->root, HPOOL__MSG_CHECKPOINT, message, size);
}

/* Restores the last checkpoint's files into the root's store, before the
 * call's first batch. With pool->lock held; drops it around the reads. */
static int restore(hpool_pool *pool, hpool__call_state *call)
{
    size_t size;
    const void *payload = hpool__journal_checkpoint(call->journal, &size);
    if (payload == NULL)
        return 0;
    uint64_t generation, range_count, failure_count;
    const uint64_t *ranges, *files;
    const hpool__failure *failures;
    int ranks;
    if (hpool__checkpoint_parse(payload, size, &generation, &ranges, &range_count, &failures, &failure_count, &files,
                                &ranks) != 0)
        return hpool__fail(HPOOL_EJOURNAL, "the journal %s has a malformed checkpoint", hpool__journal_path(call->journal));
    int rc = 0;
    uint32_t id = call->id;
    int keyed = call->spec.reducer;
    char path[4096];
    for (int rank = 0; rc == 0 && rank < ranks; rank++) {
        checkpoint_path(hpool__journal_path(call->journal), generation, rank, path, sizeof path);
        pthread_mutex_unlock(&pool->lock);
        rc = hpool__keyed_restore(pool, id, keyed, path, files[2 * rank], files[2 * rank + 1]);
        pthread_mutex_lock(&pool->lock);
    }
    return rc;
}

/* The root's own file, and its answer. With pool->lock held; drops it. */
static void checkpoint_root(hpool_pool *pool, hpool__call_state *call, uint64_t generation)
{
    char path[4096];
    checkpoint_path(hpool__journal_path(call->journal), generation, pool->root, path, sizeof path);
    uint64_t bytes = 0, checksum = 0;
    uint32_t id = call->id;
    int keyed = call->spec.reducer;
    call->refcount++;
    pthread_mutex_unlock(&pool->lock);
    int rc = hpool__keyed_checkpoint(pool, id, keyed, path, &bytes, &checksum);
    pthread_mutex_lock(&pool->lock);
    hpool__checkpoint_answered(pool, pool->root, id, rc, generation, bytes, checksum, hpool__detail_text(rc));
    hpool__call_release(pool, call);
}

static void start_checkpoint(hpool_pool *pool, hpool__call_state *call)
{
    int ranks = pool->transport.size;
    if (call->checkpoint_files == NULL
        && (call->checkpoint_files = hpool__calloc((size_t)ranks * 2, sizeof *call->checkpoint_files)) == NULL) {
        hpool__call_set_error(call, hpool__fail(HPOOL_ENOMEM, "no memory for a checkpoint's table"));
        hpool__cancel_call(pool, call);
        call->checkpoint_wanted = false;
        return;
    }
    call->checkpointing = true;
    call->checkpoint_wanted = false;
    call->checkpoints_answered = 0;
    call->checkpoint_code = 0;
    call->checkpoint_generation = hpool__journal_generation(call->journal) + 1;
    uint64_t generation = call->checkpoint_generation;
    if (ranks > 1) {
        call->refcount++;
        pthread_mutex_unlock(&pool->lock);
        int rc = send_checkpoint(pool, call, generation);
        pthread_mutex_lock(&pool->lock);
        hpool__call_release(pool, call);
        if (rc != 0) {
            call->checkpointing = false;
            hpool__call_set_error(call, rc);
            hpool__cancel_call(pool, call);
            return;
        }
    }
    checkpoint_root(pool, call, generation);
}

void hpool__checkpoint_answered(hpool_pool *pool, int rank, uint32_t call_id, int code, uint64_t generation,
                                uint64_t bytes, uint64_t checksum, const char *detail)
{
    hpool__call_state *call = pool->calls.head;
    while (call != NULL && call->id != call_id)
        call = call->next;
    if (call == NULL || !call->checkpointing || generation != call->checkpoint_generation)
        return;
    call->checkpoint_files[2 * rank] = bytes;
    call->checkpoint_files[2 * rank + 1] = checksum;
    if (code != 0 && call->checkpoint_code == 0) {
        call->checkpoint_code = code;
        snprintf(call->detail, sizeof call->detail, "rank %d could not checkpoint the keyed call's pairs for the "
                                                    "journal: %s", rank, detail != NULL && *detail ? detail : hpool_strerror(code));
    }
    if (++call->checkpoints_answered < pool->transport.size)
        return;
    call->checkpointing = false;
    int rc = call->checkpoint_code;
    if (rc == 0) {
        coalesce(&call->keyed_ranges);
        checkpoint_record record = {.generation = generation,
                                    .ranks = (uint32_t)pool->transport.size,
                                    .range_count = call->keyed_ranges.size / 16,
                                    .failure_count = call->keyed_failures.size / sizeof(hpool__failure)};
        hpool__buffer payload = {0};
        if (hpool__buffer_append(&payload, &record, sizeof record) != 0
            || hpool__buffer_append(&payload, call->keyed_ranges.data, call->keyed_ranges.size) != 0
            || hpool__buffer_append(&payload, call->keyed_failures.data, call->keyed_failures.size) != 0
            || hpool__buffer_append(&payload, call->checkpoint_files, (size_t)pool->transport.size * 16) != 0)
            rc = hpool__fail(HPOOL_ENOMEM, "no memory for a checkpoint record");
        if (rc == 0)
            rc = hpool__journal_append_checkpoint(call, payload.data, payload.size);
        hpool__buffer_release(&payload);
        if (rc == 0) {
            /* the record is synced: the generation before it can go */
            uint64_t previous = hpool__journal_generation(call->journal);
            int previous_ranks = hpool__journal_set_generation(call->journal, generation, pool->transport.size);
            char path[4096];
            for (int r = 0; previous > 0 && r < previous_ranks; r++) {
                checkpoint_path(hpool__journal_path(call->journal), previous, r, path, sizeof path);
                unlink(path);
            }
        } else {
            hpool__call_set_error(call, rc);
        }
    } else {
        call->report.status = call->report.status ? call->report.status : rc;
    }
    if (rc != 0)
        hpool__cancel_call(pool, call);
    call->checkpoint_due_ns = pool->journal_checkpoint_ns ? hpool__now_ns() + pool->journal_checkpoint_ns : 0;
    call->checkpoint_final_done = call->stopped || call->canceled;
    pool->engine_has_news = true;
    hpool__complete_if_done(pool, call);
}

void hpool__checkpoint_round(hpool_pool *pool)
{
    for (hpool__call_state *call = pool->calls.head, *next; call != NULL; call = next) {
        next = call->next;
        if (call->kind != HPOOL__CALL_KEYED || call->journal == NULL || call->complete || call->keyed_done)
            continue;
        if (!call->restored) {
            call->restored = true;
            call->checkpoint_due_ns = pool->journal_checkpoint_ns ? hpool__now_ns() + pool->journal_checkpoint_ns : 0;
            int rc = restore(pool, call);
            if (rc != 0) {
                hpool__call_set_error(call, rc);
                hpool__cancel_call(pool, call);
            }
            continue;
        }
        if (call->checkpointing || call->shuffling || call->shuffle_pending)
            continue;
        bool due = call->checkpoint_due_ns != 0 && hpool__now_ns() >= call->checkpoint_due_ns && !call->source_ended;
        bool final = (call->stopped || call->canceled) && !call->checkpoint_final_done && call->report.status == 0;
        if (due || final)
            call->checkpoint_wanted = true;
        if (call->checkpoint_wanted && call->batches_uncollected == 0)
            start_checkpoint(pool, call);
    }
}

/* ---- A serving rank ------------------------------------------------------------ */

int hpool__checkpoint_serve(hpool_pool *pool, hpool__message *message)
{
    hpool__checkpoint_header header;
    const unsigned char *body = NULL;
    size_t body_size = 0;
    int rc = hpool__message_decode(message, &header, sizeof header, &body, &body_size);
    if (rc == 0 && (header.path_size != body_size || body_size >= 4000 || header.keyed >= pool->keyed_reducer_count))
        rc = HPOOL_EPEER;
    if (rc != 0) {
        free(message->data);
        return rc;
    }
    char journal[4096], path[4200];
    memcpy(journal, body, body_size);
    journal[body_size] = '\0';
    free(message->data);
    checkpoint_path(journal, header.generation, pool->transport.rank, path, sizeof path);
    hpool__checkpointed_header answer = {.call_id = header.call_id, .generation = header.generation};
    answer.code = hpool__keyed_checkpoint(pool, header.call_id, (int)header.keyed, path, &answer.bytes, &answer.checksum);
    const char *detail = answer.code != 0 ? hpool__detail_text(answer.code) : "";
    answer.detail_size = strlen(detail);
    size_t size = HPOOL__BODY_OFFSET(hpool__checkpointed_header) + answer.detail_size;
    unsigned char *reply = hpool__malloc(size);
    if (reply == NULL)
        return hpool__fail(HPOOL_ENOMEM, "no memory for a CHECKPOINTED message");
    hpool__message_write_header(reply, HPOOL__MSG_CHECKPOINTED, &answer, sizeof answer);
    memcpy(reply + HPOOL__BODY_OFFSET(hpool__checkpointed_header), detail, answer.detail_size);
    return hpool__transport_send(&pool->transport, pool->root, HPOOL__MSG_CHECKPOINTED, reply, size);
}

int hpool__checkpoint_received(hpool_pool *pool, hpool__message *message)
{
    hpool__checkpointed_header answer;
    const unsigned char *body = NULL;
    size_t body_size = 0;
    int rc = hpool__message_decode(message, &answer, sizeof answer, &body, &body_size);
    if (rc == 0 && answer.detail_size != body_size)
        rc = HPOOL_EPEER;
    if (rc == 0) {
        char detail[384];
        snprintf(detail, sizeof detail, "%.*s", (int)body_size, (const char *)body);
        pthread_mutex_lock(&pool->lock);
        hpool__checkpoint_answered(pool, message->source, answer.call_id, answer.code, answer.generation,
                                   answer.bytes, answer.checksum, detail);
        pthread_mutex_unlock(&pool->lock);
    }
    free(message->data);
    return rc;
}
