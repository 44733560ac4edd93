/* test_journal.c: calls stopped partway (hpool_pool_stop, a signal) end with HPOOL_ESTOPPED, and a rerun with the journal delivers exactly an uninterrupted run's results, running only what had not completed. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <hpool.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Items: x -> x * x + 1; every 97th fails with code 5. An item at index
 * stop_at stops the pool (on whatever rank runs it); items after it take
 * a millisecond, so the stop finds work still to do. */
enum { N = 3000 };
static _Atomic(hpool_pool *) current_pool; /* set once this rank's pool is ready for a stop */
static atomic_long invocations;
static long stop_at = -1;
static int stop_signal_to_raise;
static atomic_int failures_seen;

static void nap_ms(long ms)
{
    struct timespec nap = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&nap, NULL);
}

static int item_value(int64_t x, int64_t *out)
{
    if (x % 97 == 13)
        return 5;
    *out = x * x + 1;
    return 0;
}

static unsigned char ran[N]; /* per item: run on this rank in this run */

static void maybe_stop(int64_t x)
{
    atomic_fetch_add(&invocations, 1);
    if (x >= 0 && x < N)
        ran[x] = 1;
    if (x == stop_at) {
        while (atomic_load(&current_pool) == NULL) /* this rank may still be in hpool_pool_create */
            nap_ms(1);
        if (stop_signal_to_raise != 0)
            raise(stop_signal_to_raise);
        else
            hpool_pool_stop(current_pool);
    }
    if (stop_at >= 0 && x > stop_at)
        nap_ms(1);
}

static int square_fixed(hpool_task *task, void *user)
{
    (void)user;
    int64_t x = *(const int64_t *)task->input;
    maybe_stop(x);
    return item_value(x, (int64_t *)task->result);
}

/* Records: "x=<value>" of x's own length, from a producer's strings. */
static int square_record(hpool_task *task, void *user)
{
    (void)user;
    int64_t x = strtoll((const char *)task->input, NULL, 10);
    maybe_stop(x);
    int64_t value;
    int rc = item_value(x, &value);
    if (rc != 0)
        return rc;
    char text[64];
    int length = snprintf(text, sizeof text, "%lld=%lld", (long long)x, (long long)value);
    return hpool_task_emit(task, text, (size_t)length);
}

/* Doubles, summed in a fixed order (deterministic). */
static int reciprocal(hpool_task *task, void *user)
{
    (void)user;
    int64_t x = *(const int64_t *)task->input;
    maybe_stop(x);
    if (x % 97 == 13)
        return 5;
    *(double *)task->result = 1.0 / (double)(x + 1);
    return 0;
}

static void add_double(void *accumulator, const void *value, void *user)
{
    (void)user;
    *(double *)accumulator += *(const double *)value;
}

static const double zero = 0;

static int produce_numbers(const void **data, size_t *size, void *user)
{
    static char text[32];
    long *next = user;
    if (*next >= N)
        return HPOOL_EOF;
    int length = snprintf(text, sizeof text, "%ld", (*next)++);
    *data = text;
    *size = (size_t)length + 1;
    return 0;
}

static int failure_codes[N]; /* per item, from the error callback */
static atomic_int canceled_seen, callbacks_twice;

static void count_failure(uint64_t index, int code, void *user)
{
    (void)user;
    if (index < N && failure_codes[index] != 0)
        atomic_fetch_add(&callbacks_twice, 1);
    if (index < N)
        failure_codes[index] = code;
    if (code == HPOOL_ECANCELED)
        atomic_fetch_add(&canceled_seen, 1);
    if (code == 5)
        atomic_fetch_add(&failures_seen, 1);
}

/* Keyed: x emits ("k<x mod 50>", 1), summed. */
static int count_keys(hpool_task *task, void *user)
{
    (void)user;
    int64_t x = *(const int64_t *)task->input;
    maybe_stop(x);
    if (x % 97 == 13)
        return 5;
    char key[16];
    int length = snprintf(key, sizeof key, "k%d", (int)(x % 50));
    uint64_t one = 1;
    return hpool_emit(task->emitter, key, (size_t)length, &one, sizeof one);
}

static void add_u64(void *accumulator, const void *value, void *user)
{
    (void)user;
    *(uint64_t *)accumulator += *(const uint64_t *)value;
}

static const hpool_keyed_reducer keyed_reducers[] = {
    {.name = "counts", .value_size = sizeof(uint64_t), .combine = add_u64},
};

static const hpool_function functions[] = {
    {.name = "square_fixed", .map = square_fixed},
    {.name = "square_record", .map = square_record},
    {.name = "reciprocal", .map = reciprocal},
    {.name = "count_keys", .map = count_keys},
};
static const hpool_reducer reducers[] = {
    {.name = "sum", .value_size = sizeof(double), .identity = &zero, .combine = add_double},
};

enum scenario { FIXED_MAP, RECORD_IMAP, DETERMINISTIC_SUM, UNORDERED_IMAP, KEYED_COUNT };

/* One run of a scenario's call on a new pool: returns its status, and on
 * the root compares what it delivered with the uninterrupted answer for
 * every item that completed. *completed: items that ran or were replayed. */
typedef struct outcome {
    int rc;
    hpool_report report;
    long invocations; /* on all ranks */
    bool correct;
    char detail[512];
} outcome;

static bool is_root(void)
{
    int initialized = 0, rank = 0;
    MPI_Initialized(&initialized);
    if (initialized)
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    return rank == 0;
}

static outcome run(enum scenario scenario, const char *journal, int threads, long stop, const char *key)
{
    outcome result = {0};
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = functions;
    options.function_count = 4;
    options.keyed_reducers = keyed_reducers;
    options.keyed_reducer_count = 1;
    options.reducers = reducers;
    options.reducer_count = 1;
    options.threads = threads;
    /* Set before the pool exists: another rank's items may run on this
     * one's workers before its create returns. */
    stop_at = stop;
    atomic_store(&current_pool, NULL);
    atomic_store(&invocations, 0);
    memset(ran, 0, sizeof ran);
    atomic_store(&failures_seen, 0);
    memset(failure_codes, 0, sizeof failure_codes);
    atomic_store(&canceled_seen, 0);
    atomic_store(&callbacks_twice, 0);
    hpool_pool *pool = NULL;
    int rc = hpool_pool_create(&pool, &options);
    CHECK_RC(0, rc);
    if (rc != 0)
        return result;
    if (stop_signal_to_raise != 0)
        CHECK_RC(0, hpool_pool_stop_on_signal(pool, stop_signal_to_raise));
    atomic_store(&current_pool, pool);
    result.correct = true;
    if (hpool_pool_is_root(pool)) {
        static int64_t out[N];
        memset(out, 0, sizeof out);
        hpool_source *source = NULL;
        long next = 0;
        if (scenario == RECORD_IMAP || scenario == UNORDERED_IMAP)
            hpool_source_producer(&source, produce_numbers, &next);
        else
            hpool_source_range(&source, 0, N);
        hpool_call call = HPOOL_CALL_INIT;
        call.source = source;
        call.journal = journal;
        call.journal_key = key;
        call.journal_key_size = key != NULL ? strlen(key) : 0;
        call.error_callback = count_failure;
        call.chunksize = scenario == FIXED_MAP ? 0 : 7;
        if (scenario == FIXED_MAP) {
            call.function = 0;
            call.results = out;
            call.result_size = sizeof out[0];
            result.rc = hpool_map(pool, &call, &result.report);
            /* Items never cut get no error callback (hpool.h): when
             * stopped, they are the zero results without a callback. */
            uint64_t never_cut = 0;
            for (int64_t x = 0; x < N; x++) {
                int64_t want = 0;
                int code = item_value(x, &want);
                bool not_cut = result.rc == HPOOL_ESTOPPED && failure_codes[x] == 0 && out[x] == 0;
                never_cut += not_cut;
                if (!not_cut && (code != 0 ? failure_codes[x] != code && failure_codes[x] != HPOOL_ECANCELED
                                           : failure_codes[x] == 0 && out[x] != want)) {
                    if (result.correct && result.rc != HPOOL_EJOURNAL) /* a refused call delivers nothing */
                        fprintf(stderr, "test_journal: item %lld: code %d, result %lld\n", (long long)x,
                                failure_codes[x], (long long)out[x]);
                    result.correct = false;
                }
                if (failure_codes[x] != 0 && failure_codes[x] != code && failure_codes[x] != HPOOL_ECANCELED)
                    result.correct = false;
            }
            if (result.rc == HPOOL_ESTOPPED && never_cut + (uint64_t)atomic_load(&canceled_seen) != result.report.canceled) {
                fprintf(stderr, "test_journal: %llu canceled, %d canceled callbacks and %llu never cut\n",
                        (unsigned long long)result.report.canceled, atomic_load(&canceled_seen),
                        (unsigned long long)never_cut);
                result.correct = false;
            }
        } else if (scenario == KEYED_COUNT) {
            call.function = 3;
            call.reducer = 0;
            hpool_pairs *pairs = NULL;
            call.pairs = &pairs;
            result.rc = hpool_map_reduce_keyed(pool, &call, &result.report);
            if (result.rc == HPOOL_EFAILED) {
                uint64_t want[50] = {0};
                for (int64_t x = 0; x < N; x++)
                    if (x % 97 != 13)
                        want[x % 50]++;
                CHECK(hpool_pairs_count(pairs) == 50);
                for (uint64_t i = 0; i < hpool_pairs_count(pairs); i++) {
                    hpool_pair pair;
                    hpool_pairs_get(pairs, i, &pair);
                    int k = atoi((const char *)pair.key + 1);
                    uint64_t count;
                    memcpy(&count, pair.value, sizeof count);
                    if (k < 0 || k >= 50 || count != want[k]) {
                        fprintf(stderr, "test_journal: key k%d counted %llu, want %llu\n", k,
                                (unsigned long long)count, (unsigned long long)(k >= 0 && k < 50 ? want[k] : 0));
                        result.correct = false;
                    }
                }
            }
            hpool_pairs_free(pairs);
        } else if (scenario == DETERMINISTIC_SUM) {
            call.function = 2;
            call.reducer = 0;
            double sum = 0;
            call.reduction = &sum;
            call.deterministic = 1;
            result.rc = hpool_map_reduce(pool, &call, &result.report);
            /* the sequential block fold of hpool.h */
            double want = 0;
            uint64_t block = (N + 65535) / 65536;
            for (uint64_t k = 0; k * block < N; k++) {
                double partial = 0;
                for (uint64_t i = k * block; i < N && i < (k + 1) * block; i++)
                    if (i % 97 != 13)
                        partial += 1.0 / (double)(i + 1);
                want += partial;
            }
            if (result.rc == HPOOL_EFAILED && memcmp(&sum, &want, sizeof sum) != 0) {
                fprintf(stderr, "test_journal: sum %.17g, want %.17g\n", sum, want);
                result.correct = false;
            }
        } else {
            call.function = 1;
            hpool_iter *iter = NULL;
            int started = scenario == RECORD_IMAP ? hpool_imap(pool, &call, &iter) : hpool_imap_unordered(pool, &call, &iter);
            hpool_result item;
            int64_t expected_index = 0;
            static bool seen[N];
            memset(seen, 0, sizeof seen);
            while (started == 0 && (rc = hpool_iter_next(iter, &item, -1)) == 0) {
                int64_t value = 0;
                if (scenario == RECORD_IMAP && (int64_t)item.index != expected_index)
                    result.correct = false;
                expected_index++;
                if (item.index >= N || seen[item.index])
                    result.correct = false;
                else
                    seen[item.index] = true;
                int code = item_value((int64_t)item.index, &value);
                if (item.status == 0) {
                    char text[64];
                    int length = snprintf(text, sizeof text, "%lld=%lld", (long long)item.index, (long long)value);
                    if (code != 0 || item.size != (size_t)length || memcmp(item.data, text, item.size) != 0)
                        result.correct = false;
                } else if (item.status != code && item.status != HPOOL_ECANCELED) {
                    result.correct = false;
                }
            }
            if (started == 0)
                CHECK_RC(HPOOL_EOF, rc);
            result.rc = started != 0 ? started : hpool_iter_report(iter, &result.report);
            hpool_iter_free(iter);
        }
        if (result.rc == HPOOL_EFAILED && result.report.failed != (N + 96 - 13) / 97) {
            fprintf(stderr, "test_journal: %llu failed, want %d\n", (unsigned long long)result.report.failed,
                    (N + 96 - 13) / 97);
            result.correct = false;
        }
        if (result.rc == HPOOL_EFAILED && atomic_load(&failures_seen) != (N + 96 - 13) / 97)
            result.correct = false; /* replayed failures reach the error callback too */
        if (atomic_load(&callbacks_twice) != 0) {
            fprintf(stderr, "test_journal: %d items had two error callbacks\n", atomic_load(&callbacks_twice));
            result.correct = false;
        }
        hpool_error_detail(result.rc, result.detail, sizeof result.detail);
        if (result.rc != 0 && result.rc != HPOOL_EFAILED)
            fprintf(stderr, "test_journal: %s\n", result.detail);
        hpool_source_free(source);
        CHECK_RC(0, hpool_pool_join(pool));
    } else {
        CHECK_RC(0, hpool_pool_join(pool));
    }
    atomic_store(&current_pool, NULL);
    hpool_pool_free(pool);
    long mine = atomic_load(&invocations);
    int initialized = 0;
    MPI_Initialized(&initialized);
    result.invocations = mine;
    if (initialized)
        MPI_Allreduce(&mine, &result.invocations, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    static unsigned char ran_anywhere[N];
    memcpy(ran_anywhere, ran, sizeof ran);
    if (initialized)
        MPI_Allreduce(ran, ran_anywhere, N, MPI_UNSIGNED_CHAR, MPI_MAX, MPI_COMM_WORLD);
    if (is_root() && scenario == FIXED_MAP && result.rc == HPOOL_ESTOPPED)
        for (int x = 0; x < N; x++)
            if (ran_anywhere[x] && failure_codes[x] == HPOOL_ECANCELED)
                fprintf(stderr, "test_journal: item %d ran but was reported canceled\n", x);
    return result;
}


static void copy_file(const char *from, const char *to, long cut)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    CHECK(in != NULL && out != NULL);
    if (in == NULL || out == NULL)
        return;
    char buffer[65536];
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, in)) > 0)
        fwrite(buffer, 1, n, out);
    fclose(in);
    fclose(out);
    if (cut > 0) {
        FILE *file = fopen(to, "rb+");
        fseek(file, 0, SEEK_END);
        long size = ftell(file);
        fclose(file);
        CHECK(truncate(to, size - cut) == 0);
    }
}

static const char *scenario_name(enum scenario scenario)
{
    static const char *names[] = {"map", "imap records", "deterministic map_reduce", "imap_unordered",
                                  "map_reduce_keyed"};
    return names[scenario];
}

/* Stop, resume with other threads, resume again with nothing left to do. */
static void stop_and_resume(enum scenario scenario, const char *directory, int by_signal)
{
    char journal[512], torn[512];
    snprintf(journal, sizeof journal, "%s/journal-%d", directory, (int)scenario);
    snprintf(torn, sizeof torn, "%s/torn-%d", directory, (int)scenario);
    if (is_root()) {
        remove(journal);
        remove(torn);
    }
    stop_signal_to_raise = by_signal;
    outcome first = run(scenario, journal, 2, N / 3, "key");
    stop_signal_to_raise = 0;
    if (is_root()) {
        CHECK_RC(HPOOL_ESTOPPED, first.rc);
        CHECK(first.report.canceled > 0 && first.report.canceled < N);
        CHECK(first.correct);
        fprintf(stderr, "test_journal: %s stopped: %s\n", scenario_name(scenario), first.detail);
        CHECK(strstr(first.detail, "did not run") != NULL && strstr(first.detail, "the journal has the rest") != NULL);
        CHECK(strstr(first.detail, by_signal == SIGUSR1 ? "stopped by SIGUSR1" : "stopped by hpool_pool_stop()") != NULL);
        copy_file(journal, torn, 5);
    }
    uint64_t completed = first.report.items - first.report.canceled;
    outcome second = run(scenario, journal, 3, -1, "key");
    if (is_root()) {
        CHECK_RC(HPOOL_EFAILED, second.rc); /* every 97th item fails */
        CHECK(second.correct);
        /* exactly the items that had not completed ran again: a drain loses nothing */
        fprintf(stderr, "test_journal: %s: %llu completed before the stop, %ld run on resume\n",
                scenario_name(scenario), (unsigned long long)completed, second.invocations);
        CHECK(second.invocations == (long)(N - completed));
    }
    outcome third = run(scenario, journal, 1, -1, "key");
    if (is_root()) {
        CHECK_RC(HPOOL_EFAILED, third.rc); /* every 97th item fails */
        CHECK(third.correct);
        /* A keyed call that completes takes no checkpoint: the map work
         * after the stop's is done again. */
        CHECK(third.invocations == (scenario == KEYED_COUNT ? (long)(N - completed) : 0));
    }
    /* A torn last record is cut off: its items run again. */
    outcome fourth = run(scenario, torn, 2, -1, "key");
    if (is_root()) {
        CHECK_RC(HPOOL_EFAILED, fourth.rc); /* every 97th item fails */
        CHECK(fourth.correct);
        /* a keyed call's one checkpoint is its last record: all of it runs */
        CHECK(fourth.invocations > (long)(N - completed) && fourth.invocations <= (scenario == KEYED_COUNT ? N : N - 1));
    }
    /* Another key: refused, and nothing runs. */
    outcome other = run(scenario, journal, 2, -1, "other key");
    if (is_root()) {
        CHECK_RC(HPOOL_EJOURNAL, other.rc);
        CHECK(strstr(other.detail, "journal_key was another: it had \"key\", and this call has \"other key\"") != NULL);
        CHECK(other.invocations == 0);
    }
}

/* ---- A stop in a range of 2^40 items, 2^32 to a chunk --------------------- */

/* The sum of x * x for x in [0, n), mod 2^64 (the product fits 128 bits). */
static uint64_t squares_below(uint64_t n)
{
    unsigned __int128 m = n;
    return n == 0 ? 0 : (uint64_t)((m - 1) * m * (2 * m - 1) / 6);
}

static atomic_bool stop_from_first_span;

/* A span function: a chunk's sum in closed form, so a chunk of 2^32 items
 * takes no time. The span of item 0 stops the pool; the others take 20 ms,
 * so that the chunks of a batch under way are left unstarted, each a
 * not-run run of 2^32 items. */
static int sum_span_of_squares(hpool_span *span, void *user)
{
    (void)user;
    uint64_t first = (uint64_t)span->range_first;
    *(uint64_t *)span->accumulator += squares_below(first + span->count) - squares_below(first);
    if (!atomic_load(&stop_from_first_span))
        return 0;
    while (atomic_load(&current_pool) == NULL) /* this rank may still be in hpool_pool_create */
        nap_ms(1);
    if (first == 0)
        hpool_pool_stop(current_pool);
    else
        nap_ms(20);
    return 0;
}

/* The chunks a stop leaves unstarted are whole runs of not-run items: one
 * entry each, not 2^32 (64 GiB, which failed the batch with
 * HPOOL_ENOMEM after a minute's work). The rerun sums only those chunks. */
static void stop_in_huge_range(const char *directory, bool stop)
{
    static const uint64_t zero_sum = 0;
    const hpool_function spans[] = {{.name = "sum_span_of_squares", .span = sum_span_of_squares}};
    const hpool_reducer sums[] = {
        {.name = "sum", .value_size = sizeof(uint64_t), .identity = &zero_sum, .combine = hpool_combine_sum_u64}};
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = spans;
    options.function_count = 1;
    options.reducers = sums;
    options.reducer_count = 1;
    atomic_store(&stop_from_first_span, stop);
    atomic_store(&current_pool, NULL);
    hpool_pool *pool = NULL;
    CHECK_RC(0, hpool_pool_create(&pool, &options));
    if (pool == NULL)
        return;
    atomic_store(&current_pool, pool);
    if (hpool_pool_is_root(pool)) {
        char journal[512];
        snprintf(journal, sizeof journal, "%s/huge-range", directory);
        if (stop)
            remove(journal);
        const uint64_t items = (uint64_t)1 << 40, chunk = (uint64_t)1 << 32;
        hpool_source *range = NULL;
        CHECK_RC(0, hpool_source_range(&range, 0, (int64_t)items));
        hpool_call call = HPOOL_CALL_INIT;
        call.source = range;
        call.chunksize = chunk;
        call.journal = journal;
        uint64_t sum = 0;
        call.reducer = 0;
        call.reduction = &sum;
        hpool_report report = {0};
        int rc = hpool_map_reduce(pool, &call, &report);
        if (stop) {
            CHECK_RC(HPOOL_ESTOPPED, rc);
            CHECK(report.items == items);
            CHECK(report.canceled > 0 && report.canceled < items && report.canceled % chunk == 0);
            CHECK(report.failed == report.canceled);
            fprintf(stderr, "test_journal: huge range stopped with %llu of %llu items not run\n",
                    (unsigned long long)report.canceled, (unsigned long long)items);
        } else {
            char detail[512];
            hpool_error_detail(rc, detail, sizeof detail);
            if (rc != 0)
                fprintf(stderr, "test_journal: huge range resumed: %s\n", detail);
            CHECK_RC(0, rc);
            CHECK(report.failed == 0);
            CHECK(sum == squares_below(items));
        }
        hpool_source_free(range);
    }
    hpool_pool_free(pool);
    atomic_store(&current_pool, NULL);
    /* On every rank: a list of the not-run items one by one took GBs */
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    CHECK(usage.ru_maxrss < 1024 * 1024); /* KiB */
}

/* An item that never returns (item 5), for the stops that cannot wait. */
static int never_returns(hpool_task *task, void *user)
{
    (void)user;
    while (*(const int64_t *)task->input == 5)
        nap_ms(100);
    *(int64_t *)task->result = *(const int64_t *)task->input;
    return 0;
}

static double now_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* A second stop, or a first whose grace runs out, ends the call at once
 * with HPOOL_ESTOPPED, though an item still runs; free then returns. */
static int stop_at_once(bool by_grace)
{
    hpool_function stuck[] = {{.name = "never_returns", .map = never_returns}};
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = stuck;
    options.function_count = 1;
    options.threads = 2;
    options.stop_grace = by_grace ? 1 : -1;
    hpool_pool *pool = NULL;
    CHECK_RC(0, hpool_pool_create(&pool, &options));
    if (pool == NULL)
        return 1;
    enum { ITEMS = 50 };
    static int64_t out[ITEMS];
    for (int i = 0; i < ITEMS; i++)
        out[i] = -1;
    hpool_source *range;
    hpool_source_range(&range, 0, ITEMS);
    hpool_call call = HPOOL_CALL_INIT;
    call.source = range;
    call.results = out;
    call.result_size = sizeof out[0];
    call.chunksize = 1;
    hpool_async *async = NULL;
    CHECK_RC(0, hpool_map_async(pool, &call, &async));
    CHECK_RC(HPOOL_ETIMEDOUT, hpool_async_wait(async, 0.5)); /* item 5 runs by now */
    CHECK(hpool_pool_stopped(pool, NULL) == 0);
    double started = now_seconds();
    CHECK_RC(0, hpool_pool_stop(pool));
    CHECK(hpool_pool_stopped(pool, NULL) == 1);
    if (!by_grace) {
        /* the first stop waits for item 5, which never ends */
        CHECK_RC(HPOOL_ETIMEDOUT, hpool_async_wait(async, 1.0));
        CHECK_RC(0, hpool_pool_stop(pool));
        CHECK(hpool_pool_stopped(pool, NULL) == 2);
    }
    hpool_report report;
    CHECK_RC(HPOOL_ESTOPPED, hpool_async_get(async, 10, &report));
    double took = now_seconds() - started;
    char detail[512];
    hpool_error_detail(HPOOL_ESTOPPED, detail, sizeof detail);
    fprintf(stderr, "test_journal: stopped at once after %.1f s: %s\n", took, detail);
    CHECK(strstr(detail, by_grace ? "HPOOL_STOP_GRACE, ran out" : "a second stop") != NULL);
    CHECK(took >= 0.9 && took < 5);
    CHECK(out[4] == 4 && out[6] == 6); /* what completed is delivered */
    /* The report counts as canceled every item the stop dropped: item 5,
     * and those done beside it in batches that never came back, so what
     * it counts as done is no more than what was delivered. */
    uint64_t delivered = 0;
    for (int i = 0; i < ITEMS; i++)
        delivered += out[i] == i;
    fprintf(stderr, "test_journal: %llu of %llu items canceled, %llu delivered, the first failed %llu\n",
            (unsigned long long)report.canceled, (unsigned long long)report.items, (unsigned long long)delivered,
            (unsigned long long)report.first_failed_index);
    CHECK(out[5] == -1 && report.items == ITEMS && report.failed >= report.canceled);
    CHECK(report.canceled >= 1 && report.items - report.canceled <= delivered);
    CHECK(report.first_failed_index <= 5);
    hpool_async_free(async);
    /* later calls are refused */
    CHECK_RC(HPOOL_ESTOPPED, hpool_map(pool, &call, NULL));
    started = now_seconds();
    hpool_pool_free(pool);
    CHECK(now_seconds() - started < 2);
    hpool_source_free(range);
    if (check_failures == 0)
        printf("test_journal %s: all checks passed\n", by_grace ? "grace" : "at once");
    return check_failures != 0;
}

/* A journal another process holds is waited for, then refused, naming
 * the process; one that another call of this process holds, at once. */
static int journal_in_use(const char *directory)
{
    char journal[512];
    snprintf(journal, sizeof journal, "%s-locked", directory);
    remove(journal);
    int ready[2];
    if (pipe(ready) != 0)
        return 1;
    pid_t holder = fork();
    if (holder == 0) {
        int fd = open(journal, O_RDWR | O_CREAT, 0644);
        struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        fcntl(fd, F_SETLK, &lock);
        if (write(ready[1], "x", 1) != 1)
            _exit(1);
        sleep(30);
        _exit(0);
    }
    char byte;
    CHECK(read(ready[0], &byte, 1) == 1);
    hpool_function one[] = {{.name = "square_fixed", .map = square_fixed}};
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = one;
    options.function_count = 1;
    hpool_pool *pool = NULL;
    CHECK_RC(0, hpool_pool_create(&pool, &options));
    if (pool == NULL)
        return 1;
    static int64_t out[N];
    hpool_source *range;
    hpool_source_range(&range, 0, N);
    hpool_call call = HPOOL_CALL_INIT;
    call.source = range;
    call.results = out;
    call.result_size = sizeof out[0];
    call.journal = journal;
    double started = now_seconds();
    int rc = hpool_map(pool, &call, NULL);
    double took = now_seconds() - started;
    char detail[512], pid_text[32];
    hpool_error_detail(rc, detail, sizeof detail);
    fprintf(stderr, "test_journal: after %.1f s: %s\n", took, detail);
    CHECK_RC(HPOOL_EJOURNAL, rc);
    snprintf(pid_text, sizeof pid_text, "(process %ld)", (long)holder);
    CHECK(strstr(detail, pid_text) != NULL && took >= 9 && took < 20);
    kill(holder, SIGKILL);
    waitpid(holder, NULL, 0);
    /* Released: the call runs; while it runs, a second call on the same
     * journal is refused at once. */
    hpool_async *async = NULL;
    CHECK_RC(0, hpool_map_async(pool, &call, &async));
    int64_t other[N];
    call.results = other;
    CHECK_RC(HPOOL_EJOURNAL, hpool_map(pool, &call, NULL));
    hpool_error_detail(HPOOL_EJOURNAL, detail, sizeof detail);
    CHECK(strstr(detail, "another call of this process") != NULL);
    CHECK_RC(HPOOL_EFAILED, hpool_async_get(async, -1, NULL)); /* every 97th item fails */
    hpool_async_free(async);
    hpool_pool_free(pool);
    hpool_source_free(range);
    if (check_failures == 0)
        printf("test_journal in use: all checks passed\n");
    return check_failures != 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_journal DIRECTORY | test_journal - at-once | test_journal - grace\n");
        return 2;
    }
    if (argc > 2 && strcmp(argv[2], "at-once") == 0)
        return stop_at_once(false);
    if (argc > 2 && strcmp(argv[2], "grace") == 0)
        return stop_at_once(true);
    if (argc > 2 && strcmp(argv[2], "in-use") == 0)
        return journal_in_use(argv[1]);
    CHECK_RC(0, hpool_mpi_init(&argc, &argv));
    /* A directory per variant, as ctest runs them side by side. */
    int initialized = 0, size = 0;
    MPI_Initialized(&initialized);
    if (initialized)
        MPI_Comm_size(MPI_COMM_WORLD, &size);
    char directory[400];
    const char *threads = getenv("HPOOL_THREADS");
    snprintf(directory, sizeof directory, "%s-%s%d-t%s", argv[1], initialized ? "r" : "plain", size,
             threads != NULL ? threads : "0");
    if (is_root()) {
        char command[1024];
        snprintf(command, sizeof command, "rm -rf '%s' && mkdir -p '%s'", directory, directory);
        CHECK(system(command) == 0);
    }
    stop_and_resume(FIXED_MAP, directory, 0);
    stop_and_resume(RECORD_IMAP, directory, 0);
    stop_and_resume(UNORDERED_IMAP, directory, 0);
    stop_and_resume(DETERMINISTIC_SUM, directory, 0);
    stop_and_resume(KEYED_COUNT, directory, 0);
    /* The same stop from a signal, raised on the worker thread that runs
     * the item, through the handler hpool_pool_stop_on_signal installs. */
    stop_and_resume(RECORD_IMAP, directory, SIGUSR1);
    stop_in_huge_range(directory, true);
    stop_in_huge_range(directory, false);
    /* Not a journal at all. */
    char garbage[512];
    snprintf(garbage, sizeof garbage, "%s/garbage", directory);
    if (is_root()) {
        FILE *file = fopen(garbage, "w");
        fputs("these are not the records you are looking for\n", file);
        fclose(file);
    }
    outcome refused = run(FIXED_MAP, garbage, 2, -1, NULL);
    if (is_root())
        CHECK_RC(HPOOL_EJOURNAL, refused.rc);
    /* A journal whose creation stopped partway (the disk filled as its
     * header was written): a first part of this call's header, and
     * nothing else, is emptied and used, where another header's first
     * part (one byte of it changed) is refused. */
    char whole[512];
    snprintf(whole, sizeof whole, "%s/journal-%d", directory, (int)FIXED_MAP);
    unsigned char start[4096];
    size_t have = 0;
    if (is_root()) {
        FILE *file = fopen(whole, "rb");
        CHECK(file != NULL);
        if (file != NULL) {
            have = fread(start, 1, sizeof start, file);
            fclose(file);
        }
    }
    uint64_t header_size = 0; /* the header record: a 24-byte frame, then its size */
    if (have >= 24)
        memcpy(&header_size, start + 8, sizeof header_size);
    header_size += 24;
    if (initialized)
        MPI_Bcast(&header_size, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    if (is_root())
        CHECK(header_size > 24 && header_size < have);
    const uint64_t cuts[] = {1, 23, 24, 25, header_size - 1};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0] && header_size > 24 && header_size < sizeof start; c++) {
        for (int foreign = 0; foreign < 2; foreign++) {
            char cut[512];
            snprintf(cut, sizeof cut, "%s/cut-%d-%llu", directory, foreign, (unsigned long long)cuts[c]);
            if (is_root()) {
                FILE *file = fopen(cut, "wb");
                unsigned char flip = foreign ? 0x40 : 0; /* in the last byte kept */
                start[cuts[c] - 1] ^= flip;
                CHECK(file != NULL && fwrite(start, 1, cuts[c], file) == cuts[c]);
                start[cuts[c] - 1] ^= flip;
                if (file != NULL)
                    fclose(file);
            }
            outcome again = run(FIXED_MAP, cut, 2, -1, "key");
            if (is_root() && foreign) {
                CHECK_RC(HPOOL_EJOURNAL, again.rc);
                CHECK(again.invocations == 0);
            } else if (is_root()) {
                if (again.rc != HPOOL_EFAILED)
                    fprintf(stderr, "test_journal: the header cut at %llu bytes: %s\n", (unsigned long long)cuts[c],
                            again.detail);
                CHECK_RC(HPOOL_EFAILED, again.rc); /* every 97th item fails */
                CHECK(again.correct && again.invocations == N);
            }
        }
    }
    bool root = is_root();
    CHECK_RC(0, hpool_mpi_finalize());
    if (check_failures == 0 && root)
        printf("test_journal: all checks passed\n");
    return check_failures != 0;
}
