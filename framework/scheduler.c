/* scheduler.c: the root's rules for sharing out work: chunk and batch sizes, and what each rank should hold. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* How work is shared out. The unit a thread runs is a chunk of consecutive
 * items; the unit a message carries to a rank is a batch of whole chunks.
 * The root keeps, for every rank, the chunks it sent and the chunks the
 * rank says it completed (each result message carries the count, and a
 * rank that falls short of chunks sends one at once, see team.c), so it
 * knows how many chunks each rank holds whatever the items cost, and tops
 * every rank up to a chunk per thread plus a reserve. Batch and chunk sizes
 * follow the measured cost per item; near the end of a call both shrink,
 * and so does the reserve, so that no rank queues work another could
 * start. */

/* Once the item cost is known, a chunk takes about this much thread time:
 * long enough that the per-chunk costs (a lock, a clock read one time in
 * eight) vanish, short enough that threads end close together. */
#define TARGET_CHUNK_NS 1000000.0
/* As a call ends its chunks shrink with what is left, so that its threads
 * end together, but never below this much thread time: each chunk is a
 * round through the engine, tens of microseconds on a busy machine, and a
 * tail that halved down to single cheap items took a few dozen of them
 * (`square --sum 10000000`: 192 chunks in 46 batches, for 5 ms of work)
 * to end threads closer together than one round can tell. */
#define TAIL_CHUNK_NS 50000.0
/* A batch keeps all the rank's threads busy for about this long, so a rank
 * gets about a hundred messages a second however cheap its items are. */
#define TARGET_BATCH_NS 10000000.0
/* Besides a chunk per thread, a rank holds a reserve of queued chunks: at
 * least one per thread, and enough to keep all its threads busy for this
 * long, the time its report takes to bring the next batch: the root's poll
 * (up to 512 µs) and the rank's (up to 256 µs while short), with room for
 * a busy machine. */
#define RESERVE_NS 3000000.0
/* Input plus result bytes per batch, so streams stay in bounded memory. */
#define MAX_BATCH_BYTES (1u << 20)
/* With options.window 0, a call keeps in flight (cut and not yet read, for
 * streams) about this many bytes of inputs and results, and never fewer
 * chunks than this many times what all ranks want: imap can work this far
 * ahead of an item that holds up the order before threads wait. */
#define WINDOW_BYTES ((uint64_t)32 << 20)
#define WINDOW_PER_WANT 4
/* Bytes per item in flight beyond its input and fixed-size result: its
 * offsets, sizes and records. */
#define ITEM_OVERHEAD_BYTES 16
/* Item counts are kept below this, so products of them cannot overflow. */
#define MAX_ITEMS ((uint64_t)1 << 62)

/* A non-negative double as a count, saturated at MAX_ITEMS. */
static uint64_t count_of(double x)
{
    return x >= (double)MAX_ITEMS ? MAX_ITEMS : x > 0 ? (uint64_t)x : 0;
}

/* a × b / c without overflow, rounded down; c > 0. */
static uint64_t scale(uint64_t a, uint64_t b, uint64_t c)
{
    unsigned __int128 product = (unsigned __int128)a * b / c;
    return product > MAX_ITEMS ? MAX_ITEMS : (uint64_t)product;
}

uint64_t hpool__held_chunks(const hpool_pool *pool, int rank)
{
    const hpool__rank_load *load = &pool->loads[rank];
    return load->chunks_sent - load->chunks_completed;
}

static uint64_t item_bytes(const hpool__call_state *call)
{
    return hpool__source_item_bytes(call->source) + (call->mode == HPOOL__FIXED_RESULT ? call->result_size : 0);
}

/* chunksize 0: sized from the measured cost per item. */
static uint64_t automatic_chunksize(const hpool_pool *pool, const hpool__call_state *call, uint64_t remaining)
{
    /* Until a chunk has been timed, one item: an item may take a minute. */
    if (call->ns_per_item <= 0)
        return 1;
    uint64_t chunk = count_of(TARGET_CHUNK_NS / call->ns_per_item);
    if (call->total != UINT64_MAX) {
        uint64_t workers = pool->total_threads;
        /* Never coarser than Python's ceil(n / (4 × workers)); and the last
         * chunks shrink with what is left, so threads end together, down
         * to TAIL_CHUNK_NS. */
        chunk = hpool__min_u64(chunk, hpool__ceil_div(call->total, 4 * workers));
        uint64_t tail = hpool__ceil_div(remaining, 2 * workers);
        uint64_t tail_floor = count_of(TAIL_CHUNK_NS / call->ns_per_item);
        chunk = hpool__min_u64(chunk, tail > tail_floor ? tail : tail_floor);
    }
    uint64_t bytes = item_bytes(call);
    if (bytes > 0)
        chunk = hpool__min_u64(chunk, MAX_BATCH_BYTES / bytes); /* bounded memory beats fewer chunks */
    return chunk > 0 ? chunk : 1;
}

/* Items not cut yet; MAX_ITEMS for a producer. */
static uint64_t remaining_items(const hpool__call_state *call)
{
    return call->total != UINT64_MAX ? call->total - call->cut : MAX_ITEMS;
}

/* The call's next chunksize. Any chunksize works: one above what is left
 * is what is left. */
static uint64_t call_chunksize(const hpool_pool *pool, const hpool__call_state *call)
{
    uint64_t remaining = remaining_items(call);
    uint64_t chunk = call->spec.chunksize > 0 ? hpool__min_u64(call->spec.chunksize, MAX_ITEMS)
                                              : automatic_chunksize(pool, call, remaining);
    chunk = hpool__min_u64(chunk, remaining > 0 ? remaining : 1);
    if (call->block_size > 0) /* whole blocks, so every batch starts on one */
        chunk = hpool__round_up(chunk, call->block_size);
    return chunk;
}

/* Plans the next batch of call for rank, which holds held chunks; false if
 * the call's window is full. */
bool hpool__plan_batch(const hpool_pool *pool, const hpool__call_state *call, int rank, uint64_t held, hpool__batch_plan *plan)
{
    uint64_t threads = (uint64_t)pool->loads[rank].threads;
    uint64_t workers = pool->total_threads;
    bool total_known = call->total != UINT64_MAX;
    uint64_t remaining = remaining_items(call);
    uint64_t chunk = call_chunksize(pool, call);
    double chunk_ns = call->ns_per_item * (double)chunk; /* 0: not measured yet */
    uint64_t bytes = item_bytes(call);

    /* Before the cost is known, a chunk per thread. */
    uint64_t chunks = chunk_ns > 0 ? count_of(TARGET_BATCH_NS * (double)threads / chunk_ns) : threads;
    if (bytes > 0)
        chunks = hpool__min_u64(chunks, MAX_BATCH_BYTES / bytes / chunk);
    if (chunks == 0)
        chunks = 1; /* a chunk is never split */

    /* The reserve covers RESERVE_NS, but never holds more than two
     * batches: cheap items of many bytes would otherwise mean tens of
     * megabytes queued on every rank. */
    uint64_t reserve = chunk_ns > 0 ? count_of(RESERVE_NS * (double)threads / chunk_ns + 0.999) : 0;
    reserve = hpool__min_u64(reserve, 2 * chunks);
    if (reserve < threads)
        reserve = threads;
    bool near_the_end = false;
    if (total_known) {
        /* Near the end no rank queues more than its share of what is left
         * beyond one round, and in the last round none queues at all: each
         * remaining chunk goes to the first thread that is free, wherever
         * it is, so no thread waits while another rank has a queue. */
        uint64_t chunks_left = hpool__ceil_div(remaining, chunk);
        uint64_t beyond_one_round = chunks_left > workers ? chunks_left - workers : 0;
        uint64_t share = scale(beyond_one_round, threads, workers);
        near_the_end = share < reserve;
        if (near_the_end)
            reserve = share;
    }
    plan->want = threads + reserve;
    plan->chunksize = chunk;
    plan->items = 0;
    if (held >= plan->want)
        return true; /* nothing to send this rank now */
    /* Then a batch never overshoots what the rank is short of, or the
     * overshoot would queue behind busy threads. Before, overshooting by
     * part of a batch saves messages. */
    if (near_the_end)
        chunks = hpool__min_u64(chunks, plan->want - held);

    uint64_t window = pool->window;
    if (window == 0) {
        window = scale(WINDOW_PER_WANT * plan->want, workers, threads);
        uint64_t by_bytes = WINDOW_BYTES / ((bytes + ITEM_OVERHEAD_BYTES) * chunk) + 1;
        if (by_bytes > window)
            window = by_bytes;
    }
    if (call->chunks_in_window >= window)
        return false;
    chunks = hpool__min_u64(chunks, window - call->chunks_in_window);

    uint64_t items = hpool__min_u64(chunks, MAX_ITEMS / chunk) * chunk;
    if (total_known) /* guided: each rank a share of what is left */
        items = hpool__min_u64(items, scale(remaining, threads, 2 * workers) + 1);
    if (items > chunk)
        items -= items % chunk; /* whole chunks */
    if (items < chunk)
        items = chunk;
    plan->items = hpool__min_u64(items, remaining);
    return true;
}

/* The first call with items left to cut and room in its window, planned
 * for rank dest. */
hpool__call_state *hpool__next_call_to_cut(hpool_pool *pool, int dest, hpool__batch_plan *plan)
{
    for (hpool__call_state *call = pool->calls.head; call != NULL; call = call->next)
        if (!call->source_ended && !call->canceled && !call->checkpoint_wanted && !call->checkpointing
            && hpool__plan_batch(pool, call, dest, hpool__held_chunks(pool, dest), plan))
            return call;
    return NULL;
}

/* Ends a call's cutting: its source is exhausted, or failed with rc. */
static void end_source(hpool_pool *pool, hpool__call_state *call, int rc)
{
    call->source_ended = true;
    call->total = call->cut;
    if (rc != 0 && call->report.status == 0)
        call->report.status = rc;
    hpool__complete_if_done(pool, call);
}

/* Skips count items of a producer, which ran before and whose results the
 * journal holds: the producer must still be read past them. */
static int skip_produced(hpool__call_state *call, uint64_t count, bool *ended)
{
    uint64_t skipped = 0;
    *ended = false;
    while (skipped < count && !*ended) {
        hpool__batch *items = hpool__batch_new();
        if (items == NULL)
            return hpool__fail(HPOOL_ENOMEM, "no memory to read the source past journaled items");
        int rc = hpool__source_cut(call->source, call->cut + skipped, count - skipped, MAX_BATCH_BYTES, items, ended);
        skipped += items->count;
        hpool__batch_free(items);
        if (rc != 0)
            return rc;
    }
    if (skipped < count)
        return hpool__fail(HPOOL_EJOURNAL, "the source ended after %llu items, and the journal %s holds items up to "
                                           "%llu: it was written for other inputs",
                           (unsigned long long)(call->cut + skipped), hpool__journal_path(call->journal),
                           (unsigned long long)(call->cut + count));
    return 0;
}

/* Delivers the journal's next run of completed items, which starts where
 * cutting is, as a batch that ran nowhere: it takes a chunk of the window,
 * as a cut batch would, so a stream's replay stays in bounded memory. */
static void replay_journaled(hpool_pool *pool, hpool__call_state *call)
{
    hpool__batch *batch = hpool__batch_new();
    int rc = batch != NULL ? hpool__journal_replay(pool, call, batch)
                           : hpool__fail(HPOOL_ENOMEM, "no memory to replay the journal");
    bool ended = false;
    if (rc == 0 && call->source->is_producer)
        rc = skip_produced(call, batch->count, &ended);
    if (rc != 0) {
        hpool__batch_free(batch);
        hpool__call_set_error(call, rc);
        end_source(pool, call, rc);
        return;
    }
    batch->call_id = call->id;
    batch->function = call->spec.function;
    batch->reducer = call->mode == HPOOL__REDUCE || call->mode == HPOOL__KEYED ? call->spec.reducer : -1;
    batch->mode = call->mode;
    batch->result_size = call->result_size;
    batch->chunksize = batch->count;
    batch->chunk_count = 1;
    batch->block_size = call->block_size;
    batch->origin_rank = -1; /* the journal's: not journaled again */
    call->cut += batch->count;
    call->chunks_in_window += 1;
    call->batches_uncollected++;
    if (ended || (call->total != UINT64_MAX && call->cut >= call->total)) {
        call->source_ended = true;
        call->total = call->cut;
    }
    hpool__collect(pool, batch);
}

/* Cuts the next batch of call for rank dest as planned, or returns NULL if
 * the source has ended, or the journal's run of items there was delivered
 * instead. With pool->lock held: a producer source runs here. */
hpool__batch *hpool__cut_batch(hpool_pool *pool, hpool__call_state *call, int dest, const hpool__batch_plan *plan)
{
    uint64_t plan_items = plan->items;
    uint64_t journaled_first, journaled_count;
    if (call->journal != NULL && hpool__journal_next_done(call->journal, call->cut, &journaled_first, &journaled_count)) {
        if (journaled_first <= call->cut) {
            replay_journaled(pool, call);
            return NULL;
        }
        plan_items = hpool__min_u64(plan_items, journaled_first - call->cut); /* up to the run, not into it */
    }
    hpool__batch *batch = hpool__batch_new();
    if (batch == NULL) {
        end_source(pool, call, HPOOL_ENOMEM);
        return NULL;
    }
    bool ended = false;
    int rc = hpool__source_cut(call->source, call->cut, plan_items, MAX_BATCH_BYTES, batch, &ended);
    if (rc != 0 || batch->count == 0) {
        hpool__batch_free(batch);
        end_source(pool, call, rc);
        return NULL;
    }
    batch->call_id = call->id;
    batch->function = call->spec.function;
    batch->reducer = call->mode == HPOOL__REDUCE || call->mode == HPOOL__KEYED ? call->spec.reducer : -1;
    batch->mode = call->mode;
    batch->result_size = call->result_size;
    batch->chunksize = hpool__min_u64(plan->chunksize, batch->count);
    batch->chunk_count = hpool__ceil_div(batch->count, batch->chunksize);
    batch->block_size = call->block_size;
    batch->report_below = plan->want;
    batch->origin_rank = dest;
    batch->argument = call->argument;
    batch->argument_size = call->spec.argument_size;
    if (dest == pool->root && call->kind == HPOOL__CALL_MAP && call->mode == HPOOL__FIXED_RESULT)
        batch->results = (unsigned char *)call->spec.results + batch->first * call->result_size;
    if (dest == pool->root && call->mode == HPOOL__KEYED && hpool__keyed_attach(pool, batch) != 0) {
        hpool__batch_free(batch);
        end_source(pool, call, HPOOL_ENOMEM);
        return NULL;
    }
    call->cut += batch->count;
    call->chunks_in_window += batch->chunk_count;
    call->batches_uncollected++;
    call->local_uncollected += dest == pool->root;
    pool->loads[dest].chunks_sent += batch->chunk_count;
    if (ended) {
        call->source_ended = true;
        call->total = call->cut;
    }
    return batch;
}
