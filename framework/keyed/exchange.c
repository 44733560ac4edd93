/* exchange.c: the keyed shuffle between ranks: partitions out, owned pairs in, reduced runs to the root. */
#include "keyed_private.h"

#include <stdlib.h>
#include <string.h>

/* Messages are built in one buffer, room for the envelope and header
 * first, so the pairs or runs need no second copy. */
#define PAIRS_PREFIX HPOOL__BODY_OFFSET(hpool__pairs_header)
#define RUN_PREFIX HPOOL__BODY_OFFSET(hpool__run_header)
static const unsigned char room_for_header[64];
_Static_assert(PAIRS_PREFIX <= sizeof room_for_header && RUN_PREFIX <= sizeof room_for_header, "header room");

/* Spilled partitions travel in pieces, and no more than this many bytes
 * wait in sends at once, so the shuffle stays within the budget. */
static size_t piece_bytes(const hpool__keyed_store *store)
{
    size_t piece = store->budget / 8;
    return piece < 65536 ? 65536 : piece > (16u << 20) ? (16u << 20) : piece;
}

static void remove_store(hpool_pool *pool, hpool__keyed_store *store)
{
    pthread_mutex_lock(&pool->stores_lock);
    hpool__keyed_store **link = &pool->keyed_stores;
    while (*link != NULL && *link != store)
        link = &(*link)->next;
    if (*link != NULL)
        *link = store->next;
    pthread_mutex_unlock(&pool->stores_lock);
    hpool__keyed_store_free(store);
}

/* A failure while this rank gathers its keys (into its owned tables) must
 * not stop the exchange, since every rank waits for this one's partitions
 * and run: a merge's code (HPOOL_EFAILED) is kept in the store, and any
 * other error of the rank's own work (a spill file, no memory) as the
 * store's error, for finish_if_complete to report; 0 is returned. */
static int keep_failure(hpool__keyed_store *store, int rc)
{
    if (rc == 0)
        return 0;
    if (rc != HPOOL_EFAILED) {
        hpool__keyed_store_fail(store, rc);
        return 0;
    }
    for (int s = 0; s < store->thread_count; s++) {
        if (store->merge_code == 0)
            store->merge_code = store->owned[s].merge_code;
        store->owned[s].merge_code = 0;
    }
    if (store->merge_code == 0) /* only merges fail with HPOOL_EFAILED here; still, never report success */
        store->merge_code = HPOOL_EFAILED;
    return 0;
}

/* Whether the store has failed already: nothing more to gather. */
static bool store_failed(const hpool__keyed_store *store)
{
    return store->merge_code != 0 || store->error != 0;
}

/* Drops the pairs a failed store still holds in memory. */
static void drop_pairs(hpool__keyed_store *store)
{
    for (int t = 0; t < store->thread_count; t++) {
        const hpool_keyed_reducer *spec = store->mapped[t].spec;
        hpool__pair_table_release(&store->mapped[t]);
        hpool__pair_table_init(&store->mapped[t], spec);
        spec = store->owned[t].spec;
        hpool__pair_table_release(&store->owned[t]);
        hpool__pair_table_init(&store->owned[t], spec);
    }
}

/* Hands this rank's sorted runs, merged, to the keyed reducer's write
 * function. */
static int write_share(int rank, const hpool_keyed_reducer *spec, unsigned char *runs, size_t size, int *code)
{
    hpool_pair *pairs = NULL;
    uint64_t count = 0;
    void *buffers[1] = {runs};
    int rc = hpool__merge_packed_runs(buffers, &size, 1, spec, &pairs, &count);
    if (rc != 0)
        return rc;
    int result = spec->write(rank, pairs, count, spec->user);
    free(pairs);
    if (result == 0)
        return 0;
    *code = result;
    return HPOOL_EFAILED;
}

/* Once this rank has its own partition from every rank, reduce and sort
 * its keys and hand the runs to the root. */
static int finish_if_complete(hpool_pool *pool, hpool__keyed_store *store)
{
    if (!store->shuffle_started || store->sending || store->partitions_received < pool->transport.size)
        return 0;
    hpool__buffer run = {0};
    hpool__run_header header = {.call_id = store->call_id};
    int rc = hpool__buffer_append(&run, room_for_header, RUN_PREFIX);
    if (rc == 0 && store->error != 0) {
        rc = store->error;
    } else if (rc == 0 && store->merge_code != 0) {
        rc = HPOOL_EFAILED;
        header.code = store->merge_code;
    }
    if (rc == 0)
        rc = hpool__spill_reduce(store, &pool->team, &run, &header.code);
    const hpool_keyed_reducer *spec = &pool->keyed_reducers[store->keyed];
    if (rc == 0 && spec->write != NULL)
        rc = write_share(pool->transport.rank, spec, run.data + RUN_PREFIX, run.size - RUN_PREFIX, &header.code);
    if (rc != HPOOL_EFAILED) /* a reduce, write or merge function's failure is in header.code */
        hpool__keyed_store_fail(store, rc);
    if (store->error == HPOOL_ENOMEM && store->error_detail[0] == '\0')
        snprintf(store->error_detail, sizeof store->error_detail,
                 "out of memory in the shuffle or reduce of a keyed call (memory budget %zu bytes: a lower "
                 "options.memory_budget or HPOOL_MEMORY_BUDGET spills sooner)", store->budget);
    if (run.data != NULL && (rc != 0 || spec->write != NULL)) {
        /* the root gets none of it: no runs, and after a failure of the
         * rank's own, its detail (text without the NUL) */
        static const uint64_t no_runs = 0;
        run.size = RUN_PREFIX;
        if (hpool__buffer_append(&run, &no_runs, sizeof no_runs) != 0 && rc == 0)
            rc = HPOOL_ENOMEM;
        if (store->error != 0)
            hpool__buffer_append(&run, store->error_detail, strlen(store->error_detail)); /* no memory: no detail */
    }
    header.status = rc;
    header.spilled_bytes = store->spilled_bytes;
    char detail[sizeof store->error_detail];
    snprintf(detail, sizeof detail, "%s", store->error != 0 ? store->error_detail : "");
    remove_store(pool, store);
    if (run.data == NULL)
        return hpool__fail(HPOOL_ENOMEM, "no memory for the KEYED_RESULT message of a keyed call");
    hpool__message_write_header(run.data, HPOOL__MSG_KEYED_RESULT, &header, sizeof header);
    if (hpool_pool_is_root(pool)) {
        size_t size = run.size - RUN_PREFIX;
        if (header.status != 0 && size > sizeof(uint64_t))
            size = sizeof(uint64_t); /* the detail goes on its own */
        memmove(run.data, run.data + RUN_PREFIX, size);
        pthread_mutex_lock(&pool->lock);
        hpool__keyed_run_arrived(pool, header.call_id, pool->transport.rank,
                                 header.status == HPOOL_EFAILED ? header.code : header.status, detail,
                                 header.spilled_bytes, run.data, size);
        pthread_mutex_unlock(&pool->lock);
        return 0;
    }
    return hpool__transport_send(&pool->transport, pool->root, HPOOL__MSG_KEYED_RESULT, run.data, run.size);
}

/* A rank that spilled while mapping: its own partition is read back from
 * its file now; the others are sent piece by piece by
 * hpool__shuffle_progress, as sends complete. */
static int start_spilled_shuffle(hpool_pool *pool, hpool__keyed_store *store)
{
    int rc = 0;
    for (int t = 0; t < store->thread_count && rc == 0; t++)
        rc = hpool__spill_mapped(store, &store->mapped[t]); /* what is still in memory */
    FILE *own = store->outbox[pool->transport.rank];
    hpool__buffer piece = {0};
    bool ended = false;
    if (rc == 0)
        rc = hpool__spill_rewind(store, own);
    while (rc == 0 && !ended && !store_failed(store)) {
        piece.size = 0;
        rc = hpool__spill_read_piece(store, own, &piece, piece_bytes(store), &ended);
        if (rc == 0 && piece.size > 0)
            rc = keep_failure(store, hpool__spill_add_owned(store, piece.data, piece.size));
    }
    hpool__buffer_release(&piece);
    for (int rank = 0; rc == 0 && rank < store->ranks; rank++)
        rc = hpool__spill_rewind(store, store->outbox[rank]);
    /* A failure here is the call's: the other ranks still get a last
     * partition from this one (empty, see hpool__keyed_progress). */
    keep_failure(store, rc);
    if (store->error != 0)
        drop_pairs(store);
    store->partitions_received++;
    store->sending = true;
    store->send_rank = 0;
    bool busy = false;
    return hpool__keyed_progress(pool, &busy);
}

int hpool__keyed_progress(hpool_pool *pool, bool *busy)
{
    for (;;) {
        pthread_mutex_lock(&pool->stores_lock);
        hpool__keyed_store *store = pool->keyed_stores;
        while (store != NULL && !store->sending)
            store = store->next;
        pthread_mutex_unlock(&pool->stores_lock);
        if (store == NULL)
            return 0;
        size_t piece = piece_bytes(store), limit = 2 * piece;
        int me = pool->transport.rank;
        while (store->sending && pool->transport.pending_bytes < limit) {
            if (store->send_rank == me) {
                store->send_rank++;
                continue;
            }
            if (store->send_rank >= store->ranks) {
                store->sending = false;
                break;
            }
            hpool__buffer message = {0};
            hpool__pairs_header header = {.call_id = store->call_id, .keyed = store->keyed};
            bool ended = false;
            if (hpool__buffer_append(&message, room_for_header, PAIRS_PREFIX) != 0)
                return hpool__fail(HPOOL_ENOMEM, "no memory for a PAIRS message");
            /* After a failure of this rank's, its partitions are sent
             * empty: the owners still count a last one from it. */
            if (store->error == 0) {
                keep_failure(store, hpool__spill_read_piece(store, store->outbox[store->send_rank], &message, piece,
                                                            &ended));
                if (store->error != 0)
                    drop_pairs(store);
            }
            if (store->error != 0) {
                message.size = PAIRS_PREFIX;
                ended = true;
            }
            header.last = ended;
            hpool__message_write_header(message.data, HPOOL__MSG_PAIRS, &header, sizeof header);
            int rc = hpool__transport_send(&pool->transport, store->send_rank, HPOOL__MSG_PAIRS, message.data, message.size);
            if (rc != 0)
                return rc;
            *busy = true;
            if (ended)
                store->send_rank++;
        }
        if (store->sending)
            return 0; /* the sends must drain first */
        int rc = finish_if_complete(pool, store);
        if (rc != 0)
            return rc;
    }
}

int hpool__keyed_shuffle_start(hpool_pool *pool, uint32_t call_id, int keyed, const void *argument, size_t size)
{
    hpool__keyed_store *store = hpool__keyed_store_get(pool, call_id, keyed);
    if (store == NULL)
        return hpool__fail(HPOOL_ENOMEM, "no memory for a keyed call's store on rank %d", pool->transport.rank);
    if (hpool__keyed_store_set_argument(store, argument, size) != 0)
        keep_failure(store, hpool__fail(HPOOL_ENOMEM, "no memory for a copy of the call's argument (%zu bytes)", size));
    int ranks = pool->transport.size, me = pool->transport.rank;
    store->shuffle_started = true;
    if (store->outbox != NULL && store->error == 0)
        return start_spilled_shuffle(pool, store);
    /* After a failure (a spill's, in the map phase): every rank still gets
     * this one's partition, empty. */
    if (store->error != 0)
        drop_pairs(store);
    /* Each thread's table: other ranks' pairs encoded, one buffer per thread
     * and rank, then sent as one message per rank; this rank's own pairs go
     * straight into its share tables, never encoded. */
    int threads = store->thread_count;
    hpool__buffer *parts = hpool__calloc((size_t)threads * (size_t)ranks, sizeof *parts);
    if (parts == NULL)
        return hpool__fail(HPOOL_ENOMEM, "no memory for the table of %d partitions", threads * ranks);
    int rc = keep_failure(store,
                          hpool__pair_tables_gather(store->mapped, store->owned, threads, ranks, me, parts, &pool->team));
    for (int t = 0; t < threads; t++)
        hpool__pair_table_release(&store->mapped[t]);
    if (rc == 0 && store->error == 0)
        rc = keep_failure(store, hpool__spill_owned_if_over(store));
    hpool__pairs_header header = {.call_id = call_id, .keyed = keyed, .last = 1};
    for (int rank = 0; rank < ranks && rc == 0; rank++) {
        if (rank == me)
            continue;
        size_t size = PAIRS_PREFIX;
        for (int t = 0; t < threads; t++)
            size += parts[(size_t)t * (size_t)ranks + (size_t)rank].size;
        hpool__buffer message = {0};
        if (hpool__buffer_reserve(&message, size) != 0) {
            rc = hpool__fail(HPOOL_ENOMEM, "no memory for a PAIRS message of %zu bytes to rank %d", size, rank);
            break;
        }
        hpool__buffer_append(&message, room_for_header, PAIRS_PREFIX);
        hpool__message_write_header(message.data, HPOOL__MSG_PAIRS, &header, sizeof header);
        for (int t = 0; t < threads; t++) {
            hpool__buffer *part = &parts[(size_t)t * (size_t)ranks + (size_t)rank];
            hpool__buffer_append(&message, part->data, part->size);
            hpool__buffer_release(part);
        }
        /* every rank gets a message, empty or not: it counts them */
        rc = hpool__transport_send(&pool->transport, rank, HPOOL__MSG_PAIRS, message.data, message.size);
    }
    for (size_t p = 0; p < (size_t)threads * (size_t)ranks; p++)
        hpool__buffer_release(&parts[p]);
    free(parts);
    store->partitions_received++;
    return rc != 0 ? rc : finish_if_complete(pool, store);
}

int hpool__keyed_pairs_received(hpool_pool *pool, hpool__message *message)
{
    hpool__pairs_header header;
    const unsigned char *pairs;
    size_t size;
    if (hpool__message_decode(message, &header, sizeof header, &pairs, &size) != 0 || header.keyed < 0
        || (size_t)header.keyed >= pool->keyed_reducer_count) {
        free(message->data);
        return HPOOL_EPEER;
    }
    hpool__keyed_store *store = hpool__keyed_store_get(pool, header.call_id, header.keyed);
    int rc = store == NULL ? hpool__fail(HPOOL_ENOMEM, "no memory for a keyed call's store on rank %d",
                                         pool->transport.rank)
             : store_failed(store) ? 0 /* failed already: nothing more to gather */
                                   : keep_failure(store, hpool__spill_add_owned(store, pairs, size));
    free(message->data);
    if (rc != 0)
        return rc;
    if (header.last)
        store->partitions_received++;
    return finish_if_complete(pool, store);
}

/* Root: a run from another rank. */
int hpool__keyed_run_received(hpool_pool *pool, hpool__message *message)
{
    hpool__run_header header;
    const unsigned char *runs;
    size_t size;
    if (hpool__message_decode(message, &header, sizeof header, &runs, &size) != 0) {
        free(message->data);
        return HPOOL_EPEER;
    }
    /* After a failure of the rank's own, its detail follows "no runs". */
    char detail[256] = "";
    if (header.status != 0 && header.status != HPOOL_EFAILED && size > sizeof(uint64_t)) {
        size_t length = size - sizeof(uint64_t) < sizeof detail - 1 ? size - sizeof(uint64_t) : sizeof detail - 1;
        memcpy(detail, runs + sizeof(uint64_t), length);
        detail[length] = '\0';
        size = sizeof(uint64_t);
    }
    memmove(message->data, runs, size);
    pthread_mutex_lock(&pool->lock);
    hpool__keyed_run_arrived(pool, header.call_id, message->source,
                             header.status == HPOOL_EFAILED ? header.code : header.status, detail,
                             header.spilled_bytes, message->data, size);
    pthread_mutex_unlock(&pool->lock);
    return 0;
}
