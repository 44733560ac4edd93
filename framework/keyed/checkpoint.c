/* checkpoint.c: a rank's map-side pairs of a journaled keyed call, saved to a file and folded back in on a rerun. */
#define _GNU_SOURCE /* the GNU strerror_r, as in spill.c */
#include "keyed_private.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A checkpoint file: a header, then the pairs as hpool__pair_encode lays
 * them out (u32 key size, u32 value size, key, value), like spill files
 * and PAIRS messages, so spilled pairs are copied in as they are. Sizes
 * are in the host's byte order, as in spill files: the rerun that reads a
 * checkpoint runs on the machines that wrote it. The header:
 *   8 bytes  "HPOOLKCP"
 *   u32      CHECKPOINT_VERSION (read in the other byte order, it is
 *            another version, and refused)
 *   u32      the length of the keyed reducer's name, then the name: pairs
 *            combined by one reducer mean nothing to another. */
static const unsigned char checkpoint_magic[8] = {'H', 'P', 'O', 'O', 'L', 'K', 'C', 'P'};
#define CHECKPOINT_VERSION 1u
#define HEADER_BYTES (sizeof checkpoint_magic + 2 * sizeof(uint32_t))

/* Files are copied and read back this many bytes at a time, so a
 * checkpoint of any size costs about this much memory more (and a pair
 * larger than this, its own size). */
#define PIECE_BYTES ((size_t)1 << 20)

/* A failed system call on a checkpoint file: HPOOL_EIO, e.g. "cannot
 * create the keyed checkpoint /x/job.0.keyed.tmp: Permission denied". */
static int checkpoint_io_fail(const char *what, const char *path, int error)
{
    char text[128];
    return hpool__fail(HPOOL_EIO, "%s the keyed checkpoint %s: %s", what, path,
                       strerror_r(error, text, sizeof text));
}

static int not_a_checkpoint(const char *path, const char *why)
{
    return hpool__fail(HPOOL_EJOURNAL, "%s is not an hpool keyed checkpoint%s", path, why);
}

static const char *reducer_name(const hpool_keyed_reducer *spec)
{
    return spec->name != NULL ? spec->name : "";
}

/* The store of the call if this rank has one; none is made. */
static hpool__keyed_store *find_store(hpool_pool *pool, uint32_t call_id)
{
    pthread_mutex_lock(&pool->stores_lock);
    hpool__keyed_store *store = pool->keyed_stores;
    while (store != NULL && store->call_id != call_id)
        store = store->next;
    pthread_mutex_unlock(&pool->stores_lock);
    return store;
}

/* ---- Writing ----------------------------------------------------------- */

typedef struct checkpoint_writer {
    FILE *file;
    const char *path; /* of the .tmp file, for details */
    uint64_t bytes;
    hpool__hasher hasher;
    int rc; /* the first failure: later writes do nothing */
} checkpoint_writer;

static void write_bytes(checkpoint_writer *writer, const void *data, size_t size)
{
    if (writer->rc != 0 || size == 0)
        return;
    errno = 0;
    if (fwrite(data, 1, size, writer->file) != size) {
        writer->rc = checkpoint_io_fail("cannot write", writer->path, errno ? errno : EIO);
        return;
    }
    hpool__hasher_add(&writer->hasher, data, size);
    writer->bytes += size;
}

/* A pair as hpool__pair_encode lays it out, written in place rather than
 * encoded into a buffer first: a table is never copied whole. */
static void write_pair(checkpoint_writer *writer, const void *key, uint32_t key_size, const void *value,
                       uint32_t value_size)
{
    uint32_t sizes[2] = {key_size, value_size};
    write_bytes(writer, sizes, sizeof sizes);
    write_bytes(writer, key, key_size);
    write_bytes(writer, value, value_size);
}

static void write_header(checkpoint_writer *writer, const hpool_keyed_reducer *spec)
{
    const char *name = reducer_name(spec);
    uint32_t fields[2] = {CHECKPOINT_VERSION, (uint32_t)strlen(name)};
    write_bytes(writer, checkpoint_magic, sizeof checkpoint_magic);
    write_bytes(writer, fields, sizeof fields);
    write_bytes(writer, name, fields[1]);
}

/* A thread's staged pairs, then its mapped table. */
static void write_mapped(checkpoint_writer *writer, hpool__keyed_store *store, int thread, const char *path)
{
    hpool_emitter *emitter = &store->emitters[thread];
    hpool__emitter_flush(emitter);
    /* A pair the flush could not add is lost: the thread's next chunk
     * fails with the emitter's error, and the checkpoint must not pretend
     * to hold it. */
    if (emitter->error != 0 && writer->rc == 0)
        writer->rc = hpool__fail(emitter->error, "cannot add thread %d's staged pairs to its table for the keyed "
                                                 "checkpoint %s (%s)", thread, path, hpool_strerror(emitter->error));
    HPOOL__FOR_EACH_ENTRY(&store->mapped[thread], entry)
    {
        if (writer->rc != 0)
            break;
        const hpool__entry_header *header = (const hpool__entry_header *)entry;
        write_pair(writer, hpool__entry_key(entry), header->key_size, hpool__entry_value(entry), header->value_size);
    }
}

/* Copies a spill file, pairs already encoded, into the checkpoint, then
 * puts its position back at its end, where the next spill appends. */
static void copy_spill_file(checkpoint_writer *writer, const hpool__keyed_store *store, FILE *spill,
                            unsigned char *piece)
{
    if (writer->rc != 0)
        return;
    int rc = hpool__spill_rewind(store, spill);
    while (rc == 0 && writer->rc == 0) {
        errno = 0;
        size_t got = fread(piece, 1, PIECE_BYTES, spill);
        write_bytes(writer, piece, got);
        if (got < PIECE_BYTES) {
            char text[128];
            if (ferror(spill))
                rc = hpool__fail(HPOOL_EIO, "cannot read back a spill file in %s for a keyed checkpoint: %s",
                                 store->temp_dir, strerror_r(errno ? errno : EIO, text, sizeof text));
            break;
        }
    }
    clearerr(spill);
    errno = 0;
    if (fseek(spill, 0, SEEK_END) != 0 && rc == 0)
        rc = hpool__fail(HPOOL_EIO, "cannot seek in a spill file in %s after a keyed checkpoint", store->temp_dir);
    if (rc != 0 && writer->rc == 0)
        writer->rc = rc;
}

/* Makes a rename in the directory of path durable, as fdatasync made the
 * file's bytes: else a crash could bring the old file back after the
 * journal recorded the new one. */
static int sync_directory(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t size = slash == NULL ? 1 : slash == path ? 1 : (size_t)(slash - path);
    char *directory = hpool__malloc(size + 1);
    if (directory == NULL)
        return hpool__fail(HPOOL_ENOMEM, "no memory for the directory name of the keyed checkpoint %s", path);
    memcpy(directory, slash == NULL ? "." : path, size);
    directory[size] = '\0';
    int rc = 0, fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    /* EINVAL: a file system that cannot sync a directory, and needs not. */
    if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL))
        rc = checkpoint_io_fail("cannot sync the directory of", path, errno);
    if (fd >= 0)
        close(fd);
    free(directory);
    return rc;
}

int hpool__keyed_checkpoint(hpool_pool *pool, uint32_t call_id, int keyed, const char *path, uint64_t *bytes,
                            uint64_t *checksum)
{
    HPOOL__ASSERT(keyed >= 0 && (size_t)keyed < pool->keyed_reducer_count);
    hpool__keyed_store *store = find_store(pool, call_id);
    /* A failed spill dropped pairs (hpool__keyed_chunk_done): a checkpoint
     * of the rest would resume the call without them. */
    if (store != NULL && store->error != 0)
        return hpool__fail(store->error, "no keyed checkpoint %s: the call has lost pairs already: %s", path,
                           store->error_detail);
    size_t path_size = strlen(path);
    char *temp_path = hpool__malloc(path_size + sizeof ".tmp");
    unsigned char *piece = store != NULL && store->outbox != NULL ? hpool__malloc(PIECE_BYTES) : NULL;
    if (temp_path == NULL || (store != NULL && store->outbox != NULL && piece == NULL)) {
        free(temp_path);
        free(piece);
        return hpool__fail(HPOOL_ENOMEM, "no memory to write the keyed checkpoint %s", path);
    }
    memcpy(temp_path, path, path_size);
    memcpy(temp_path + path_size, ".tmp", sizeof ".tmp");

    checkpoint_writer writer = {.path = temp_path};
    hpool__hasher_start(&writer.hasher, HPOOL__HASH64_START);
    writer.file = fopen(temp_path, "wb");
    if (writer.file == NULL) {
        int rc = checkpoint_io_fail("cannot create", temp_path, errno);
        free(temp_path);
        free(piece);
        return rc;
    }
    write_header(&writer, &pool->keyed_reducers[keyed]);
    for (int t = 0; store != NULL && t < store->thread_count; t++)
        write_mapped(&writer, store, t, path);
    if (store != NULL && store->outbox != NULL) {
        pthread_mutex_lock(&store->lock); /* the lock spills take */
        for (int rank = 0; rank < store->ranks; rank++)
            copy_spill_file(&writer, store, store->outbox[rank], piece);
        pthread_mutex_unlock(&store->lock);
    }
    /* The buffered tail is written by fflush: a full disk shows there if
     * not before. */
    errno = 0;
    if (writer.rc == 0 && fflush(writer.file) != 0)
        writer.rc = checkpoint_io_fail("cannot write", temp_path, errno ? errno : EIO);
    if (writer.rc == 0 && fdatasync(fileno(writer.file)) != 0)
        writer.rc = checkpoint_io_fail("cannot sync", temp_path, errno);
    if (fclose(writer.file) != 0 && writer.rc == 0)
        writer.rc = checkpoint_io_fail("cannot close", temp_path, errno);
    if (writer.rc == 0 && rename(temp_path, path) != 0)
        writer.rc = checkpoint_io_fail("cannot rename over", path, errno);
    if (writer.rc != 0) {
        unlink(temp_path);
    } else {
        writer.rc = sync_directory(path);
        *bytes = writer.bytes;
        *checksum = hpool__hasher_end(&writer.hasher);
    }
    free(temp_path);
    free(piece);
    return writer.rc;
}

/* ---- Reading back ------------------------------------------------------- */

/* What a walk over a checkpoint's pairs does with each. */
typedef int pair_visit_fn(void *context, const hpool_pair *pair);

/* Reads the file (bytes long) from its start in pieces, hashing every
 * byte into *hash, and hands each pair that follows the header (pairs_at
 * bytes) to visit. 0, visit's failure, HPOOL_EIO or HPOOL_ENOMEM; *cut
 * when the file ends inside a pair. A pair's sizes are believed only as
 * far as the file goes: a changed file must not ask for gigabytes before
 * its hash is known. */
static int walk_pairs(FILE *file, const char *path, uint64_t bytes, uint64_t pairs_at, pair_visit_fn *visit,
                      void *context, uint64_t *hash, bool *cut)
{
    hpool__hasher hasher;
    hpool__hasher_start(&hasher, HPOOL__HASH64_START);
    *hash = 0; /* set at the end */
    *cut = false;
    errno = 0;
    if (fseeko(file, 0, SEEK_SET) != 0)
        return checkpoint_io_fail("cannot seek in", path, errno ? errno : EIO);
    hpool__buffer piece = {0};
    uint64_t piece_offset = 0; /* where piece.data[0] is in the file */
    uint64_t skip = pairs_at;
    size_t at = 0; /* the first byte of piece not yet used */
    bool ended = false;
    int rc = 0, next = 0;
    while (rc == 0 && !ended) {
        /* What is left of the last piece (the start of a pair) moves to
         * the front, and the read makes room for the rest of that pair. */
        if (at > 0) {
            memmove(piece.data, piece.data + at, piece.size - at);
            piece.size -= at;
            piece_offset += at;
            at = 0;
        }
        size_t wanted = PIECE_BYTES;
        uint32_t sizes[2];
        uint64_t left_in_file = bytes - hpool__min_u64(bytes, piece_offset + piece.size);
        if (piece.size >= sizeof sizes) {
            memcpy(sizes, piece.data, sizeof sizes);
            uint64_t rest_of_pair = sizeof sizes + (uint64_t)sizes[0] + sizes[1] - piece.size;
            if (rest_of_pair > wanted && rest_of_pair <= left_in_file)
                wanted = (size_t)rest_of_pair;
        }
        if (hpool__buffer_reserve(&piece, wanted) != 0) {
            rc = hpool__fail(HPOOL_ENOMEM, "no memory for a piece of %zu bytes of the keyed checkpoint %s",
                             piece.size + wanted, path);
            break;
        }
        errno = 0;
        size_t got = fread(piece.data + piece.size, 1, wanted, file);
        if (got < wanted && ferror(file)) {
            rc = checkpoint_io_fail("cannot read", path, errno ? errno : EIO);
            break;
        }
        ended = got < wanted;
        hpool__hasher_add(&hasher, piece.data + piece.size, got);
        piece.size += got;
        if (skip > 0) { /* the header */
            size_t skipped = (size_t)hpool__min_u64(skip, piece.size);
            at += skipped;
            skip -= skipped;
        }
        hpool_pair pair;
        while (rc == 0 && (next = hpool__pair_decode_next(piece.data, piece.size, &at, &pair)) == 1)
            rc = visit(context, &pair);
        if (rc == 0 && ended && next != 0)
            *cut = true;
    }
    hpool__buffer_release(&piece);
    *hash = hpool__hasher_end(&hasher);
    return rc;
}

/* The first pass: sizes checked against the reducer, nothing added. */
typedef struct check_context {
    const hpool_keyed_reducer *spec;
    bool wrong_value_size;
    uint32_t value_size; /* the first wrong one */
} check_context;

static int check_pair(void *context, const hpool_pair *pair)
{
    check_context *check = context;
    if (check->spec->combine != NULL && pair->value_size != check->spec->value_size && !check->wrong_value_size) {
        check->wrong_value_size = true;
        check->value_size = (uint32_t)pair->value_size;
    }
    return 0;
}

/* The second pass: pairs emitted into the store as a chunk's are, a
 * piece's worth per thread in turn, so they fill the tables side by side
 * and each spills past its share of the budget as after a chunk. */
typedef struct emit_context {
    hpool__keyed_store *store;
    const char *path;
    int thread;
    size_t bytes; /* added to thread's table since its last chunk_done */
} emit_context;

/* As hpool__keyed_chunk_done after a chunk: adds what is staged and spills
 * past the budget. A merge's failure is HPOOL_EFAILED, its code in the
 * detail; no memory is HPOOL_ENOMEM. */
static int emitted_piece_done(emit_context *emit, int code)
{
    const hpool_keyed_reducer *spec = emit->store->mapped[emit->thread].spec;
    int merge_code = emit->store->mapped[emit->thread].merge_code;
    int rc = hpool__keyed_chunk_done(emit->store, emit->thread, code);
    emit->thread = (emit->thread + 1) % emit->store->thread_count;
    emit->bytes = 0;
    if (merge_code != 0)
        return hpool__fail(HPOOL_EFAILED, "the merge of \"%s\" failed with %d on the pairs of the keyed checkpoint %s",
                           reducer_name(spec), merge_code, emit->path);
    if (rc == HPOOL_ENOMEM)
        return hpool__fail(HPOOL_ENOMEM, "no memory for the pairs of the keyed checkpoint %s", emit->path);
    return rc;
}

static int emit_pair(void *context, const hpool_pair *pair)
{
    emit_context *emit = context;
    int rc = hpool_emit(hpool__keyed_emitter(emit->store, emit->thread), pair->key, pair->key_size, pair->value,
                        pair->value_size);
    if (rc != 0)
        return emitted_piece_done(emit, rc);
    emit->bytes += pair->key_size + pair->value_size + 2 * sizeof(uint32_t);
    return emit->bytes >= PIECE_BYTES ? emitted_piece_done(emit, 0) : 0;
}

/* The header and the hash against what the journal recorded, and the pairs
 * against the reducer, without touching a store: 0 and where the pairs
 * start, or HPOOL_EJOURNAL (HPOOL_EIO, HPOOL_ENOMEM) with its detail. */
static int check_file(FILE *file, const char *path, const hpool_keyed_reducer *spec, uint64_t bytes,
                      uint64_t checksum, uint64_t *pairs_at)
{
    struct stat status;
    if (fstat(fileno(file), &status) != 0)
        return checkpoint_io_fail("cannot stat", path, errno);
    unsigned char header[HEADER_BYTES];
    errno = 0;
    size_t got = fread(header, 1, sizeof header, file);
    if (ferror(file))
        return checkpoint_io_fail("cannot read", path, errno ? errno : EIO);
    if (got >= sizeof checkpoint_magic && memcmp(header, checkpoint_magic, sizeof checkpoint_magic) != 0)
        return not_a_checkpoint(path, "");
    if ((uint64_t)status.st_size != bytes)
        return hpool__fail(HPOOL_EJOURNAL,
                           "the keyed checkpoint %s has changed since it was written: %lld bytes, written with %llu",
                           path, (long long)status.st_size, (unsigned long long)bytes);
    if (got < sizeof header)
        return not_a_checkpoint(path, " (shorter than its header)");
    uint32_t version, name_size;
    memcpy(&version, header + sizeof checkpoint_magic, sizeof version);
    memcpy(&name_size, header + sizeof checkpoint_magic + sizeof version, sizeof name_size);
    if (version != CHECKPOINT_VERSION)
        return hpool__fail(HPOOL_EJOURNAL, "%s is not an hpool keyed checkpoint of format %u (it says format %u)", path,
                           CHECKPOINT_VERSION, version);
    if (name_size > bytes - sizeof header)
        return not_a_checkpoint(path, " (its reducer's name runs past its end)");
    *pairs_at = sizeof header + name_size;

    check_context check = {.spec = spec};
    uint64_t hash;
    bool cut;
    int rc = walk_pairs(file, path, bytes, *pairs_at, check_pair, &check, &hash, &cut);
    if (rc != 0)
        return rc;
    if (hash != checksum)
        return hpool__fail(HPOOL_EJOURNAL, "the keyed checkpoint %s has changed since it was written: its checksum is "
                                           "%016llx, written with %016llx",
                           path, (unsigned long long)hash, (unsigned long long)checksum);
    if (cut)
        return not_a_checkpoint(path, " (it ends inside a pair)");

    /* The name: read back whole only if it has this reducer's length. */
    const char *want = reducer_name(spec);
    char name[256];
    size_t shown = name_size < sizeof name - 1 ? name_size : sizeof name - 1;
    errno = 0;
    if (fseeko(file, (off_t)sizeof header, SEEK_SET) != 0 || fread(name, 1, shown, file) != shown)
        return checkpoint_io_fail("cannot read", path, errno ? errno : EIO);
    name[shown] = '\0';
    if (name_size != strlen(want) || memcmp(name, want, name_size) != 0)
        return hpool__fail(HPOOL_EJOURNAL, "the keyed checkpoint %s holds the pairs of keyed reducer \"%s%s\", not of \"%s\"",
                           path, name, shown < name_size ? "..." : "", want);
    if (check.wrong_value_size)
        return hpool__fail(HPOOL_EJOURNAL, "the keyed checkpoint %s holds a value of %u bytes, and the combiner of \"%s\" "
                                           "takes %zu: was the reducer changed since?",
                           path, check.value_size, want, spec->value_size);
    return 0;
}

int hpool__keyed_restore(hpool_pool *pool, uint32_t call_id, int keyed, const char *path, uint64_t bytes,
                         uint64_t checksum)
{
    HPOOL__ASSERT(keyed >= 0 && (size_t)keyed < pool->keyed_reducer_count);
    const hpool_keyed_reducer *spec = &pool->keyed_reducers[keyed];
    FILE *file = fopen(path, "rb");
    if (file == NULL && errno == ENOENT)
        return hpool__fail(HPOOL_EJOURNAL, "the keyed checkpoint %s has changed since it was written: it is gone", path);
    if (file == NULL)
        return checkpoint_io_fail("cannot open", path, errno);
    /* Two passes: the whole file is checked before the store sees a pair,
     * so a changed file leaves the store as it was. */
    uint64_t pairs_at = 0;
    int rc = check_file(file, path, spec, bytes, checksum, &pairs_at);
    hpool__keyed_store *store = NULL;
    if (rc == 0 && (store = hpool__keyed_store_get(pool, call_id, keyed)) == NULL)
        rc = hpool__fail(HPOOL_ENOMEM, "no memory for the store of a keyed call, to restore %s", path);
    if (rc == 0) {
        HPOOL__ASSERT(!store->shuffle_started);
        emit_context emit = {.store = store, .path = path};
        uint64_t hash;
        bool cut;
        rc = walk_pairs(file, path, bytes, pairs_at, emit_pair, &emit, &hash, &cut);
        if (rc == 0)
            rc = emitted_piece_done(&emit, 0);
        else if (emit.bytes > 0)
            emitted_piece_done(&emit, rc); /* a read failed: what is staged still goes in, as after a chunk */
        /* Unchanged since the first pass, or the file was replaced under us. */
        if (rc == 0 && (hash != checksum || cut))
            rc = hpool__fail(HPOOL_EJOURNAL, "the keyed checkpoint %s changed while it was read back", path);
        /* A spill that failed is the store's error, which the call reports
         * too; the journal learns of it now. */
        if (rc == 0 && store->error != 0)
            rc = hpool__fail(store->error, "%s", store->error_detail);
    }
    fclose(file);
    return rc;
}
