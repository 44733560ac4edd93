/* test_scheduler.c: the root's batch sizing rules (scheduler.c) on their own, over made-up ranks and calls. */
#include "check.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* A root's view of ranks of these thread counts; nothing runs. */
static hpool_pool *fake_pool(int ranks, const int *threads)
{
    hpool_pool *pool = calloc(1, sizeof *pool);
    pool->transport.size = ranks;
    pool->loads = calloc((size_t)ranks, sizeof *pool->loads);
    for (int r = 0; r < ranks; r++) {
        pool->loads[r].threads = threads[r];
        pool->total_threads += (uint64_t)threads[r];
    }
    return pool;
}

static void free_pool(hpool_pool *pool)
{
    free(pool->loads);
    free(pool);
}

/* A map call over source, cut up to item cut, at ns per item (0: unknown). */
static hpool__call_state fake_call(const hpool_source *source, uint64_t total, uint64_t cut, double ns, size_t chunksize)
{
    hpool__call_state call;
    memset(&call, 0, sizeof call);
    call.kind = HPOOL__CALL_MAP;
    call.mode = HPOOL__FIXED_RESULT;
    call.result_size = 8;
    call.source = source;
    call.total = total;
    call.cut = cut;
    call.ns_per_item = ns;
    call.spec.chunksize = chunksize;
    return call;
}

/* What every plan must satisfy. */
static void check_plan(const hpool__call_state *call, const hpool__batch_plan *plan, uint64_t threads, uint64_t held)
{
    uint64_t remaining = call->total == UINT64_MAX ? UINT64_MAX : call->total - call->cut;
    CHECK(plan->chunksize >= 1);
    CHECK(plan->want >= threads); /* at least a chunk for every thread */
    if (held >= plan->want) {
        CHECK(plan->items == 0);
        return;
    }
    CHECK(plan->items >= 1 && plan->items <= remaining);
    if (plan->items < remaining) /* whole chunks but for the call's last */
        CHECK(plan->items % plan->chunksize == 0);
}

static void test_unmeasured_items(void)
{
    int threads[1] = {16};
    hpool_pool *pool = fake_pool(1, threads);
    hpool_source *source;
    hpool_source_range(&source, 0, 64);
    hpool__call_state call = fake_call(source, 64, 0, 0, 0);
    hpool__batch_plan plan;
    CHECK(hpool__plan_batch(pool, &call, 0, 0, &plan));
    check_plan(&call, &plan, 16, 0);
    /* An item may take a minute: one per chunk until timed, a chunk per
     * thread, and a reserve of as many. */
    CHECK(plan.chunksize == 1 && plan.items == 16 && plan.want == 32);
    /* A rank holding what it wants gets nothing more. */
    CHECK(hpool__plan_batch(pool, &call, 0, 32, &plan));
    CHECK(plan.items == 0);
    hpool_source_free(source);
    free_pool(pool);
}

/* The last round: no rank queues behind busy threads. */
static void test_last_round(void)
{
    int threads[2] = {16, 16};
    hpool_pool *pool = fake_pool(2, threads);
    hpool_source *source;
    hpool_source_range(&source, 0, 64);
    hpool__call_state call = fake_call(source, 64, 40, 1e8, 0); /* 24 left of 100 ms each, 32 threads */
    hpool__batch_plan plan;
    CHECK(hpool__plan_batch(pool, &call, 1, 10, &plan));
    check_plan(&call, &plan, 16, 10);
    CHECK(plan.want == 16);        /* a chunk per thread, no reserve */
    CHECK(plan.chunksize == 1);
    CHECK(plan.items <= 16 - 10);  /* never beyond what the rank is short of */
    hpool_source_free(source);
    free_pool(pool);
}

/* Cheap items: chunks of about a millisecond, batches of many chunks,
 * never coarser than ceil(n / 4 workers). */
static void test_cheap_items(void)
{
    int threads[1] = {16};
    hpool_pool *pool = fake_pool(1, threads);
    hpool_source *source;
    hpool_source_range(&source, 0, 1000000000);
    hpool__call_state call = fake_call(source, 1000000000, 0, 10.0, 0);
    call.mode = HPOOL__REDUCE; /* no bytes per item: only time bounds the batch */
    hpool__batch_plan plan;
    CHECK(hpool__plan_batch(pool, &call, 0, 0, &plan));
    check_plan(&call, &plan, 16, 0);
    CHECK(plan.chunksize == 100000);           /* 1 ms of 10 ns items */
    CHECK(plan.items >= 16 * plan.chunksize);  /* a chunk per thread at least */
    CHECK(plan.items <= 160 * plan.chunksize); /* about 10 ms of the rank's work */
    /* With an 8-byte result per item, a batch holds at most a MiB of them. */
    call.mode = HPOOL__FIXED_RESULT;
    CHECK(hpool__plan_batch(pool, &call, 0, 0, &plan));
    CHECK(plan.items * 8 <= (1u << 20));
    /* Near the end chunks shrink with what is left, but not below some
     * 50 µs of work (scheduler.c, TAIL_CHUNK_NS): 100,000 items left of 10
     * ns each on 16 threads make chunks of 5,000, not 3,125; the last
     * 1,000 are one chunk. */
    hpool__call_state ending = fake_call(source, 1000000000, 1000000000 - 100000, 10.0, 0);
    ending.mode = HPOOL__REDUCE;
    CHECK(hpool__plan_batch(pool, &ending, 0, 0, &plan));
    check_plan(&ending, &plan, 16, 0);
    CHECK(plan.chunksize == 5000);
    ending.cut = 1000000000 - 1000;
    CHECK(hpool__plan_batch(pool, &ending, 0, 0, &plan));
    CHECK(plan.chunksize == 1000 && plan.items == 1000);
    /* Few items: ceil(n / (4 × workers)) bounds the chunk. */
    hpool__call_state few = fake_call(source, 6400, 0, 10.0, 0);
    CHECK(hpool__plan_batch(pool, &few, 0, 0, &plan));
    CHECK(plan.chunksize <= 100);
    hpool_source_free(source);
    free_pool(pool);
}

/* Explicit chunksizes, a deterministic reduce's blocks, and byte bounds. */
static void test_chunksizes(void)
{
    int threads[1] = {4};
    hpool_pool *pool = fake_pool(1, threads);
    hpool_source *source;
    hpool_source_range(&source, 0, 1000);
    hpool__batch_plan plan;
    hpool__call_state call = fake_call(source, 1000, 0, 50.0, SIZE_MAX);
    CHECK(hpool__plan_batch(pool, &call, 0, 0, &plan));
    CHECK(plan.chunksize == 1000 && plan.items == 1000); /* one chunk of all that is left */
    call = fake_call(source, 1000, 990, 50.0, 7);
    CHECK(hpool__plan_batch(pool, &call, 0, 0, &plan));
    CHECK(plan.chunksize == 7 && plan.items == 7); /* the last 3 are a batch of their own */
    call = fake_call(source, 1000, 0, 50.0, 1);
    call.mode = HPOOL__REDUCE;
    call.block_size = 64;
    CHECK(hpool__plan_batch(pool, &call, 0, 0, &plan));
    CHECK(plan.chunksize == 64); /* whole blocks */
    hpool_source_free(source);

    /* Items of a MiB each: one per chunk and one chunk per batch, so a
     * stream stays in bounded memory. */
    static unsigned char big_item[1];
    hpool_source_array(&source, big_item, (size_t)1 << 20, 100); /* never read by planning */
    call = fake_call(source, 100, 0, 10.0, 0);
    CHECK(hpool__plan_batch(pool, &call, 0, 0, &plan));
    CHECK(plan.chunksize == 1 && plan.items == 1);
    hpool_source_free(source);
    free_pool(pool);
}

/* A call whose window is full gets no batch; a producer's unknown total is
 * planned by bytes. */
static void test_window(void)
{
    int threads[1] = {2};
    hpool_pool *pool = fake_pool(1, threads);
    pool->window = 5;
    hpool_source *source;
    hpool_source_range(&source, 0, 1000);
    hpool__call_state call = fake_call(source, 1000, 0, 1000.0, 1);
    call.chunks_in_window = 5;
    hpool__batch_plan plan;
    CHECK(!hpool__plan_batch(pool, &call, 0, 0, &plan));
    call.chunks_in_window = 3;
    CHECK(hpool__plan_batch(pool, &call, 0, 0, &plan));
    CHECK(plan.items >= 1 && plan.items <= 2);
    hpool_source_free(source);
    free_pool(pool);
}

/* Many ranks: each gets a share of what is left, never more than half of
 * it per rank's share of the threads. */
static void test_shares(void)
{
    int threads[4] = {16, 16, 16, 16};
    hpool_pool *pool = fake_pool(4, threads);
    hpool_source *source;
    hpool_source_range(&source, 0, 10000);
    hpool__call_state call = fake_call(source, 10000, 0, 1e6, 0);
    hpool__batch_plan plan;
    CHECK(hpool__plan_batch(pool, &call, 2, 0, &plan));
    check_plan(&call, &plan, 16, 0);
    CHECK(plan.items <= 10000 * 16 / (2 * 64) + 1);
    hpool_source_free(source);
    free_pool(pool);
}

/* Any mix of counts and costs gives a plan that keeps the rules. */
static void test_invariants(void)
{
    int threads[3] = {1, 7, 64};
    hpool_pool *pool = fake_pool(3, threads);
    hpool_source *source;
    hpool_source_range(&source, 0, INT64_MAX);
    uint64_t seed = 12345;
    int failures_before = check_failures;
    for (int trial = 0; trial < 20000; trial++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        uint64_t total = 1 + (seed >> 40) % 100000;
        uint64_t cut = (seed >> 20) % total;
        double costs[] = {0, 1, 100, 1e4, 1e6, 1e8, 6e10};
        double ns = costs[(seed >> 8) % 7];
        size_t chunksizes[] = {0, 0, 1, 3, 1000, SIZE_MAX};
        size_t chunksize = chunksizes[(seed >> 4) % 6];
        int rank = (int)((seed >> 2) % 3);
        uint64_t held = (seed >> 50) % 200;
        hpool__call_state call = fake_call(source, total, cut, ns, chunksize);
        hpool__batch_plan plan;
        if (hpool__plan_batch(pool, &call, rank, held, &plan))
            check_plan(&call, &plan, (uint64_t)threads[rank], held);
        if (chunksize > 0 && chunksize != SIZE_MAX)
            CHECK(plan.chunksize == (chunksize < total - cut ? chunksize : total - cut));
        if (check_failures > failures_before) {
            fprintf(stderr, "trial %d: total %llu cut %llu ns %g chunksize %zu rank %d held %llu\n", trial,
                    (unsigned long long)total, (unsigned long long)cut, ns, chunksize, rank,
                    (unsigned long long)held);
            break;
        }
    }
    hpool_source_free(source);
    free_pool(pool);
}

int main(void)
{
    test_unmeasured_items();
    test_last_round();
    test_cheap_items();
    test_chunksizes();
    test_window();
    test_shares();
    test_invariants();
    if (check_failures == 0)
        printf("scheduler: all checks passed\n");
    return check_failures ? 1 : 0;
}
