/* test_busy.c: every worker thread of every rank gets work while any is left, proven by items that wait for company. */
#define _GNU_SOURCE /* mkstemp, ftruncate, mmap */
#include "hpool.h"
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/*
 * Each item waits until as many items run at once on its rank as the rank
 * has threads: they meet in generations of that size, like a barrier. An
 * item whose generation does not fill within GIVE_UP_SECONDS fails. A
 * scheduler that leaves a thread without work while chunks remain starves
 * a generation, and its items fail; one that keeps every thread busy
 * releases every generation at once, so the test takes no time.
 *
 * The last chunks cannot fill a generation: once every chunk has started
 * (a count the ranks share in a file mapped by all), waiting items leave
 * as "escaped". That can happen only at the end, so their number is
 * bounded, and checked.
 *
 * Waiting is on a condition variable, so 16 threads per rank on 2 cores
 * cost no CPU: no timing is measured anywhere.
 */

#define GIVE_UP_SECONDS 30.0
#define ITEM_FAILED_ALONE 9 /* an item's code when its generation starved */

/* What the ranks share: the call under way (numbered by the root, which
 * sets these before each call) and the items covered by chunks that have
 * started. */
typedef struct shared_counts {
    _Atomic uint64_t call_number, call_items;
    _Atomic uint64_t items_in_started_chunks;
} shared_counts;

/* One rank's meeting place: items of the open generation, how many
 * generations have been released, and which of them escaped. */
typedef struct rank_meeting {
    pthread_mutex_t lock;
    pthread_cond_t released;
    int waiting;
    uint64_t generation;
    bool everything_started;   /* no chunk of the call is left to start */
    uint64_t call_number;      /* the call these generations belong to */
    unsigned char *escaped;    /* per generation of the call: 1 if it escaped */
    uint64_t generations;      /* room in escaped */
} rank_meeting;

typedef struct busy_context {
    /* Atomic: a worker rank's threads may take its first item while its
     * main thread is still publishing this (see share_counts). */
    _Atomic(shared_counts *) shared;
    rank_meeting meeting;
    int threads;             /* this rank's: the generation size */
    int rank;
    uint64_t items;          /* of the current call */
} busy_context;

/* With the meeting's lock held: a new call starts its generations from
 * zero, on each rank at its first item there (calls run one at a time). */
static void join_call(busy_context *context)
{
    rank_meeting *meeting = &context->meeting;
    uint64_t call = atomic_load(&context->shared->call_number);
    if (call == meeting->call_number)
        return;
    meeting->call_number = call;
    context->items = atomic_load(&context->shared->call_items);
    free(meeting->escaped);
    meeting->generations = context->items + 1;
    meeting->escaped = calloc(meeting->generations, 1);
    meeting->generation = 0;
    meeting->waiting = 0;
    meeting->everything_started = false;
}

enum { MET_ALL = 1, ESCAPED = 2 };

/* Per item: how it was released, on which rank, in a chunk of what size. */
typedef struct item_outcome {
    uint32_t how, rank;
    uint64_t chunk_items;
} item_outcome;

static double now_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

/* A deadline 2 ms ahead on CLOCK_MONOTONIC, which the condition uses. */
static struct timespec soon(void)
{
    struct timespec at;
    clock_gettime(CLOCK_MONOTONIC, &at);
    at.tv_nsec += 2000000;
    if (at.tv_nsec >= 1000000000L) {
        at.tv_sec++;
        at.tv_nsec -= 1000000000L;
    }
    return at;
}

/* With the meeting's lock held: whether every chunk has started. */
static bool everything_started(busy_context *context)
{
    rank_meeting *meeting = &context->meeting;
    if (!meeting->everything_started)
        meeting->everything_started =
            atomic_load(&context->shared->items_in_started_chunks) == context->items;
    return meeting->everything_started;
}

static void release_generation(rank_meeting *meeting, bool escaped)
{
    if (meeting->generation < meeting->generations)
        meeting->escaped[meeting->generation] = escaped;
    meeting->waiting = 0;
    meeting->generation++;
    pthread_cond_broadcast(&meeting->released);
}

static int wait_for_company(hpool_task *task, void *user)
{
    busy_context *context = user;
    rank_meeting *meeting = &context->meeting;
    if (task->index == task->span->first)
        atomic_fetch_add(&context->shared->items_in_started_chunks, task->span->count);
    item_outcome outcome = {MET_ALL, (uint32_t)context->rank, task->span->count};
    int code = 0;
    double started = now_seconds();

    pthread_mutex_lock(&meeting->lock);
    join_call(context);
    uint64_t generation = meeting->generation;
    if (++meeting->waiting == context->threads)
        release_generation(meeting, false);
    while (meeting->generation == generation) {
        if (everything_started(context)) {
            release_generation(meeting, true); /* nobody else can come */
            break;
        }
        if (now_seconds() - started > GIVE_UP_SECONDS) {
            fprintf(stderr, "rank %d: item %llu waited %.0f s with %d of %d threads busy\n", context->rank,
                    (unsigned long long)task->index, GIVE_UP_SECONDS, meeting->waiting, context->threads);
            meeting->waiting--;
            code = ITEM_FAILED_ALONE;
            break;
        }
        struct timespec deadline = soon();
        pthread_cond_timedwait(&meeting->released, &meeting->lock, &deadline);
    }
    if (code == 0 && (generation >= meeting->generations || meeting->escaped[generation]))
        outcome.how = ESCAPED;
    pthread_mutex_unlock(&meeting->lock);

    if (task->result != NULL)
        memcpy(task->result, &outcome, sizeof outcome);
    return code;
}

/* map_reduce: counts of each outcome, and the largest chunk. */
typedef struct outcome_totals {
    uint64_t met_all, escaped, largest_chunk;
} outcome_totals;

static void add_outcome(outcome_totals *totals, const item_outcome *outcome)
{
    totals->met_all += outcome->how == MET_ALL;
    totals->escaped += outcome->how == ESCAPED;
    if (outcome->chunk_items > totals->largest_chunk)
        totals->largest_chunk = outcome->chunk_items;
}

/* A reduce value is an item's outcome (written by the map function over
 * the identity) or totals being folded; is_item tells which. */
typedef struct reduce_value {
    item_outcome outcome;
    uint64_t is_item;
    outcome_totals totals;
} reduce_value;

static void combine_totals(void *accumulator, const void *value, void *user)
{
    reduce_value *a = accumulator;
    const reduce_value *v = value;
    if (v->is_item) {
        add_outcome(&a->totals, &v->outcome);
        return;
    }
    a->totals.met_all += v->totals.met_all;
    a->totals.escaped += v->totals.escaped;
    if (v->totals.largest_chunk > a->totals.largest_chunk)
        a->totals.largest_chunk = v->totals.largest_chunk;
}

/* The reducer's item function: the outcome, marked as one. */
static int wait_for_company_reduced(hpool_task *task, void *user)
{
    int code = wait_for_company(task, user);
    ((reduce_value *)task->result)->is_item = 1;
    return code;
}

/* Sets up the counts every rank shares: a file in /dev/shm, named by the
 * root. Plain runs share nothing, so plain memory does. Each rank publishes
 * its mapping in *shared before the barrier: once the root is past it, its
 * items reach this rank's threads, which must find the counts there. */
static shared_counts *share_counts(int ranks, int rank, _Atomic(shared_counts *) *shared)
{
    if (ranks == 1) {
        shared_counts *counts = calloc(1, sizeof *counts);
        atomic_store(shared, counts);
        return counts;
    }
    char name[64] = "/dev/shm/hpool-test-busy-XXXXXX";
    int fd = -1;
    if (rank == 0) {
        fd = mkstemp(name);
        if (fd < 0 || ftruncate(fd, sizeof(shared_counts)) != 0)
            name[0] = '\0';
    }
    MPI_Bcast(name, sizeof name, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (name[0] == '\0')
        return NULL;
    if (rank != 0)
        fd = open(name, O_RDWR);
    void *mapped = fd >= 0 ? mmap(NULL, sizeof(shared_counts), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
    if (fd >= 0)
        close(fd);
    atomic_store(shared, mapped == MAP_FAILED ? NULL : (shared_counts *)mapped);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0)
        unlink(name);
    return mapped == MAP_FAILED ? NULL : mapped;
}

enum call_kind { MAP, IMAP, IMAP_UNORDERED, MAP_REDUCE };
static const char *const call_names[] = {"map", "imap", "imap_unordered", "map_reduce"};

/* Checks one call's outcomes: nothing failed, every rank met all its
 * threads, and only the end escaped. */
static void check_outcomes(const char *what, uint64_t items, const outcome_totals *totals, const uint64_t *met_by_rank,
                           int ranks, int threads, uint64_t failed)
{
    CHECK(failed == 0);
    CHECK(totals->met_all + totals->escaped == items);
    /* At the end, each rank has at most a generation waiting (the item
     * that starts the last chunk counts it before it joins, so the others
     * may leave without it), plus the rest of the chunks its threads are
     * running. */
    uint64_t chunk = totals->largest_chunk;
    uint64_t escapes_allowed = (uint64_t)ranks * (uint64_t)threads * chunk;
    CHECK(totals->escaped <= escapes_allowed);
    for (int r = 0; met_by_rank != NULL && r < ranks; r++)
        CHECK(met_by_rank[r] > 0); /* every rank ran a full generation */
    if (failed != 0 || totals->escaped > escapes_allowed)
        fprintf(stderr, "  %s: %llu items, %llu failed, %llu met all %d threads, %llu escaped (allowed %llu)\n", what,
                (unsigned long long)items, (unsigned long long)failed, (unsigned long long)totals->met_all, threads,
                (unsigned long long)totals->escaped, (unsigned long long)escapes_allowed);
}

static void run_call(hpool_pool *pool, busy_context *context, enum call_kind kind, size_t chunksize, uint64_t items)
{
    int ranks = hpool_pool_size(pool), threads = context->threads;
    char what[96];
    snprintf(what, sizeof what, "%s, chunksize %zu, %d ranks x %d threads", call_names[kind], chunksize, ranks,
             threads);
    atomic_store(&context->shared->items_in_started_chunks, 0);
    atomic_store(&context->shared->call_items, items);
    atomic_fetch_add(&context->shared->call_number, 1);

    hpool_source *range;
    CHECK_RC(0, hpool_source_range(&range, 0, (int64_t)items));
    hpool_call call = HPOOL_CALL_INIT;
    call.source = range;
    call.chunksize = chunksize;
    outcome_totals totals = {0, 0, 0};
    uint64_t *met_by_rank = calloc((size_t)ranks, sizeof *met_by_rank);
    uint64_t failed = 0;
    hpool_report report;
    memset(&report, 0, sizeof report);

    if (kind == MAP) {
        item_outcome *outcomes = calloc(items, sizeof *outcomes);
        call.results = outcomes;
        call.result_size = sizeof *outcomes;
        CHECK_RC(0, hpool_map(pool, &call, &report));
        for (uint64_t i = 0; i < items; i++) {
            add_outcome(&totals, &outcomes[i]);
            if (outcomes[i].how == MET_ALL && outcomes[i].rank < (uint32_t)ranks)
                met_by_rank[outcomes[i].rank]++;
        }
        failed = report.failed;
        free(outcomes);
    } else if (kind == MAP_REDUCE) {
        reduce_value reduction;
        call.function = 1;
        call.reducer = 0;
        call.reduction = &reduction;
        CHECK_RC(0, hpool_map_reduce(pool, &call, &report));
        totals = reduction.totals;
        failed = report.failed;
        free(met_by_rank); /* a reduction keeps no ranks */
        met_by_rank = NULL;
    } else {
        hpool_iter *iter;
        call.result_size = sizeof(item_outcome);
        CHECK_RC(0, kind == IMAP ? hpool_imap(pool, &call, &iter) : hpool_imap_unordered(pool, &call, &iter));
        hpool_result result;
        uint64_t next = 0;
        int rc;
        while ((rc = hpool_iter_next(iter, &result, -1)) == 0) {
            if (kind == IMAP)
                CHECK(result.index == next++);
            item_outcome outcome;
            memcpy(&outcome, result.data, sizeof outcome);
            if (result.status != 0)
                failed++;
            add_outcome(&totals, &outcome);
            if (outcome.how == MET_ALL && outcome.rank < (uint32_t)ranks)
                met_by_rank[outcome.rank]++;
        }
        CHECK_RC(HPOOL_EOF, rc);
        CHECK_RC(0, hpool_iter_report(iter, &report));
        hpool_iter_free(iter);
    }
    /* A rank with one thread meets nobody: nothing to prove there. */
    check_outcomes(what, items, &totals, threads > 1 ? met_by_rank : NULL, ranks, threads, failed);
    free(met_by_rank);
    hpool_source_free(range);
}

/* Slow items after many instant ones, in one chunk: the chunk was sized
 * by the instant items, and its slow ones must still run at once on all
 * the rank's threads (share.c), not one after another on the chunk's
 * thread. Call k's items are k * CALL_SPAN + i; the first `instant` of each
 * return at once, the others wait until as many of them run at once on
 * this rank as it has threads. */
#define CALL_SPAN 1000000
#define TAIL_CALLS 8
static atomic_int tail_running[TAIL_CALLS];
static atomic_llong tail_instant;

static int instant_then_company(hpool_task *task, void *user)
{
    const busy_context *context = user;
    int64_t x = *(const int64_t *)task->input;
    int call = (int)(x / CALL_SPAN);
    if (x % CALL_SPAN < atomic_load(&tail_instant))
        return 0;
    atomic_fetch_add(&tail_running[call], 1);
    double started = now_seconds();
    while (atomic_load(&tail_running[call]) < context->threads) {
        if (now_seconds() - started > GIVE_UP_SECONDS) {
            fprintf(stderr, "rank %d: slow item %lld waited %.0f s with %d of %d running\n", context->rank,
                    (long long)x, GIVE_UP_SECONDS, atomic_load(&tail_running[call]), context->threads);
            return ITEM_FAILED_ALONE;
        }
        struct timespec nap = {0, 1000000};
        nanosleep(&nap, NULL);
    }
    return 0;
}

static void run_tail_call(hpool_pool *pool, int call, int64_t instant, int threads, size_t chunksize)
{
    atomic_store(&tail_instant, instant);
    hpool_source *range;
    hpool_source_range(&range, (int64_t)call * CALL_SPAN, (int64_t)call * CALL_SPAN + instant + threads);
    hpool_call spec = HPOOL_CALL_INIT;
    spec.function = 2;
    spec.source = range;
    spec.chunksize = chunksize;
    hpool_report report;
    int rc = hpool_map(pool, &spec, &report);
    if (rc != 0)
        fprintf(stderr, "test_busy: %lld instant items, then %d slow, chunksize %zu: %s, %llu failed\n",
                (long long)instant, threads, chunksize, hpool_err_name(rc), (unsigned long long)report.failed);
    CHECK_RC(0, rc);
    hpool_source_free(range);
}

int main(int argc, char **argv)
{
    CHECK_RC(0, hpool_mpi_init(&argc, &argv));
    static busy_context context;
    pthread_mutex_init(&context.meeting.lock, NULL);
    pthread_condattr_t monotonic;
    pthread_condattr_init(&monotonic);
    pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
    pthread_cond_init(&context.meeting.released, &monotonic);

    static reduce_value identity; /* zero: no outcome, no totals */
    const hpool_function functions[] = {
        {.name = "wait_for_company", .map = wait_for_company, .user = &context},
        {.name = "wait_for_company_reduced", .map = wait_for_company_reduced, .user = &context},
        {.name = "instant_then_company", .map = instant_then_company, .user = &context}};
    const hpool_reducer reducers[] = {
        {.name = "totals", .value_size = sizeof(reduce_value), .identity = &identity, .combine = combine_totals}};
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = functions;
    options.function_count = 3;
    options.reducers = reducers;
    options.reducer_count = 1;
    hpool_pool *pool;
    CHECK_RC(0, hpool_pool_create(&pool, &options));
    if (pool == NULL)
        return 1;
    context.threads = hpool_pool_threads(pool);
    context.rank = hpool_pool_rank(pool);
    int ranks = hpool_pool_size(pool);
    shared_counts *shared = share_counts(ranks, context.rank, &context.shared);
    CHECK(shared != NULL);
    if (shared != NULL && hpool_pool_is_root(pool)) {
        /* Enough items that each rank meets its threads many times over. */
        uint64_t workers = (uint64_t)ranks * (uint64_t)context.threads;
        static const size_t chunksizes[] = {0, 1, 7};
        for (int kind = MAP; kind <= MAP_REDUCE; kind++)
            for (size_t c = 0; c < sizeof chunksizes / sizeof chunksizes[0]; c++)
                run_call(pool, &context, kind, chunksizes[c], 24 * workers * (chunksizes[c] ? chunksizes[c] : 1));
        /* One chunk of them all goes to one rank; the sizes hpool picks
         * itself may split the slow items among ranks, so only with one. */
        int call = 0;
        for (int64_t instant = 100; instant <= 100000 && context.threads > 1; instant *= 1000) {
            run_tail_call(pool, call++, instant, context.threads, (size_t)instant + (size_t)context.threads);
            if (ranks == 1)
                run_tail_call(pool, call++, instant, context.threads, 0);
        }
    }
    CHECK_RC(0, hpool_pool_join(pool));
    hpool_pool_free(pool);
    hpool_mpi_finalize();
    return check_failures ? 1 : 0;
}
