/* spill.c: keyed pairs over the memory budget go to temporary files, and are merged back key by key. */
#define _GNU_SOURCE
#include "keyed_private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* errno's text, thread-safe (team threads spill too). */
static const char *errno_text(int error, char *buf, size_t size)
{
    return strerror_r(error, buf, size); /* the GNU one: returns the text */
}

/* Where the store's temporary directory came from, for details. */
static const char *temp_dir_origin(const hpool__keyed_store *store)
{
    return store->temp_dir_origin != NULL ? store->temp_dir_origin : "options.temp_dir or TMPDIR";
}

/* A spill failure's detail: the call, the directory, errno's text and
 * where the directory was set, e.g. "cannot create a spill file in
 * /nonexistent: No such file or directory (TMPDIR)". */
static int spill_fail(const hpool__keyed_store *store, const char *what, int error)
{
    char text[128];
    return hpool__fail(HPOOL_EIO, "%s a spill file in %s: %s (%s)", what, store->temp_dir,
                       errno_text(error, text, sizeof text), temp_dir_origin(store));
}

/* A file that vanishes when closed, even if the process dies. 0, or
 * HPOOL_EIO with a detail naming the directory and the cause. */
static int temp_file(const hpool__keyed_store *store, FILE **out)
{
    *out = NULL;
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/hpool-spill-XXXXXX", store->temp_dir) >= sizeof path)
        return spill_fail(store, "cannot create", ENAMETOOLONG);
    int fd = mkstemp(path);
    if (fd < 0)
        return spill_fail(store, "cannot create", errno);
    unlink(path);
    FILE *file = fdopen(fd, "w+b");
    if (file == NULL) {
        int error = errno;
        close(fd);
        return spill_fail(store, "cannot open", error);
    }
    *out = file;
    return 0;
}

/* Writes size bytes to a spill file: 0, or HPOOL_EIO naming the cause (a
 * full disk is ENOSPC, a file size limit EFBIG). */
static int write_spill(const hpool__keyed_store *store, FILE *file, const void *data, size_t size)
{
    if (size == 0)
        return 0;
    errno = 0;
    if (fwrite(data, 1, size, file) == size)
        return 0;
    return spill_fail(store, "cannot write to", errno ? errno : EIO);
}

int hpool__spill_rewind(const hpool__keyed_store *store, FILE *file)
{
    /* The buffered tail is written here: a full disk shows now if not before. */
    errno = 0;
    if (fflush(file) != 0)
        return spill_fail(store, "cannot write to", errno ? errno : EIO);
    if (fseek(file, 0, SEEK_SET) != 0)
        return spill_fail(store, "cannot seek in", errno ? errno : EIO);
    return 0;
}

size_t hpool__pair_table_bytes(const hpool__pair_table *table)
{
    return table->arena.capacity + table->capacity * sizeof *table->slots;
}

/* Map side: the rank's pairs so far go to one file per owner rank. The
 * table is emptied whatever happens, so a failed spill cannot grow it. */
int hpool__spill_mapped(hpool__keyed_store *store, hpool__pair_table *table)
{
    int ranks = store->ranks;
    int rc = 0;
    if (store->outbox == NULL) {
        /* All files or none: a later spill writes to each. */
        FILE **outbox = hpool__calloc((size_t)ranks, sizeof *outbox);
        if (outbox == NULL)
            rc = hpool__fail(HPOOL_ENOMEM, "no memory for the table of %d spill files", ranks);
        for (int rank = 0; rc == 0 && rank < ranks; rank++)
            rc = temp_file(store, &outbox[rank]);
        if (rc == 0) {
            store->outbox = outbox;
        } else {
            for (int rank = 0; outbox != NULL && rank < ranks; rank++)
                if (outbox[rank] != NULL)
                    fclose(outbox[rank]);
            free(outbox);
        }
    }
    hpool__buffer *parts = rc == 0 ? hpool__calloc((size_t)ranks, sizeof *parts) : NULL;
    if (rc == 0 && parts == NULL)
        rc = hpool__fail(HPOOL_ENOMEM, "no memory to partition pairs for spilling");
    if (rc == 0 && hpool__pair_table_partition(table, ranks, parts) != 0)
        rc = hpool__fail(HPOOL_ENOMEM, "no memory to encode %zu pairs for spilling", table->count);
    for (int rank = 0; parts != NULL && rank < ranks; rank++) {
        if (rc == 0)
            rc = write_spill(store, store->outbox[rank], parts[rank].data, parts[rank].size);
        store->spilled_bytes += parts[rank].size;
        hpool__buffer_release(&parts[rank]);
    }
    free(parts);
    const hpool_keyed_reducer *spec = table->spec;
    hpool__pair_table_release(table);
    hpool__pair_table_init(table, spec);
    return rc;
}

/* Reduce side: each owned table, sorted by key, becomes one more run. */
static int spill_owned(hpool__keyed_store *store)
{
    int rc = 0;
    for (int s = 0; s < store->thread_count && rc == 0; s++) {
        hpool__pair_table *owned = &store->owned[s];
        if (owned->count == 0)
            continue;
        FILE **grown = hpool__grow_array(store->runs, &store->run_capacity, store->run_count, sizeof *grown);
        if (grown == NULL)
            return hpool__fail(HPOOL_ENOMEM, "no memory for the table of %zu spill files", store->run_count + 1);
        store->runs = grown;
        FILE *file;
        if ((rc = temp_file(store, &file)) != 0)
            return rc;
        store->runs[store->run_count++] = file;
        hpool__buffer sorted = {0};
        if (hpool__pair_table_encode_by_key(owned, &sorted) != 0)
            rc = hpool__fail(HPOOL_ENOMEM, "no memory to sort %zu pairs for spilling", owned->count);
        if (rc == 0)
            rc = write_spill(store, file, sorted.data, sorted.size);
        store->spilled_bytes += sorted.size;
        hpool__buffer_release(&sorted);
        const hpool_keyed_reducer *spec = owned->spec;
        hpool__pair_table_release(owned);
        hpool__pair_table_init(owned, spec);
    }
    return rc;
}

/* Adds encoded pairs to the owned tables, spilling them whenever they grow
 * past half the budget (the other half is for what is being read and sent). */
int hpool__spill_add_owned(hpool__keyed_store *store, const void *data, size_t size)
{
    int rc = hpool__pair_tables_add_encoded(store->owned, store->thread_count, data, size);
    return rc != 0 ? rc : hpool__spill_owned_if_over(store);
}

int hpool__spill_owned_if_over(hpool__keyed_store *store)
{
    size_t bytes = 0;
    for (int s = 0; s < store->thread_count; s++)
        bytes += hpool__pair_table_bytes(&store->owned[s]);
    if (store->budget > 0 && bytes > store->budget / 2)
        return spill_owned(store);
    return 0;
}

/* One pair from a file into out, encoded: 1, 0 at the end, or an error
 * (HPOOL_EIO for a failed read or a file cut short, HPOOL_ENOMEM). */
static int read_pair(const hpool__keyed_store *store, FILE *file, hpool__buffer *out)
{
    uint32_t sizes[2];
    errno = 0;
    size_t got = fread(sizes, 1, sizeof sizes, file);
    if (got == 0 && !ferror(file))
        return 0;
    if (got != sizeof sizes)
        return ferror(file) ? spill_fail(store, "cannot read", errno ? errno : EIO)
                            : hpool__fail(HPOOL_EIO, "a spill file in %s ends inside a pair: was it truncated?",
                                          store->temp_dir);
    size_t body = (size_t)sizes[0] + sizes[1];
    if (hpool__buffer_append(out, sizes, sizeof sizes) != 0 || hpool__buffer_reserve(out, body) != 0)
        return hpool__fail(HPOOL_ENOMEM, "no memory for a spilled pair of %zu bytes read back", body);
    if (body > 0 && fread(out->data + out->size, 1, body, file) != body)
        return ferror(file) ? spill_fail(store, "cannot read", errno ? errno : EIO)
                            : hpool__fail(HPOOL_EIO, "a spill file in %s ends inside a pair: was it truncated?",
                                          store->temp_dir);
    out->size += body;
    return 1;
}

int hpool__spill_read_piece(const hpool__keyed_store *store, FILE *file, hpool__buffer *out, size_t max_bytes,
                            bool *ended)
{
    *ended = false;
    while (out->size < max_bytes) {
        int rc = read_pair(store, file, out);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            *ended = true;
            break;
        }
    }
    return 0;
}

/* ---- Merging the runs back, key by key ---------------------------------- */

typedef struct run_reader {
    FILE *file;
    hpool__buffer pair; /* the current pair, encoded */
    hpool_pair current;
    bool live;
} run_reader;

static int reader_advance(const hpool__keyed_store *store, run_reader *reader)
{
    reader->pair.size = 0;
    int rc = read_pair(store, reader->file, &reader->pair);
    reader->live = rc == 1;
    if (reader->live)
        hpool__decode_pair_at(reader->pair.data, &reader->current);
    return rc < 0 ? rc : 0;
}

static int compare_keys(const hpool_pair *a, const hpool_pair *b)
{
    return hpool__compare_bytes(a->key, a->key_size, b->key, b->key_size);
}

int hpool__spill_reduce(hpool__keyed_store *store, hpool__team *team, hpool__buffer *run, int *code)
{
    if (store->run_count == 0)
        return hpool__pair_tables_reduce(store->owned, store->thread_count, team, &store->argument, run, code);
    /* What is still in memory becomes the last run, so every key is merged
     * from sorted files only. */
    int rc = spill_owned(store);
    size_t count = store->run_count;
    run_reader *readers = hpool__calloc(count, sizeof *readers);
    if (readers == NULL)
        return hpool__fail(HPOOL_ENOMEM, "no memory to read back %zu spill files", count);
    for (size_t r = 0; r < count && rc == 0; r++) {
        readers[r].file = store->runs[r];
        rc = hpool__spill_rewind(store, readers[r].file);
        if (rc == 0)
            rc = reader_advance(store, &readers[r]);
    }
    /* Each key's pairs are gathered in a table of their own (combining if
     * there is a combiner or a merge), then reduced into the output as if
     * unspilled. */
    const hpool_keyed_reducer *spec = store->owned[0].spec;
    hpool__pair_table group, output;
    hpool__pair_table_init(&group, spec);
    hpool__pair_table_init(&output, NULL);
    hpool__buffer key = {0};
    while (rc == 0) {
        size_t least = count;
        for (size_t r = 0; r < count; r++)
            if (readers[r].live && (least == count || compare_keys(&readers[r].current, &readers[least].current) < 0))
                least = r;
        if (least == count)
            break;
        key.size = 0;
        rc = hpool__buffer_append(&key, readers[least].current.key, readers[least].current.key_size);
        hpool_pair wanted = {key.data, key.size, NULL, 0};
        for (size_t r = 0; r < count && rc == 0; r++)
            while (rc == 0 && readers[r].live && compare_keys(&readers[r].current, &wanted) == 0) {
                const hpool_pair *pair = &readers[r].current;
                rc = hpool__pair_table_add(&group, pair->key, pair->key_size, pair->value, pair->value_size);
                if (rc == HPOOL_EFAILED) /* a merge failed */
                    *code = group.merge_code;
                if (rc == 0)
                    rc = reader_advance(store, &readers[r]);
            }
        if (rc == 0)
            rc = hpool__pair_table_reduce_into(&group, &output, &store->argument, code);
        hpool__pair_table_release(&group);
        hpool__pair_table_init(&group, spec);
    }
    if (rc == 0)
        rc = hpool__pair_table_encode_sorted(&output, spec, team, run);
    hpool__buffer_release(&key);
    hpool__pair_table_release(&group);
    hpool__pair_table_release(&output);
    for (size_t r = 0; r < count; r++)
        hpool__buffer_release(&readers[r].pair);
    free(readers);
    return rc;
}

void hpool__spill_close(hpool__keyed_store *store)
{
    for (int rank = 0; store->outbox != NULL && rank < store->ranks; rank++)
        if (store->outbox[rank] != NULL)
            fclose(store->outbox[rank]);
    free(store->outbox);
    store->outbox = NULL;
    for (size_t r = 0; r < store->run_count; r++)
        fclose(store->runs[r]);
    free(store->runs);
    store->runs = NULL;
    store->run_count = store->run_capacity = 0;
}
