/* spill.c: keyed pairs over the memory budget go to temporary files, and are merged back key by key. */
#define _GNU_SOURCE
#include "keyed_private.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A file that vanishes when closed, even if the process dies. */
static FILE *temp_file(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/hpool-spill-XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    unlink(path);
    FILE *file = fdopen(fd, "w+b");
    if (file == NULL)
        close(fd);
    return file;
}

size_t hpool__pair_table_bytes(const hpool__pair_table *table)
{
    return table->arena.capacity + table->capacity * sizeof *table->slots;
}

/* Map side: the rank's pairs so far go to one file per owner rank. */
int hpool__spill_mapped(hpool__keyed_store *store, hpool__pair_table *table)
{
    int ranks = store->ranks;
    if (store->outbox == NULL) {
        store->outbox = hpool__calloc((size_t)ranks, sizeof *store->outbox);
        if (store->outbox == NULL)
            return HPOOL_ENOMEM;
        for (int rank = 0; rank < ranks; rank++)
            if ((store->outbox[rank] = temp_file(store->temp_dir)) == NULL)
                return HPOOL_EIO;
    }
    hpool__buffer *parts = hpool__calloc((size_t)ranks, sizeof *parts);
    if (parts == NULL)
        return HPOOL_ENOMEM;
    int rc = hpool__pair_table_partition(table, ranks, parts);
    for (int rank = 0; rank < ranks; rank++) {
        if (rc == 0 && parts[rank].size > 0 && fwrite(parts[rank].data, 1, parts[rank].size, store->outbox[rank])
                                                    != parts[rank].size)
            rc = HPOOL_EIO;
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
            return HPOOL_ENOMEM;
        store->runs = grown;
        FILE *file = temp_file(store->temp_dir);
        if (file == NULL)
            return HPOOL_EIO;
        store->runs[store->run_count++] = file;
        hpool__buffer sorted = {0};
        rc = hpool__pair_table_encode_by_key(owned, &sorted);
        if (rc == 0 && sorted.size > 0 && fwrite(sorted.data, 1, sorted.size, file) != sorted.size)
            rc = HPOOL_EIO;
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

/* One pair from a file into out, encoded: 1, 0 at the end, or an error. */
static int read_pair(FILE *file, hpool__buffer *out)
{
    uint32_t sizes[2];
    size_t got = fread(sizes, 1, sizeof sizes, file);
    if (got == 0)
        return ferror(file) ? HPOOL_EIO : 0;
    if (got != sizeof sizes)
        return HPOOL_EIO;
    size_t body = (size_t)sizes[0] + sizes[1];
    if (hpool__buffer_append(out, sizes, sizeof sizes) != 0 || hpool__buffer_reserve(out, body) != 0)
        return HPOOL_ENOMEM;
    if (body > 0 && fread(out->data + out->size, 1, body, file) != body)
        return HPOOL_EIO;
    out->size += body;
    return 1;
}

int hpool__spill_read_piece(FILE *file, hpool__buffer *out, size_t max_bytes, bool *ended)
{
    *ended = false;
    while (out->size < max_bytes) {
        int rc = read_pair(file, out);
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

static int reader_advance(run_reader *reader)
{
    reader->pair.size = 0;
    int rc = read_pair(reader->file, &reader->pair);
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
        return HPOOL_ENOMEM;
    for (size_t r = 0; r < count && rc == 0; r++) {
        readers[r].file = store->runs[r];
        if (fseek(readers[r].file, 0, SEEK_SET) != 0)
            rc = HPOOL_EIO;
        else
            rc = reader_advance(&readers[r]);
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
                    rc = reader_advance(&readers[r]);
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
