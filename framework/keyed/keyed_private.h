/* keyed_private.h: what the keyed files share: pair tables, a rank's store, encoded pairs and spill files. */
#ifndef HPOOL_KEYED_PRIVATE_H
#define HPOOL_KEYED_PRIVATE_H

#include "../internal.h"

#include <stdio.h>

/* Pairs in an arena: with a combiner or a merge one entry per key, found
 * through an open-addressing index; without, every pair in emission order.
 * A merge that outgrows its entry moves the key to a new entry at the end
 * and leaves the old one dead (see hpool__entry_is_dead); the table
 * compacts itself once dead entries are half its arena. */
typedef struct hpool__pair_table {
    const hpool_keyed_reducer *spec;
    bool combining; /* one entry per key: spec->combine or spec->merge */
    bool staging;   /* spec->combine: fixed-size values, staged by the emitter */
    bool sum_u64;   /* spec->combine is hpool_combine_sum_u64: added in place, no call */
    size_t staged_value_size; /* staging: spec->value_size, else SIZE_MAX (hpool_emit's one test) */
    hpool__buffer arena;
    uint64_t *slots; /* 0 for empty, else arena offset + 1 and hash bits */
    size_t capacity, count; /* count: live entries */
    /* Merge tables only: the merge's output, bytes of dead entries in the
     * arena, and the first failing merge's code (HPOOL_EINVAL for a value
     * past UINT32_MAX bytes), kept for the report. */
    hpool__buffer merged;
    size_t dead_bytes;
    int merge_code;
} hpool__pair_table;

/* Pairs for a combining table are staged a batch at a time, so their slots
 * and entries can be fetched from memory together rather than one cache
 * miss after another: most of a word count's time is those misses. 128
 * rather than 16 leaves each prefetch longer to land (word count, 2
 * threads: 16 -> 0.68 s, 32 -> 0.63, 64 -> 0.61, 128 -> 0.59, 512 -> 0.60). */
#define HPOOL__STAGED_PAIRS 128
#define HPOOL__STAGED_BYTES 4096
/* The call's argument (hpool_call.argument) as keyed functions see it. */
typedef struct hpool__argument {
    const void *data;
    size_t size;
} hpool__argument;

struct hpool_emitter {
    hpool__pair_table *table;
    int error;
    hpool__argument argument; /* for hpool_emitter_argument() */
    size_t staged_count, staged_bytes;
    /* Each staged pair's hash (taken while its key is hot, and its slot
     * prefetched then), key size, and where its key and value start. */
    uint64_t staged_hashes[HPOOL__STAGED_PAIRS];
    uint32_t staged_key_sizes[HPOOL__STAGED_PAIRS];
    uint32_t staged_at[HPOOL__STAGED_PAIRS];
    /* key, then value 8-byte aligned, for each pair; 16 bytes more that a
     * compare of the last staged key may read (same_short_key) */
    _Alignas(8) unsigned char staged[HPOOL__STAGED_BYTES + 16];
};

#ifdef HPOOL_TESTING
/* Test builds: the bits of every key's hash that are kept (all of them
 * unless a test says otherwise), so that a test can make keys collide. */
extern uint64_t hpool__test_hash_mask;
#endif

/* Adds the staged pairs to the table; call before reading the table. */
void hpool__emitter_flush(hpool_emitter *emitter);

/* ---- Entries in a table's arena (pair_table.c, reduce.c) ------------------ */

/* An entry: this header, then key and value, each 8-byte aligned so a
 * combiner may treat the value as its struct. */
typedef struct hpool__entry_header {
    uint64_t hash;
    uint32_t key_size, value_size;
} hpool__entry_header;

static inline size_t hpool__round8(size_t size)
{
    return (size_t)hpool__round_up(size, 8);
}

static inline size_t hpool__entry_size(uint32_t key_size, uint32_t value_size)
{
    return sizeof(hpool__entry_header) + hpool__round8(key_size) + hpool__round8(value_size);
}

static inline unsigned char *hpool__entry_key(unsigned char *entry)
{
    return entry + sizeof(hpool__entry_header);
}

static inline unsigned char *hpool__entry_value(unsigned char *entry)
{
    return entry + sizeof(hpool__entry_header) + hpool__round8(((hpool__entry_header *)entry)->key_size);
}

/* A stretch of a merge table's arena that no key uses any more: key size
 * 0 and hash 0, a header no live entry has (the empty key's hash is not 0,
 * which test_pair_table checks), and a value spanning the stretch. */
static inline bool hpool__entry_is_dead(const unsigned char *entry)
{
    const hpool__entry_header *header = (const hpool__entry_header *)entry;
    return header->key_size == 0 && header->hash == 0;
}

/* Visits each live entry of a table, in arena order. */
#define HPOOL__FOR_EACH_ENTRY(table, entry)                                                                       \
    for (unsigned char *entry = (table)->arena.data; entry != NULL && entry < (table)->arena.data + (table)->arena.size; \
         entry += hpool__entry_size(((hpool__entry_header *)entry)->key_size,                                   \
                                    ((hpool__entry_header *)entry)->value_size))                                \
        if (hpool__entry_is_dead(entry)) {                                                                        \
        } else

/* Encoded pairs, as in PAIRS messages and spill files: u32 key size, u32
 * value size, key, value, one after another. */
int hpool__pair_encode(hpool__buffer *out, const void *key, uint32_t key_size, const void *value,
                       uint32_t value_size);
/* Walks an encoded list: 1 and the pair at *at, 0 at the end, HPOOL_EPEER
 * if cut short. */
int hpool__pair_decode_next(const unsigned char *data, size_t size, size_t *at, hpool_pair *pair);
/* Which of shares a key's hash belongs to, on a rank. */
int hpool__share_of(uint64_t hash, int shares);

void hpool__pair_table_init(hpool__pair_table *table, const hpool_keyed_reducer *spec);
void hpool__pair_table_release(hpool__pair_table *table);
int hpool__pair_table_add(hpool__pair_table *table, const void *key, size_t key_size, const void *value,
                          size_t value_size);
int hpool__pair_table_merge(hpool__pair_table *into, const hpool__pair_table *from);
/* Appends each pair to out[owner rank], encoded. */
int hpool__pair_table_partition(const hpool__pair_table *table, int partitions, hpool__buffer *out);
/* A rank keeps the pairs it owns in one table per share of their keys (by
 * hash; a share per team thread), so its threads combine, reduce and sort
 * them side by side. Gathering: the threads' tables (as many as shares)
 * send other ranks' pairs to parts[table * ranks + owner], encoded, and
 * the rank's own pairs into the shares' tables, emptying mapped. */
int hpool__pair_tables_gather(hpool__pair_table *mapped, hpool__pair_table *owned, int shares, int ranks, int me,
                              hpool__buffer *parts, hpool__team *team);
/* Adds encoded pairs to the shares' tables. */
int hpool__pair_tables_add_encoded(hpool__pair_table *shares, int count, const void *data, size_t size);
/* Reduces every key of the shares' tables and appends the output pairs to
 * out as packed sorted runs (see hpool__merge_packed_runs), a team thread
 * per share. On a reduce function's failure, *code is its return. */
int hpool__pair_tables_reduce(const hpool__pair_table *shares, int count, hpool__team *team,
                              const hpool__argument *argument, hpool__buffer *out, int *code);
int hpool__pair_table_reduce_into(hpool__pair_table *table, hpool__pair_table *output, const hpool__argument *argument,
                                  int *code);
/* Appends the table's pairs to out as packed runs in spec's output order,
 * sorted on the team's threads. */
int hpool__pair_table_encode_sorted(const hpool__pair_table *table, const hpool_keyed_reducer *spec,
                                    hpool__team *team, hpool__buffer *out);
int hpool__pair_table_encode_by_key(const hpool__pair_table *table, hpool__buffer *out);
void hpool__decode_pair_at(const unsigned char *data, hpool_pair *pair);
int hpool__compare_pairs(const hpool_pair *a, const hpool_pair *b, const hpool_keyed_reducer *spec);
/* A rank's reduced output travels as sorted runs packed in one buffer (u64
 * run count, u64 size of each, the runs). Merges the runs of count such
 * buffers into *pairs (malloc'd; pointing into the buffers). */
int hpool__merge_packed_runs(void *const *buffers, const size_t *sizes, size_t count,
                             const hpool_keyed_reducer *spec, hpool_pair **pairs, uint64_t *pair_count);

/* What one rank holds of one keyed call: the pairs its map chunks emitted,
 * then the partitions it owns, as they arrive from every rank. */
struct hpool__keyed_store {
    struct hpool__keyed_store *next;
    uint32_t call_id;
    int keyed;
    pthread_mutex_t lock;         /* team threads spilling to the outbox */
    /* One table per worker thread, filled by that thread alone across all
     * its chunks: a word is hashed once per emit, with no lock and no
     * second merge; duplicates across threads combine at their owner. */
    hpool__pair_table *mapped;
    hpool_emitter *emitters;      /* a thread's, into its mapped table */
    int thread_count;
    hpool__pair_table *owned;     /* a table per share (thread_count of them) */
    int partitions_received;      /* the ones marked last, from each rank */
    bool shuffle_started;
    int ranks;
    size_t budget;                /* bytes a table may hold before it spills */
    const char *temp_dir;
    const char *temp_dir_origin;  /* "TMPDIR", "options.temp_dir"...: for details */
    FILE **outbox;                /* after a map-side spill: per owner rank */
    FILE **runs;                  /* owned pairs spilled, each sorted by key */
    size_t run_count, run_capacity;
    uint64_t spilled_bytes;
    /* The first merge that failed as the rank gathered its keys: its pairs
     * are dropped from then on, and its run reports the code. */
    int merge_code;
    /* The first error of the rank's own keyed work (a spill file that could
     * not be made, written or read back; no memory), with its detail. The
     * exchange goes on without this rank's pairs, so no rank waits for
     * them, and the run reports it: the call fails with it on the root. */
    int error;
    char error_detail[256];
    bool sending;                 /* pieces of the outbox still to send */
    int send_rank;
    /* The call's argument, copied from its first batch or its SHUFFLE,
     * for the keyed map and reduce functions of this rank. */
    void *argument_copy;
    hpool__argument argument;
    bool has_argument;
};

/* The rank's store for a keyed call, made on first use (store.c); NULL
 * if memory ran out. */
hpool__keyed_store *hpool__keyed_store_get(hpool_pool *pool, uint32_t call_id, int keyed);
/* Gives the store the call's argument, the first time; 0 or HPOOL_ENOMEM. */
int hpool__keyed_store_set_argument(hpool__keyed_store *store, const void *data, size_t size);
void hpool__keyed_store_free(hpool__keyed_store *store);
/* Keeps code, a negative error this thread has just made (with its detail,
 * if any), as the store's error unless it has one; returns code. */
int hpool__keyed_store_fail(hpool__keyed_store *store, int code);

/* Spilling keyed pairs to temporary files (spill.c). */
size_t hpool__pair_table_bytes(const hpool__pair_table *table);
/* The spill functions fail with HPOOL_EIO, with a detail naming the
 * directory and errno's text (ENOSPC, EFBIG...), or HPOOL_ENOMEM, with a
 * detail saying what could not be allocated. */
/* Sends a mapped table to the outbox files, one per owner rank, and
 * empties it, even on failure. With store->lock held if team threads may
 * run. */
int hpool__spill_mapped(hpool__keyed_store *store, hpool__pair_table *table);
int hpool__spill_add_owned(hpool__keyed_store *store, const void *data, size_t size);
/* Spills the owned tables if they hold more than half the budget. */
int hpool__spill_owned_if_over(hpool__keyed_store *store);
/* Flushes a spill file and goes back to its start, to read it. */
int hpool__spill_rewind(const hpool__keyed_store *store, FILE *file);
/* Reads pairs from file, encoded, up to about max_bytes; *ended at EOF. */
int hpool__spill_read_piece(const hpool__keyed_store *store, FILE *file, hpool__buffer *out, size_t max_bytes,
                            bool *ended);
/* hpool__pair_tables_reduce over the owned tables and the store's sorted
 * runs. On a reduce function's or a merge's failure (HPOOL_EFAILED), *code
 * is its return. */
int hpool__spill_reduce(hpool__keyed_store *store, hpool__team *team, hpool__buffer *run, int *code);
void hpool__spill_close(hpool__keyed_store *store);

#endif
