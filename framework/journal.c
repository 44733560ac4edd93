/* journal.c: a call's journal on disk: what completed, appended as checksummed records, read back to resume. */
#define _GNU_SOURCE /* pread, fdatasync, O_CLOEXEC, O_DIRECTORY */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* The file is a sequence of records, each a frame and a payload:
 *     u32 type, u32 zero, u64 payload size, u64 checksum of type, size and payload
 * The first record is the header, which says which call the journal is for;
 * then come BATCH records, one per contiguous run of completed items of a
 * batch, and for keyed calls CHECKPOINT records. Records are only ever
 * appended, each with one write(), so a crash can only tear the last one:
 * reading stops at the first record that is short or fails its checksum,
 * and the file is cut back to the records before it. */
enum record_type { RECORD_HEADER = 1, RECORD_BATCH = 2, RECORD_CHECKPOINT = 3 };

typedef struct record_frame {
    uint32_t type, zero;
    uint64_t size, checksum;
} record_frame;

/* The header's fixed part; the function's and reducer's names follow it,
 * then the journal key's bytes. */
#define JOURNAL_MAGIC "HPOOLJNL"
#define JOURNAL_FORMAT 2u /* 1: a failure per item, not runs */
typedef struct journal_header {
    char magic[8];
    uint32_t format;
    uint32_t kind;          /* 0 items (map, imap), 1 reduce, 2 keyed */
    uint32_t mode;          /* enum hpool__result_mode */
    uint32_t source_kind;   /* enum hpool__input_kind, +16 for a producer */
    uint64_t result_size;
    uint64_t block_size;    /* deterministic reduce, else 0 */
    uint64_t item_count;    /* UINT64_MAX for a producer */
    int64_t range_start;
    uint64_t source_hash;   /* the items' bytes, for arrays, records, columns */
    uint64_t argument_hash;
    uint64_t argument_size;
    uint64_t key_hash;
    uint64_t key_size;
    uint32_t function_name_size, reducer_name_size;
} journal_header;

/* A BATCH record's fixed part. Then: failures (index, code); the results
 * (count × result_size bytes), or count + 1 record offsets and the records'
 * bytes, or partials × value_size bytes of partial reductions. */
typedef struct batch_record {
    uint64_t first, count;
    uint64_t failure_count;
    uint64_t partials;
    uint64_t output_bytes;
} batch_record;

/* A run of completed items, and where its record's payload is. */
typedef struct done_range {
    uint64_t first, count;
    uint64_t offset, size; /* of the payload, in the file */
} done_range;

struct hpool__journal {
    char *path;
    int fd;
    bool failed;              /* a write or sync failed: the call has the error */
    done_range *done;         /* sorted by first, disjoint */
    size_t done_count, done_capacity;
    size_t next_done;         /* the cursor of replay: done[next_done] is next */
    /* The keyed call's last checkpoint: its payload, copied. */
    unsigned char *checkpoint;
    size_t checkpoint_size;
    uint64_t generation;
    int generation_ranks;
    const hpool__failure *checkpoint_failures; /* in checkpoint, for replay */
    uint64_t checkpoint_failure_count;
    /* The sync thread: fdatasync every interval until told to stop. */
    pthread_t syncer;
    bool syncer_started, stopping;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    uint64_t sync_ns;
    int sync_errno;           /* the first failed sync's errno */
    /* The file, listed among this process's open journals. */
    dev_t device;
    ino_t inode;
    bool listed;
};

static void forget_open_journal(const hpool__journal *journal);

/* ---- Checksums and fingerprints ---------------------------------------- */

/* A record's checksum covers its type, its size and its payload. */
static uint64_t record_checksum(uint32_t type, uint64_t size, const void *payload)
{
    hpool__hasher h;
    hpool__hasher_start(&h, type);
    hpool__hasher_add(&h, &size, sizeof size);
    hpool__hasher_add(&h, payload, size);
    return hpool__hasher_end(&h);
}

static uint64_t hash_source(const hpool_source *source)
{
    uint64_t h = 0;
    switch (source->kind) {
    case HPOOL__RANGE:
        return 0;
    case HPOOL__FIXED:
        return hpool__hash64(0, source->items, source->count * source->item_size);
    case HPOOL__RECORDS:
        for (uint64_t i = 0; i < source->count; i++) {
            size_t size = source->record_sizes != NULL ? source->record_sizes[i] : strlen(source->records[i]);
            h = hpool__hash64(h, &size, sizeof size);
            h = hpool__hash64(h, source->records[i], size);
        }
        return h;
    case HPOOL__COLUMNS:
        for (size_t c = 0; c < source->column_count; c++)
            h = hpool__hash64(h, source->columns[c], source->count * source->column_sizes[c]);
        return h;
    }
    return 0;
}

static uint32_t kind_class(enum hpool__call_kind kind)
{
    return kind == HPOOL__CALL_REDUCE ? 1 : kind == HPOOL__CALL_KEYED ? 2 : 0;
}

static const char *reducer_name(const hpool_pool *pool, const hpool__call_state *call)
{
    if (call->kind == HPOOL__CALL_REDUCE)
        return pool->reducers[call->spec.reducer].name;
    if (call->kind == HPOOL__CALL_KEYED)
        return pool->keyed_reducers[call->spec.reducer].name;
    return "";
}

static const char *name_or_empty(const char *name)
{
    return name != NULL ? name : "";
}

/* The header that describes call, in out. */
static int make_header(const hpool_pool *pool, const hpool__call_state *call, hpool__buffer *out)
{
    const hpool_source *source = call->source;
    const char *function = name_or_empty(pool->functions[call->spec.function].name);
    const char *reducer = name_or_empty(reducer_name(pool, call));
    journal_header header = {
        .format = JOURNAL_FORMAT,
        .kind = kind_class(call->kind),
        .mode = (uint32_t)call->mode,
        .source_kind = (uint32_t)source->kind + (source->is_producer ? 16u : 0u),
        .result_size = call->mode == HPOOL__FIXED_RESULT || call->mode == HPOOL__REDUCE ? call->result_size : 0,
        .block_size = call->block_size,
        .item_count = source->count,
        .range_start = source->kind == HPOOL__RANGE && !source->is_producer ? source->range_start : 0,
        .source_hash = source->is_producer ? 0 : hash_source(source),
        .argument_hash = hpool__hash64(0, call->argument, call->spec.argument_size),
        .argument_size = call->spec.argument_size,
        .key_hash = hpool__hash64(0, call->spec.journal_key, call->spec.journal_key_size),
        .key_size = call->spec.journal_key_size,
        .function_name_size = (uint32_t)strlen(function),
        .reducer_name_size = (uint32_t)strlen(reducer),
    };
    memcpy(header.magic, JOURNAL_MAGIC, 8);
    if (hpool__buffer_append(out, &header, sizeof header) != 0 || hpool__buffer_append(out, function, strlen(function)) != 0
        || hpool__buffer_append(out, reducer, strlen(reducer)) != 0)
        return HPOOL_ENOMEM;
    return 0;
}

static const char *mode_name(uint32_t mode)
{
    switch (mode) {
    case HPOOL__NO_RESULT:
        return "no results";
    case HPOOL__FIXED_RESULT:
        return "fixed-size results";
    case HPOOL__RECORD_RESULT:
        return "variable-size records";
    case HPOOL__REDUCE:
        return "a reduction";
    case HPOOL__KEYED:
        return "keyed pairs";
    }
    return "unknown results";
}

/* Whether a journal key is text in fields (name=value, say), each ended
 * by a NUL or a newline, as programs build them: then the first field that
 * differs can be named. */
static bool key_is_fields(const unsigned char *key, size_t size)
{
    for (size_t i = 0; i < size; i++)
        if (key[i] < 0x20 && key[i] != 0 && key[i] != '\n' && key[i] != '\t')
            return false;
    return size > 0;
}

/* The field of key that starts at *at, its size (without its end), and *at
 * moved past its end. */
static size_t next_field(const unsigned char *key, size_t size, size_t *at, const unsigned char **field)
{
    *field = key + *at;
    size_t length = 0;
    while (*at + length < size && key[*at + length] != 0 && key[*at + length] != '\n')
        length++;
    *at += length < size - *at ? length + 1 : length;
    return length;
}

/* field in quotes, cut to 60 bytes so that the line stays a line, or
 * "nothing more" past the key's end. */
static void quote_field(char *out, size_t size, const unsigned char *field, size_t field_size, bool ended)
{
    if (ended)
        snprintf(out, size, "nothing more");
    else
        snprintf(out, size, "\"%.*s%s\"", (int)(field_size < 60 ? field_size : 60), (const char *)field,
                 field_size > 60 ? "..." : "");
}

/* What differs between two journal keys, in why: the first field that
 * differs and the field before it ("after "page=a.html" it had "file=120
 * bytes, ..." and this call has "file=130 bytes, ...""), or only that
 * they differ, for keys that are not text. */
static void describe_other_key(const unsigned char *theirs, size_t their_size, const unsigned char *ours,
                               size_t our_size, char *why, size_t size)
{
    if (!key_is_fields(theirs, their_size) || !key_is_fields(ours, our_size)) {
        snprintf(why, size, "its call.journal_key was another (%zu bytes, this call's %zu)", their_size, our_size);
        return;
    }
    size_t at_theirs = 0, at_ours = 0, before_size = 0;
    const unsigned char *before = NULL;
    for (;;) {
        const unsigned char *a = theirs, *b = ours;
        bool a_ends = at_theirs >= their_size, b_ends = at_ours >= our_size;
        size_t a_size = a_ends ? 0 : next_field(theirs, their_size, &at_theirs, &a);
        size_t b_size = b_ends ? 0 : next_field(ours, our_size, &at_ours, &b);
        if (a_ends && b_ends) { /* the same fields, ended otherwise ("a" and "a\n") */
            snprintf(why, size, "its call.journal_key was another (%zu bytes, this call's %zu)", their_size, our_size);
            return;
        }
        if (a_ends || b_ends || a_size != b_size || memcmp(a, b, a_size) != 0) {
            char quoted[72], context[96] = "", had[96], has[96];
            if (before != NULL) {
                quote_field(quoted, sizeof quoted, before, before_size, false);
                snprintf(context, sizeof context, "after %s ", quoted);
            }
            quote_field(had, sizeof had, a, a_size, a_ends);
            quote_field(has, sizeof has, b, b_size, b_ends);
            snprintf(why, size, "its call.journal_key was another: %sit had %s, and this call has %s", context, had,
                     has);
            return;
        }
        before = a;
        before_size = a_size;
    }
}

/* What differs between the journal's header and ours (each followed by
 * its journal key), in why; false if they are the same call. */
static bool headers_differ(const unsigned char *theirs, size_t their_size, const unsigned char *ours,
                           size_t our_size, char *why, size_t size)
{
    static const char *kinds[] = {"map or imap", "map_reduce", "map_reduce_keyed"};
    journal_header a, b;
    memcpy(&b, ours, sizeof b);
    if (their_size < sizeof a) {
        snprintf(why, size, "its header is cut short");
        return true;
    }
    memcpy(&a, theirs, sizeof a);
    if (memcmp(a.magic, JOURNAL_MAGIC, 8) != 0) {
        snprintf(why, size, "it is not an hpool journal");
        return true;
    }
    if (a.format != JOURNAL_FORMAT) {
        snprintf(why, size, "it has journal format %u, and this hpool reads format %u", a.format, JOURNAL_FORMAT);
        return true;
    }
    size_t their_names = (size_t)a.function_name_size + a.reducer_name_size;
    if (their_names > their_size - sizeof a || their_size - sizeof a - their_names != a.key_size) {
        snprintf(why, size, "its header is malformed");
        return true;
    }
    const char *their_function = (const char *)theirs + sizeof a, *our_function = (const char *)ours + sizeof b;
    const char *their_reducer = their_function + a.function_name_size, *our_reducer = our_function + b.function_name_size;
    if (a.kind != b.kind)
        snprintf(why, size, "it was written by a %s call, and this is a %s call", a.kind < 3 ? kinds[a.kind] : "?",
                 kinds[b.kind]);
    else if (a.function_name_size != b.function_name_size || memcmp(their_function, our_function, a.function_name_size))
        snprintf(why, size, "it was written for the function \"%.*s\", and this call runs \"%.*s\"",
                 (int)a.function_name_size, their_function, (int)b.function_name_size, our_function);
    else if (a.reducer_name_size != b.reducer_name_size || memcmp(their_reducer, our_reducer, a.reducer_name_size))
        snprintf(why, size, "it was written for the reducer \"%.*s\", and this call has \"%.*s\"",
                 (int)a.reducer_name_size, their_reducer, (int)b.reducer_name_size, our_reducer);
    else if (a.mode != b.mode)
        snprintf(why, size, "it holds %s, and this call makes %s", mode_name(a.mode), mode_name(b.mode));
    else if (a.result_size != b.result_size)
        snprintf(why, size, "its results are %llu bytes each, and this call's are %llu",
                 (unsigned long long)a.result_size, (unsigned long long)b.result_size);
    else if (a.block_size != b.block_size)
        snprintf(why, size, "it was written by a %s reduce", a.block_size ? "deterministic" : "non-deterministic");
    else if (a.source_kind != b.source_kind)
        snprintf(why, size, "its source was of another kind (range, array, records, columns or producer)");
    else if (a.item_count != b.item_count)
        snprintf(why, size, "its source had %llu items, and this call's has %llu", (unsigned long long)a.item_count,
                 (unsigned long long)b.item_count);
    else if (a.range_start != b.range_start)
        snprintf(why, size, "its range started at %lld, and this call's at %lld", (long long)a.range_start,
                 (long long)b.range_start);
    else if (a.source_hash != b.source_hash)
        snprintf(why, size, "its source's items had other bytes");
    else if (a.argument_size != b.argument_size || a.argument_hash != b.argument_hash)
        snprintf(why, size, "its call.argument was another (%llu bytes, this call's %llu)",
                 (unsigned long long)a.argument_size, (unsigned long long)b.argument_size);
    else if (a.key_size != b.key_size || a.key_hash != b.key_hash || their_size != our_size
             || memcmp(theirs, ours, our_size) != 0)
        describe_other_key(theirs + their_size - a.key_size, a.key_size, ours + our_size - b.key_size, b.key_size,
                           why, size);
    else
        return false;
    return true;
}

/* ---- Writing ----------------------------------------------------------- */

static int journal_io_error(const hpool__journal *journal, const char *what, int error)
{
    return hpool__fail(HPOOL_EIO, "the journal %s could not be %s: %s", journal->path, what, strerror(error));
}

/* A part of a record's payload. */
typedef struct piece {
    const void *data;
    size_t size;
} piece;

/* Appends one record, frame and payload pieces, with one writev: the
 * pieces are not copied (a listing's records are hundreds of KB). */
#define MAX_PIECES 6
/* The frame of a record of these pieces: its type, size and checksum. */
static record_frame frame_of(uint32_t type, const piece *pieces, size_t piece_count)
{
    record_frame frame = {.type = type};
    for (size_t p = 0; p < piece_count; p++)
        frame.size += pieces[p].size;
    hpool__hasher h;
    hpool__hasher_start(&h, type);
    hpool__hasher_add(&h, &frame.size, sizeof frame.size);
    for (size_t p = 0; p < piece_count; p++)
        hpool__hasher_add(&h, pieces[p].data, pieces[p].size);
    frame.checksum = hpool__hasher_end(&h);
    return frame;
}

static int append_record(hpool__journal *journal, uint32_t type, const piece *pieces, size_t piece_count)
{
    HPOOL__ASSERT(piece_count < MAX_PIECES);
    record_frame frame = frame_of(type, pieces, piece_count);
    struct iovec parts[MAX_PIECES];
    int count = 0;
    parts[count++] = (struct iovec){&frame, sizeof frame};
    for (size_t p = 0; p < piece_count; p++)
        if (pieces[p].size > 0)
            parts[count++] = (struct iovec){(void *)pieces[p].data, pieces[p].size};
    struct iovec *part = parts;
    while (count > 0) {
        ssize_t n = writev(journal->fd, part, count);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return journal_io_error(journal, "written", n < 0 ? errno : ENOSPC);
        /* a short write: go on from where it stopped */
        while (count > 0 && (size_t)n >= part->iov_len) {
            n -= (ssize_t)part->iov_len;
            part++;
            count--;
        }
        if (count > 0) {
            part->iov_base = (unsigned char *)part->iov_base + n;
            part->iov_len -= (size_t)n;
        }
    }
    return 0;
}

/* Appends the completed items first .. first + count - 1 of batch, which
 * holds no canceled item among them. */
static int append_run(hpool__journal *journal, const hpool__call_state *call, const hpool__batch *batch,
                      uint64_t first, uint64_t count, const hpool_pool *pool)
{
    batch_record header = {.first = first, .count = count};
    hpool__buffer failures = {0};
    for (size_t f = 0; f < batch->failure_count; f++) {
        hpool__failure failure; /* the part of the failed run inside the journaled run */
        if (!hpool__failure_clip(&batch->failures[f], first, count, &failure))
            continue;
        if (hpool__buffer_append(&failures, &failure, sizeof failure) != 0) {
            hpool__buffer_release(&failures);
            return hpool__fail(HPOOL_ENOMEM, "no memory for a journal record's failures");
        }
        header.failure_count++;
    }
    uint64_t offset = first - batch->first;
    piece pieces[5] = {{&header, sizeof header}, {failures.data, failures.size}};
    size_t piece_count = 2;
    uint64_t *offsets = NULL;
    switch (call->mode) {
    case HPOOL__FIXED_RESULT:
        if (batch->results != NULL) {
            header.output_bytes = count * call->result_size;
            pieces[piece_count++] = (piece){batch->results + offset * call->result_size, header.output_bytes};
        }
        break;
    case HPOOL__RECORD_RESULT: {
        offsets = hpool__malloc((count + 1) * sizeof *offsets);
        if (offsets == NULL || batch->record_offsets == NULL) {
            free(offsets);
            hpool__buffer_release(&failures);
            return hpool__fail(HPOOL_ENOMEM, "no memory for a journal record's offsets");
        }
        uint64_t base = batch->record_offsets[offset];
        for (uint64_t i = 0; i <= count; i++)
            offsets[i] = batch->record_offsets[offset + i] - base;
        header.output_bytes = (count + 1) * sizeof *offsets + offsets[count];
        pieces[piece_count++] = (piece){offsets, (count + 1) * sizeof *offsets};
        pieces[piece_count++] = (piece){batch->record_data + base, offsets[count]};
        break;
    }
    case HPOOL__REDUCE: {
        size_t value_size = pool->reducers[call->spec.reducer].value_size;
        if (batch->accumulator == NULL)
            break;
        if (call->block_size == 0) {
            /* one partial for the whole batch: it goes with its first run */
            if (first != batch->first)
                break;
            header.partials = 1;
            pieces[piece_count++] = (piece){batch->accumulator, value_size};
        } else {
            header.partials = hpool__ceil_div(count, call->block_size);
            pieces[piece_count++] =
                (piece){batch->accumulator + offset / call->block_size * value_size, header.partials * value_size};
        }
        header.output_bytes = header.partials * value_size;
        break;
    }
    default:
        break;
    }
    int rc = append_record(journal, RECORD_BATCH, pieces, piece_count);
    free(offsets);
    hpool__buffer_release(&failures);
    return rc;
}

typedef struct append_job {
    hpool__journal *journal;
    const hpool__call_state *call;
    const hpool__batch *batch;
    const hpool_pool *pool;
} append_job;

static int append_visited(void *user, uint64_t first, uint64_t count)
{
    const append_job *job = user;
    return append_run(job->journal, job->call, job->batch, first, count, job->pool);
}

int hpool__journal_append(hpool_pool *pool, hpool__call_state *call, const hpool__batch *batch)
{
    hpool__journal *journal = call->journal;
    if (journal == NULL || journal->failed || batch->whole_failed != 0 || batch->count == 0)
        return 0;
    if (batch->origin_rank < 0 && call->kind != HPOOL__CALL_KEYED)
        return 0; /* replayed from the journal: it is there */
    if (call->kind == HPOOL__CALL_KEYED) /* its pairs are on the ranks: checkpoints journal them */
        return hpool__checkpoint_note_batch(call, batch) == 0 ? 0 : hpool__fail(HPOOL_ENOMEM, "no memory to note a "
                                                                                            "batch for a checkpoint");
    /* Items that did not run are left out, so a rerun runs them: the runs
     * between them are journaled. */
    append_job job = {journal, call, batch, pool};
    int rc = hpool__batch_each_run_that_ran(batch, append_visited, &job);
    if (rc != 0)
        journal->failed = true;
    return rc;
}

/* ---- The sync thread --------------------------------------------------- */

static void *sync_loop(void *argument)
{
    hpool__journal *journal = argument;
    pthread_mutex_lock(&journal->lock);
    while (!journal->stopping) {
        hpool__deadline deadline = hpool__deadline_in_ns(journal->sync_ns);
        while (!journal->stopping && !hpool__cond_wait_until(&journal->wake, &journal->lock, &deadline)) {
        }
        pthread_mutex_unlock(&journal->lock);
        int failed = fdatasync(journal->fd) != 0 ? errno : 0;
        pthread_mutex_lock(&journal->lock);
        if (failed != 0 && journal->sync_errno == 0)
            journal->sync_errno = failed;
    }
    pthread_mutex_unlock(&journal->lock);
    return NULL;
}

/* ---- Reading ----------------------------------------------------------- */

static int read_exactly(int fd, void *data, size_t size, uint64_t offset, size_t *got)
{
    size_t done = 0;
    while (done < size) {
        ssize_t n = pread(fd, (unsigned char *)data + done, size - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        if (n == 0)
            break;
        done += (size_t)n;
    }
    *got = done;
    return 0;
}

static int malformed(const hpool__journal *journal, uint64_t offset, const char *what)
{
    return hpool__fail(HPOOL_EJOURNAL, "the journal %s has a malformed record at byte %llu (%s): it was not written "
                                       "by this hpool for this call; delete it to start again",
                       journal->path, (unsigned long long)offset, what);
}

/* Checks a BATCH record's payload against the call, and indexes it. */
static int index_batch(hpool__journal *journal, const hpool_pool *pool, const hpool__call_state *call,
                       const unsigned char *payload, uint64_t size, uint64_t offset)
{
    batch_record header;
    if (size < sizeof header)
        return malformed(journal, offset, "too short");
    memcpy(&header, payload, sizeof header);
    uint64_t total = call->source->count;
    if (header.count == 0 || header.first > UINT64_MAX - header.count
        || (total != UINT64_MAX && header.first + header.count > total))
        return malformed(journal, offset, "items outside the source");
    if (header.failure_count > header.count
        || size != sizeof header + header.failure_count * sizeof(hpool__failure) + header.output_bytes)
        return malformed(journal, offset, "sizes that do not add up");
    const unsigned char *failures = payload + sizeof header;
    for (uint64_t f = 0; f < header.failure_count; f++) {
        hpool__failure failure;
        memcpy(&failure, failures + f * sizeof failure, sizeof failure);
        if (!hpool__failure_inside(&failure, header.first, header.count))
            return malformed(journal, offset, "a failure outside its items");
    }
    const unsigned char *output = failures + header.failure_count * sizeof(hpool__failure);
    switch (call->mode) {
    case HPOOL__FIXED_RESULT:
        if (header.output_bytes != header.count * call->result_size
            && !(header.output_bytes == 0 && call->spec.results == NULL))
            return malformed(journal, offset, "results of another size");
        break;
    case HPOOL__RECORD_RESULT: {
        if (header.output_bytes < (header.count + 1) * sizeof(uint64_t))
            return malformed(journal, offset, "records cut short");
        uint64_t previous = 0;
        for (uint64_t i = 0; i <= header.count; i++) {
            uint64_t at;
            memcpy(&at, output + i * sizeof at, sizeof at);
            if (at < previous || (i == 0 && at != 0))
                return malformed(journal, offset, "record offsets out of order");
            previous = at;
        }
        if (header.output_bytes != (header.count + 1) * sizeof(uint64_t) + previous)
            return malformed(journal, offset, "records of another size");
        break;
    }
    case HPOOL__REDUCE: {
        size_t value_size = pool->reducers[call->spec.reducer].value_size;
        uint64_t most = call->block_size ? hpool__ceil_div(header.count, call->block_size) : 1;
        if (header.partials > most || header.output_bytes != header.partials * value_size
            || (call->block_size && header.partials != 0 && header.partials != most)
            || (call->block_size && header.first % call->block_size != 0))
            return malformed(journal, offset, "partial reductions of another size");
        break;
    }
    default:
        if (header.output_bytes != 0)
            return malformed(journal, offset, "results for a call that has none");
        break;
    }
    done_range *grown = hpool__grow_array(journal->done, &journal->done_capacity, journal->done_count, sizeof *grown);
    if (grown == NULL)
        return hpool__fail(HPOOL_ENOMEM, "no memory for the index of the journal %s", journal->path);
    journal->done = grown;
    journal->done[journal->done_count++] = (done_range){header.first, header.count, offset, size};
    return 0;
}

static int by_first(const void *a, const void *b)
{
    const done_range *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

/* A keyed call's last checkpoint: its done items, to skip. */
static int index_checkpoint(hpool__journal *journal, const hpool__call_state *call)
{
    uint64_t generation, range_count, failure_count;
    const uint64_t *ranges, *files;
    const hpool__failure *failures;
    int ranks;
    if (hpool__checkpoint_parse(journal->checkpoint, journal->checkpoint_size, &generation, &ranges, &range_count,
                                &failures, &failure_count, &files, &ranks) != 0)
        return malformed(journal, 0, "a checkpoint that does not add up");
    for (uint64_t r = 0; r < range_count; r++) {
        uint64_t first = ranges[2 * r], count = ranges[2 * r + 1];
        if (count == 0 || first > UINT64_MAX - count
            || (call->source->count != UINT64_MAX && first + count > call->source->count))
            return malformed(journal, 0, "a checkpoint of items outside the source");
        done_range *grown = hpool__grow_array(journal->done, &journal->done_capacity, journal->done_count, sizeof *grown);
        if (grown == NULL)
            return hpool__fail(HPOOL_ENOMEM, "no memory for the index of the journal %s", journal->path);
        journal->done = grown;
        journal->done[journal->done_count++] = (done_range){first, count, 0, 0};
    }
    journal->generation = generation;
    journal->generation_ranks = ranks;
    journal->checkpoint_failures = failures;
    journal->checkpoint_failure_count = failure_count;
    return 0;
}

/* Reads the records after the header at offset; cuts a torn tail off. */
static int read_records(hpool__journal *journal, const hpool_pool *pool, const hpool__call_state *call, uint64_t offset,
                        uint64_t file_size)
{
    unsigned char *payload = NULL;
    size_t capacity = 0;
    int rc = 0;
    while (offset < file_size) {
        record_frame frame;
        size_t got = 0;
        int error = read_exactly(journal->fd, &frame, sizeof frame, offset, &got);
        if (error != 0) {
            rc = journal_io_error(journal, "read", error);
            break;
        }
        if (got < sizeof frame || frame.size > file_size - offset - sizeof frame)
            break; /* torn */
        if (frame.size > capacity) {
            unsigned char *grown = hpool__realloc(payload, frame.size);
            if (grown == NULL) {
                rc = hpool__fail(HPOOL_ENOMEM, "no memory to read a %llu-byte record of the journal %s",
                                 (unsigned long long)frame.size, journal->path);
                break;
            }
            payload = grown;
            capacity = frame.size;
        }
        error = read_exactly(journal->fd, payload, frame.size, offset + sizeof frame, &got);
        if (error != 0) {
            rc = journal_io_error(journal, "read", error);
            break;
        }
        uint64_t checksum = got == frame.size ? record_checksum(frame.type, frame.size, payload) : 0;
        if (got < frame.size || checksum != frame.checksum || frame.zero != 0)
            break; /* torn, or never completely written */
        if (frame.type == RECORD_BATCH && call->kind != HPOOL__CALL_KEYED) {
            rc = index_batch(journal, pool, call, payload, frame.size, offset + sizeof frame);
        } else if (frame.type == RECORD_CHECKPOINT && call->kind == HPOOL__CALL_KEYED) {
            /* the last checkpoint says it all */
            free(journal->checkpoint);
            journal->checkpoint = payload;
            journal->checkpoint_size = frame.size;
            payload = NULL;
            capacity = 0;
        } else {
            rc = malformed(journal, offset, "a record of an unknown type");
        }
        if (rc != 0)
            break;
        offset += sizeof frame + frame.size;
    }
    free(payload);
    if (rc == 0 && offset < file_size && ftruncate(journal->fd, (off_t)offset) != 0)
        rc = journal_io_error(journal, "cut back to its last whole record", errno);
    if (rc == 0 && journal->checkpoint != NULL)
        rc = index_checkpoint(journal, call);
    if (rc != 0)
        return rc;
    if (journal->done_count > 1)
        qsort(journal->done, journal->done_count, sizeof *journal->done, by_first);
    for (size_t i = 1; i < journal->done_count; i++)
        if (journal->done[i].first < journal->done[i - 1].first + journal->done[i - 1].count)
            return malformed(journal, journal->done[i].offset, "items journaled twice: did two runs write it at once?");
    return 0;
}

/* ---- Opening and closing ------------------------------------------------ */

void hpool__journal_close(hpool__journal *journal, hpool__call_state *call)
{
    if (journal == NULL)
        return;
    if (journal->syncer_started) {
        pthread_mutex_lock(&journal->lock);
        journal->stopping = true;
        pthread_cond_signal(&journal->wake);
        pthread_mutex_unlock(&journal->lock);
        pthread_join(journal->syncer, NULL);
    }
    if (journal->fd >= 0) {
        int failed = fdatasync(journal->fd) != 0 ? errno : journal->sync_errno;
        if (failed != 0 && call != NULL && !journal->failed)
            hpool__call_set_error(call, journal_io_error(journal, "synced", failed));
        close(journal->fd);
    }
    if (journal->listed)
        forget_open_journal(journal);
    pthread_mutex_destroy(&journal->lock);
    pthread_cond_destroy(&journal->wake);
    free(journal->done);
    free(journal->checkpoint);
    free(journal->path);
    free(journal);
}

static int sync_directory_of(const char *path)
{
    char *copy = hpool__strdup(path);
    if (copy == NULL)
        return ENOMEM;
    char *slash = strrchr(copy, '/');
    const char *directory = slash == NULL ? "." : slash == copy ? "/" : (*slash = '\0', copy);
    int fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int error = fd < 0 ? errno : fsync(fd) != 0 ? errno : 0;
    if (fd >= 0)
        close(fd);
    free(copy);
    return error == EINVAL ? 0 : error; /* some file systems cannot sync a directory */
}

/* One writer at a time: a run killed under mpirun can leave its root
 * running for a while (mpirun puts each rank in a process group of its
 * own), and two runs appending to one journal would journal items twice.
 * A POSIX lock, which NFS also keeps; a holder that is still there after
 * 10 s is named. */
/* POSIX locks do not keep two calls of one process apart, so the journals
 * this process has open are listed too, by file. */
static pthread_mutex_t open_journals_lock = PTHREAD_MUTEX_INITIALIZER;
static struct open_journal {
    dev_t device;
    ino_t inode;
} open_journals[64];
static size_t open_journal_count;

static void forget_open_journal(const hpool__journal *journal)
{
    pthread_mutex_lock(&open_journals_lock);
    for (size_t i = 0; i < open_journal_count; i++)
        if (open_journals[i].device == journal->device && open_journals[i].inode == journal->inode) {
            open_journals[i] = open_journals[--open_journal_count];
            break;
        }
    pthread_mutex_unlock(&open_journals_lock);
}

static int lock_journal(hpool__journal *journal, const char *name)
{
    struct stat status;
    if (fstat(journal->fd, &status) != 0)
        return hpool__fail(HPOOL_EIO, "%s: the journal %s could not be read: %s", name, journal->path, strerror(errno));
    pthread_mutex_lock(&open_journals_lock);
    bool taken = false;
    for (size_t i = 0; i < open_journal_count; i++)
        taken |= open_journals[i].device == status.st_dev && open_journals[i].inode == status.st_ino;
    if (!taken && open_journal_count < sizeof open_journals / sizeof open_journals[0]) {
        open_journals[open_journal_count++] = (struct open_journal){status.st_dev, status.st_ino};
        journal->device = status.st_dev;
        journal->inode = status.st_ino;
        journal->listed = true;
    }
    pthread_mutex_unlock(&open_journals_lock);
    if (taken)
        return hpool__fail(HPOOL_EJOURNAL, "%s: the journal %s is in use by another call of this process: give "
                                           "each call under way a journal of its own", name, journal->path);
    for (int attempt = 0;; attempt++) {
        struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fcntl(journal->fd, F_SETLK, &lock) == 0)
            return 0;
        if (errno != EACCES && errno != EAGAIN) {
            if (errno == ENOLCK || errno == EINVAL)
                return 0; /* a file system without locks: as before them */
            return hpool__fail(HPOOL_EIO, "%s: the journal %s could not be locked: %s", name, journal->path,
                               strerror(errno));
        }
        if (attempt == 200) {
            struct flock holder = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
            long pid = fcntl(journal->fd, F_GETLK, &holder) == 0 ? (long)holder.l_pid : 0;
            return hpool__fail(HPOOL_EJOURNAL, "%s: the journal %s is in use by another run (process %ld) and was "
                                               "not released within 10 s: is an earlier job still running?",
                               name, journal->path, pid);
        }
        struct timespec nap = {0, 50 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
}

/* 1 if the journal holds a first part of the header this call would
 * write, and nothing else: its creation stopped partway (the disk filled,
 * the machine went down), so no work was journaled, and it is emptied to
 * start again; 0 if not (its bytes are someone else's, which stay as they
 * are), or HPOOL_EIO. */
static int cut_short_by_its_creation(hpool__journal *journal, const hpool__buffer *ours, const struct stat *status,
                                     const char *name)
{
    piece header = {ours->data, ours->size};
    record_frame frame = frame_of(RECORD_HEADER, &header, 1);
    uint64_t whole = sizeof frame + ours->size;
    if ((uint64_t)status->st_size >= whole)
        return 0;
    size_t size = (size_t)status->st_size, got = 0;
    unsigned char *theirs = hpool__malloc(size);
    if (theirs == NULL)
        return 0; /* read as the others are, and refused */
    int error = read_exactly(journal->fd, theirs, size, 0, &got);
    size_t in_frame = size < sizeof frame ? size : sizeof frame;
    bool prefix = error == 0 && got == size && memcmp(theirs, &frame, in_frame) == 0 &&
                  memcmp(theirs + in_frame, ours->data, size - in_frame) == 0;
    free(theirs);
    if (error != 0)
        return hpool__fail(HPOOL_EIO, "%s: the journal %s could not be read: %s", name, journal->path,
                           strerror(error));
    if (!prefix)
        return 0;
    if (ftruncate(journal->fd, 0) != 0)
        return journal_io_error(journal, "emptied", errno);
    return 1;
}

int hpool__journal_open(hpool_pool *pool, hpool__call_state *call, const char *name)
{
    hpool__journal *journal = hpool__calloc(1, sizeof *journal);
    if (journal == NULL || (journal->path = hpool__strdup(call->spec.journal)) == NULL) {
        free(journal);
        return hpool__fail(HPOOL_ENOMEM, "%s: no memory for the journal's state", name);
    }
    journal->fd = -1;
    pthread_mutex_init(&journal->lock, NULL);
    hpool__cond_init_monotonic(&journal->wake);
    journal->sync_ns = pool->journal_sync_ns;
    hpool__buffer ours = {0};
    int rc = make_header(pool, call, &ours);
    if (rc == 0 && call->spec.journal_key_size > 0)
        rc = hpool__buffer_append(&ours, call->spec.journal_key, call->spec.journal_key_size);
    if (rc != 0) {
        hpool__buffer_release(&ours);
        hpool__journal_close(journal, NULL);
        return hpool__fail(HPOOL_ENOMEM, "%s: no memory for the journal's header", name);
    }
    journal->fd = open(journal->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    struct stat status;
    if (journal->fd >= 0 && (rc = lock_journal(journal, name)) != 0) {
        hpool__buffer_release(&ours);
        hpool__journal_close(journal, NULL);
        return rc;
    }
    if (journal->fd < 0 || fstat(journal->fd, &status) != 0) {
        rc = hpool__fail(HPOOL_EIO, "%s: the journal %s could not be opened: %s", name, journal->path, strerror(errno));
    } else if (!S_ISREG(status.st_mode)) {
        rc = hpool__fail(HPOOL_EJOURNAL, "%s: the journal %s is not a regular file", name, journal->path);
    } else if (status.st_size == 0 || (rc = cut_short_by_its_creation(journal, &ours, &status, name)) == 1) {
        /* A new journal: the header, synced with its directory entry, so
         * it is there after a crash. */
        piece header = {ours.data, ours.size};
        rc = append_record(journal, RECORD_HEADER, &header, 1);
        if (rc == 0 && (fdatasync(journal->fd) != 0 || (errno = sync_directory_of(journal->path)) != 0))
            rc = journal_io_error(journal, "synced", errno);
    } else if (rc == 0) {
        record_frame frame;
        size_t got = 0;
        unsigned char *theirs = NULL;
        int error = read_exactly(journal->fd, &frame, sizeof frame, 0, &got);
        if (error == 0 && got == sizeof frame && frame.type == RECORD_HEADER && frame.size < (1u << 20)
            && (theirs = hpool__malloc(frame.size + 1)) != NULL)
            error = read_exactly(journal->fd, theirs, frame.size, sizeof frame, &got);
        char why[320] = "it is not an hpool journal";
        uint64_t checksum = theirs != NULL && got == frame.size ? record_checksum(frame.type, frame.size, theirs) : 0;
        if (error != 0)
            rc = hpool__fail(HPOOL_EIO, "%s: the journal %s could not be read: %s", name, journal->path, strerror(error));
        else if (theirs == NULL || got != frame.size || checksum != frame.checksum
                 || headers_differ(theirs, frame.size, ours.data, ours.size, why, sizeof why))
            rc = hpool__fail(HPOOL_EJOURNAL, "%s: the journal %s belongs to another call: %s. Give another journal, "
                                             "or delete this one to start again", name, journal->path, why);
        else
            rc = read_records(journal, pool, call, sizeof frame + frame.size, (uint64_t)status.st_size);
        free(theirs);
    }
    hpool__buffer_release(&ours);
    if (rc == 0 && journal->sync_ns > 0) {
        if (pthread_create(&journal->syncer, NULL, sync_loop, journal) != 0)
            rc = hpool__fail(HPOOL_ETHREAD, "%s: the journal's sync thread could not start", name);
        else
            journal->syncer_started = true;
    }
    if (rc != 0) {
        hpool__journal_close(journal, NULL);
        return rc;
    }
    call->journal = journal;
    return 0;
}

/* ---- Replay -------------------------------------------------------------- */

bool hpool__journal_next_done(hpool__journal *journal, uint64_t from, uint64_t *first, uint64_t *count)
{
    while (journal->next_done < journal->done_count
           && journal->done[journal->next_done].first + journal->done[journal->next_done].count <= from)
        journal->next_done++;
    if (journal->next_done >= journal->done_count)
        return false;
    *first = journal->done[journal->next_done].first;
    *count = journal->done[journal->next_done].count;
    return true;
}

int hpool__journal_replay(hpool_pool *pool, hpool__call_state *call, hpool__batch *batch)
{
    hpool__journal *journal = call->journal;
    const done_range *range = &journal->done[journal->next_done];
    if (call->kind == HPOOL__CALL_KEYED) {
        /* its pairs are in the restored checkpoint; its failures here */
        const hpool__failure *failures = journal->checkpoint_failures;
        batch->first = range->first;
        batch->count = range->count;
        for (uint64_t f = 0; f < journal->checkpoint_failure_count; f++) {
            hpool__failure part; /* of the failed run, inside the done range */
            if (hpool__failure_clip(&failures[f], range->first, range->count, &part)
                && hpool__batch_add_failures(batch, part.index, part.count, part.code) != 0)
                return hpool__fail(HPOOL_ENOMEM, "no memory to replay the journal %s", journal->path);
        }
        journal->next_done++;
        return 0;
    }
    unsigned char *payload = hpool__malloc(range->size > 0 ? range->size : 1);
    if (payload == NULL)
        return hpool__fail(HPOOL_ENOMEM, "no memory to read %llu bytes of the journal %s",
                           (unsigned long long)range->size, journal->path);
    size_t got = 0;
    int error = read_exactly(journal->fd, payload, range->size, range->offset, &got);
    if (error != 0 || got != range->size) {
        free(payload);
        return journal_io_error(journal, "read", error != 0 ? error : EIO);
    }
    batch_record header;
    memcpy(&header, payload, sizeof header);
    batch->first = header.first;
    batch->count = header.count;
    const unsigned char *failures = payload + sizeof header;
    int rc = 0;
    for (uint64_t f = 0; rc == 0 && f < header.failure_count; f++) {
        hpool__failure failure;
        memcpy(&failure, failures + f * sizeof failure, sizeof failure);
        rc = hpool__batch_add_failures(batch, failure.index, failure.count, failure.code);
    }
    const unsigned char *output = failures + header.failure_count * sizeof(hpool__failure);
    if (rc == 0 && header.output_bytes > 0) {
        unsigned char *copy = hpool__malloc(header.output_bytes);
        if (copy == NULL) {
            rc = HPOOL_ENOMEM;
        } else {
            memcpy(copy, output, header.output_bytes);
            if (call->mode == HPOOL__FIXED_RESULT) {
                batch->results = copy;
                batch->results_owned = true;
            } else if (call->mode == HPOOL__RECORD_RESULT) {
                batch->record_offsets = (uint64_t *)copy;
                batch->record_data = copy + (header.count + 1) * sizeof(uint64_t);
            } else {
                batch->accumulator = copy;
            }
        }
    }
    free(payload);
    if (rc != 0)
        return hpool__fail(rc, "no memory to replay items %llu.. of the journal %s", (unsigned long long)header.first,
                           journal->path);
    journal->next_done++;
    return 0;
}

/* ---- Keyed checkpoints ------------------------------------------------------ */

int hpool__journal_append_checkpoint(hpool__call_state *call, const void *payload, size_t size)
{
    hpool__journal *journal = call->journal;
    piece record = {payload, size};
    int rc = append_record(journal, RECORD_CHECKPOINT, &record, 1);
    if (rc == 0 && fdatasync(journal->fd) != 0)
        rc = journal_io_error(journal, "synced", errno);
    if (rc != 0)
        journal->failed = true;
    return rc;
}

const void *hpool__journal_checkpoint(const hpool__journal *journal, size_t *size)
{
    *size = journal->checkpoint_size;
    return journal->checkpoint;
}

uint64_t hpool__journal_generation(const hpool__journal *journal)
{
    return journal->generation;
}

int hpool__journal_set_generation(hpool__journal *journal, uint64_t generation, int ranks)
{
    int previous = journal->generation_ranks;
    journal->generation = generation;
    journal->generation_ranks = ranks;
    return previous;
}

const char *hpool__journal_path(const hpool__journal *journal)
{
    return journal->path;
}
