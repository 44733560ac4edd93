/* test_calls.c: every call of the pool against a sequential answer, with any ranks and threads. */
#define _POSIX_C_SOURCE 200809L
#include "hpool.h"
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- Map functions ----------------------------------------------------- */

static int square_item(hpool_task *task, void *user)
{
    int64_t x = *(const int64_t *)task->input;
    *(int64_t *)task->result = x * x;
    return 0;
}

/* Fails every item whose value is 3 mod 7, with code 7 (a user code). */
static int square_or_fail(hpool_task *task, void *user)
{
    int64_t x = *(const int64_t *)task->input;
    if (x % 7 == 3)
        return 7;
    *(int64_t *)task->result = x * x;
    return 0;
}

typedef struct point {
    int32_t x, y;
    double weight;
} point;

static int weigh_point(hpool_task *task, void *user)
{
    const point *p = task->input;
    *(double *)task->result = p->weight * (p->x + 2 * p->y);
    return 0;
}

/* Record in: a string; record out: the string reversed, then its length. */
static int reverse_record(hpool_task *task, void *user)
{
    const char *text = task->input;
    if (text[task->input_size] != '\0')
        return 99; /* records must be followed by a NUL */
    for (size_t i = task->input_size; i > 0; i--)
        if (hpool_task_emit(task, &text[i - 1], 1) != 0)
            return 98;
    uint32_t length = (uint32_t)task->input_size;
    return hpool_task_emit(task, &length, sizeof length) == 0 ? 0 : 98;
}

/* starmap: (int64 a, int32 b, double c) -> a * b + c */
static int multiply_add(hpool_task *task, void *user)
{
    if (task->arg_count != 3)
        return 5;
    int64_t a;
    int32_t b;
    double c;
    memcpy(&a, task->args[0], sizeof a);
    memcpy(&b, task->args[1], sizeof b);
    memcpy(&c, task->args[2], sizeof c);
    *(double *)task->result = (double)(a * b) + c;
    return 0;
}

/* A span function: sums x² of a range into a uint64 accumulator. */
static int sum_squares_span(hpool_span *span, void *user)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < span->count; i++) {
        uint64_t x = (uint64_t)(span->range_first + (int64_t)i);
        sum += x * x;
    }
    *(uint64_t *)span->accumulator += sum;
    return 0;
}

static int sleep_item(hpool_task *task, void *user)
{
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    *(int64_t *)task->result = *(const int64_t *)task->input;
    return 0;
}

/* Per thread state: init hands each thread a counter; the map function
 * checks it got one and counts on it without any lock. */
static atomic_int states_made, states_freed;
static int make_state(void **state, void *user)
{
    *state = calloc(1, sizeof(uint64_t));
    atomic_fetch_add(&states_made, 1);
    return *state ? 0 : 1;
}
static void free_state(void *state, void *user)
{
    free(state);
    atomic_fetch_add(&states_freed, 1);
}
static int count_with_state(hpool_task *task, void *user)
{
    uint64_t *counter = task->state;
    if (counter == NULL)
        return 3;
    (*counter)++;
    *(int64_t *)task->result = *(const int64_t *)task->input + 1;
    return 0;
}

/* Combines (min, max, count) of the values. */
typedef struct stats {
    int64_t min, max;
    uint64_t count;
} stats;

static int stats_item(hpool_task *task, void *user)
{
    int64_t x = *(const int64_t *)task->input;
    int64_t value = (x * 7919) % 1000003;
    *(stats *)task->result = (stats){value, value, 1};
    return 0;
}

static void combine_stats(void *accumulator, const void *value, void *user)
{
    stats *a = accumulator;
    const stats *v = value;
    if (v->min < a->min)
        a->min = v->min;
    if (v->max > a->max)
        a->max = v->max;
    a->count += v->count;
}

/* Values whose floating-point sum depends on the order of the additions. */
static double uneven_value(int64_t x)
{
    return (x % 7 == 0 ? 1e12 : 0.0) + 1e-3 * (double)(x % 1000) + 1.0 / (double)(x + 1);
}

static int uneven_item(hpool_task *task, void *user)
{
    *(double *)task->result = uneven_value(*(const int64_t *)task->input);
    return 0;
}

static void add_f64(void *accumulator, const void *value, void *user)
{
    *(double *)accumulator += *(const double *)value;
}

static void add_u64(void *accumulator, const void *value, void *user)
{
    *(uint64_t *)accumulator += *(const uint64_t *)value;
}

static const hpool_function functions[] = {
    {.name = "square", .map = square_item},
    {.name = "square_or_fail", .map = square_or_fail},
    {.name = "weigh_point", .map = weigh_point},
    {.name = "reverse_record", .map = reverse_record},
    {.name = "multiply_add", .map = multiply_add},
    {.name = "sum_squares_span", .span = sum_squares_span},
    {.name = "sleep_item", .map = sleep_item},
    {.name = "count_with_state", .map = count_with_state, .init = make_state, .fini = free_state},
    {.name = "stats_item", .map = stats_item},
    {.name = "uneven_item", .map = uneven_item},
};
enum { SQUARE, SQUARE_OR_FAIL, WEIGH_POINT, REVERSE_RECORD, MULTIPLY_ADD, SUM_SQUARES_SPAN, SLEEP_ITEM,
       COUNT_WITH_STATE, STATS_ITEM, UNEVEN_ITEM };

static const uint64_t zero_u64 = 0;
static const double zero_f64 = 0.0;
static const stats empty_stats = {INT64_MAX, INT64_MIN, 0};
static const hpool_reducer reducers[] = {
    {.name = "sum_u64", .value_size = sizeof(uint64_t), .identity = &zero_u64, .combine = add_u64},
    {.name = "stats", .value_size = sizeof(stats), .identity = &empty_stats, .combine = combine_stats},
    {.name = "sum_f64", .value_size = sizeof(double), .identity = &zero_f64, .combine = add_f64},
};
enum { SUM_U64, STATS, SUM_F64 };

/* ---- Tests ------------------------------------------------------------- */

/* Every chunksize works: those past any n, up to the largest, included. */
static const size_t chunksizes[] = {1, 0, 7, 1000, 100000, 1000000, SIZE_MAX - 1, SIZE_MAX};

static void test_map_range(hpool_pool *pool)
{
    static const uint64_t sizes[] = {0, 1, 13, 1000, 100003};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        uint64_t n = sizes[s];
        for (size_t c = 0; c < sizeof chunksizes / sizeof chunksizes[0]; c++) {
            if (chunksizes[c] == 1 && n > 1000)
                continue; /* chunksize 1 is covered on the smaller sizes */
            int64_t *out = malloc((n + 1) * sizeof *out);
            for (uint64_t i = 0; i < n; i++)
                out[i] = -1;
            hpool_source *range;
            CHECK_RC(0, hpool_source_range(&range, -5, -5 + (int64_t)n));
            hpool_call call = HPOOL_CALL_INIT;
            call.function = SQUARE;
            call.source = range;
            call.chunksize = chunksizes[c];
            call.results = out;
            call.result_size = sizeof *out;
            hpool_report report;
            CHECK_RC(0, hpool_map(pool, &call, &report));
            CHECK(report.items == n && report.failed == 0);
            uint64_t wrong = 0;
            for (uint64_t i = 0; i < n; i++) {
                int64_t x = -5 + (int64_t)i;
                wrong += out[i] != x * x;
            }
            CHECK(wrong == 0);
            if (wrong)
                fprintf(stderr, "  n=%llu chunksize=%zu: %llu wrong\n", (unsigned long long)n, chunksizes[c],
                        (unsigned long long)wrong);
            hpool_source_free(range);
            free(out);
        }
    }
}

static void test_array_and_records(hpool_pool *pool)
{
    enum { N = 5000 };
    point *points = malloc(N * sizeof *points);
    double *weights = malloc(N * sizeof *weights);
    for (int i = 0; i < N; i++)
        points[i] = (point){i, -i / 3, 0.5 * i};
    hpool_source *array;
    CHECK_RC(0, hpool_source_array(&array, points, sizeof *points, N));
    hpool_call call = HPOOL_CALL_INIT;
    call.function = WEIGH_POINT;
    call.source = array;
    call.results = weights;
    call.result_size = sizeof *weights;
    CHECK_RC(0, hpool_map(pool, &call, NULL));
    int wrong = 0;
    for (int i = 0; i < N; i++)
        wrong += weights[i] != points[i].weight * (points[i].x + 2 * points[i].y);
    CHECK(wrong == 0);
    hpool_source_free(array);
    free(points);
    free(weights);

    /* variable-size records in and out, including empty and NUL bytes */
    enum { R = 3001 };
    char **texts = malloc(R * sizeof *texts);
    size_t *sizes = malloc(R * sizeof *sizes);
    for (int i = 0; i < R; i++) {
        sizes[i] = (size_t)(i % 37);
        texts[i] = malloc(sizes[i] + 1);
        for (size_t j = 0; j < sizes[i]; j++)
            texts[i][j] = (char)(j % 5 == 4 ? 0 : 'a' + (i + j) % 26);
    }
    hpool_source *records;
    CHECK_RC(0, hpool_source_records(&records, (const void *const *)texts, sizes, R));
    for (size_t c = 0; c < 3; c++) {
        hpool_records *out = NULL;
        hpool_call rcall = HPOOL_CALL_INIT;
        rcall.function = REVERSE_RECORD;
        rcall.source = records;
        rcall.chunksize = chunksizes[c];
        rcall.records = &out;
        CHECK_RC(0, hpool_map(pool, &rcall, NULL));
        CHECK(hpool_records_count(out) == R);
        int bad = 0;
        for (uint64_t i = 0; i < hpool_records_count(out); i++) {
            const unsigned char *data;
            size_t size;
            CHECK_RC(0, hpool_records_get(out, i, (const void **)&data, &size));
            bad += size != sizes[i] + 4;
            for (size_t j = 0; j < sizes[i] && size == sizes[i] + 4; j++)
                bad += data[j] != (unsigned char)texts[i][sizes[i] - 1 - j];
        }
        CHECK(bad == 0);
        const void *data;
        size_t size;
        CHECK_RC(HPOOL_EINVAL, hpool_records_get(out, R, &data, &size));
        hpool_records_free(out);
    }
    /* No records at all: an empty result, not a sort of nothing (which
     * UBSan stops on). */
    hpool_source *none;
    CHECK_RC(0, hpool_source_records(&none, (const void *const *)texts, sizes, 0));
    hpool_records *empty = NULL;
    hpool_call ecall = HPOOL_CALL_INIT;
    ecall.function = REVERSE_RECORD;
    ecall.source = none;
    ecall.records = &empty;
    CHECK_RC(0, hpool_map(pool, &ecall, NULL));
    CHECK(empty != NULL && hpool_records_count(empty) == 0);
    hpool_records_free(empty);
    hpool_source_free(none);
    hpool_source_free(records);
    for (int i = 0; i < R; i++)
        free(texts[i]);
    free(texts);
    free(sizes);
}

static void test_starmap(hpool_pool *pool)
{
    enum { N = 4099 };
    int64_t *a = malloc(N * sizeof *a);
    int32_t *b = malloc(N * sizeof *b);
    double *c = malloc(N * sizeof *c), *out = malloc(N * sizeof *out);
    for (int i = 0; i < N; i++) {
        a[i] = i;
        b[i] = 3 - i;
        c[i] = i * 0.25;
    }
    const void *columns[] = {a, b, c};
    const size_t sizes[] = {sizeof *a, sizeof *b, sizeof *c};
    hpool_source *zipped;
    CHECK_RC(0, hpool_source_columns(&zipped, 3, columns, sizes, N));
    hpool_call call = HPOOL_CALL_INIT;
    call.function = MULTIPLY_ADD;
    call.source = zipped;
    call.results = out;
    call.result_size = sizeof *out;
    CHECK_RC(0, hpool_starmap(pool, &call, NULL));
    int wrong = 0;
    for (int i = 0; i < N; i++)
        wrong += out[i] != (double)(a[i] * b[i]) + c[i];
    CHECK(wrong == 0);
    hpool_async *async;
    memset(out, 0, N * sizeof *out);
    CHECK_RC(0, hpool_starmap_async(pool, &call, &async));
    CHECK_RC(0, hpool_async_get(async, -1, NULL));
    CHECK(out[N - 1] == (double)(a[N - 1] * b[N - 1]) + c[N - 1]);
    hpool_async_free(async);
    /* starmap needs a tuple source */
    hpool_source *range;
    hpool_source_range(&range, 0, 3);
    call.source = range;
    CHECK_RC(HPOOL_EINVAL, hpool_starmap(pool, &call, NULL));
    hpool_source_free(range);
    hpool_source_free(zipped);
    free(a);
    free(b);
    free(c);
    free(out);
}

/* Callback bookkeeping: callbacks run one at a time on a pool thread. */
typedef struct tally {
    int completions;
    uint64_t failures, failed_index_sum;
    int last_status;
} tally;

static void count_completion(const hpool_report *report, void *user)
{
    tally *t = user;
    t->completions++;
    t->last_status = report->status;
}

static void count_failure(uint64_t index, int code, void *user)
{
    tally *t = user;
    if (code == 7) {
        t->failures++;
        t->failed_index_sum += index;
    }
}

static void test_failures_and_callbacks(hpool_pool *pool)
{
    enum { N = 10000 };
    int64_t *out = malloc(N * sizeof *out);
    for (size_t c = 0; c < 4; c++) {
        memset(out, 0, N * sizeof *out);
        hpool_source *range;
        hpool_source_range(&range, 0, N);
        tally t = {0};
        hpool_call call = HPOOL_CALL_INIT;
        call.function = SQUARE_OR_FAIL;
        call.source = range;
        call.chunksize = chunksizes[c];
        call.results = out;
        call.result_size = sizeof *out;
        call.callback = count_completion;
        call.error_callback = count_failure;
        call.user = &t;
        hpool_async *async;
        CHECK_RC(0, hpool_map_async(pool, &call, &async));
        hpool_report report;
        CHECK_RC(HPOOL_EFAILED, hpool_async_get(async, -1, &report));
        CHECK(hpool_async_ready(async));
        CHECK(!hpool_async_successful(async));
        uint64_t expected_failures = 0, expected_sum = 0;
        int wrong = 0;
        for (int64_t x = 0; x < N; x++) {
            if (x % 7 == 3) {
                expected_failures++;
                expected_sum += (uint64_t)x;
            } else {
                wrong += out[x] != x * x; /* every good item is delivered */
            }
        }
        CHECK(wrong == 0);
        CHECK(report.failed == expected_failures);
        CHECK(report.first_failed_index == 3 && report.first_failed_code == 7);
        CHECK(report.status == HPOOL_EFAILED);
        CHECK(t.completions == 1);
        CHECK(t.failures == expected_failures && t.failed_index_sum == expected_sum);
        char message[200];
        CHECK_RC(0, hpool_report_format(&report, message, sizeof message));
        CHECK(strstr(message, "failed") != NULL && strstr(message, "index 3") != NULL);
        hpool_async_free(async);
        hpool_source_free(range);
    }
    /* the blocking call says the same */
    hpool_source *range;
    hpool_source_range(&range, 0, 100);
    hpool_call call = HPOOL_CALL_INIT;
    call.function = SQUARE_OR_FAIL;
    call.source = range;
    call.results = out;
    call.result_size = sizeof *out;
    hpool_report report;
    for (int i = 0; i < 100; i++)
        out[i] = INT64_MIN;
    CHECK_RC(HPOOL_EFAILED, hpool_map(pool, &call, &report));
    CHECK(report.failed == 14 && report.items == 100);
    /* a failed item's slot is left as it was, on every rank */
    int wrong_slots = 0;
    for (int64_t i = 0; i < 100; i++)
        wrong_slots += out[i] != (i % 7 == 3 ? INT64_MIN : i * i);
    CHECK(wrong_slots == 0);
    hpool_source_free(range);
    free(out);
}

static void note_completion(const hpool_report *report, void *user)
{
    atomic_fetch_add((atomic_int *)user, 1);
}

static void test_success_callbacks_and_timeout(hpool_pool *pool)
{
    /* slow items: get with a short timeout must time out, then succeed */
    int64_t out[6];
    hpool_source *range;
    hpool_source_range(&range, 100, 106);
    tally t = {0};
    hpool_call call = HPOOL_CALL_INIT;
    call.function = SLEEP_ITEM;
    call.source = range;
    call.chunksize = 1;
    call.results = out;
    call.result_size = sizeof out[0];
    call.callback = count_completion;
    call.error_callback = count_failure;
    call.user = &t;
    hpool_async *async;
    CHECK_RC(0, hpool_map_async(pool, &call, &async));
    CHECK_RC(HPOOL_ETIMEDOUT, hpool_async_get(async, 0.001, NULL));
    CHECK_RC(HPOOL_ETIMEDOUT, hpool_async_wait(async, 0.0));
    CHECK(!hpool_async_ready(async));
    CHECK_RC(0, hpool_async_wait(async, 30.0));
    CHECK_RC(0, hpool_async_get(async, 0.0, NULL));
    CHECK(hpool_async_successful(async));
    CHECK(t.completions == 1 && t.failures == 0 && t.last_status == 0);
    for (int i = 0; i < 6; i++)
        CHECK(out[i] == 100 + i);
    hpool_async_free(async);
    /* a handle freed before completion: the call still completes once */
    call.callback = note_completion;
    call.error_callback = NULL;
    atomic_int completions = 0;
    call.user = &completions;
    CHECK_RC(0, hpool_map_async(pool, &call, &async));
    hpool_async_free(async);
    /* out and range must outlive the call, so wait for its callback */
    for (int waited = 0; atomic_load(&completions) == 0 && waited < 3000; waited++) {
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    CHECK(atomic_load(&completions) == 1);
    hpool_source_free(range);
}

static void test_streams(hpool_pool *pool)
{
    static const uint64_t sizes[] = {0, 1, 777, 50000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        uint64_t n = sizes[s];
        for (size_t c = 0; c < 4; c++) {
            hpool_source *range;
            hpool_source_range(&range, 0, (int64_t)n);
            hpool_call call = HPOOL_CALL_INIT;
            call.function = SQUARE_OR_FAIL;
            call.source = range;
            call.chunksize = chunksizes[c];
            call.result_size = sizeof(int64_t);
            for (int ordered = 0; ordered < 2; ordered++) {
                hpool_iter *iter;
                CHECK_RC(0, ordered ? hpool_imap(pool, &call, &iter) : hpool_imap_unordered(pool, &call, &iter));
                unsigned char *seen = calloc(n + 1, 1);
                uint64_t count = 0, disorder = 0, wrong = 0, failed = 0;
                hpool_result r;
                int rc;
                while ((rc = hpool_iter_next(iter, &r, -1)) == 0) {
                    if (r.index >= n || seen[r.index]++) {
                        wrong++;
                        continue;
                    }
                    disorder += ordered && r.index != count;
                    count++;
                    int64_t x = (int64_t)r.index;
                    if (x % 7 == 3)
                        failed += r.status == 7;
                    else
                        wrong += r.status != 0 || r.size != 8 || *(const int64_t *)r.data != x * x;
                }
                CHECK_RC(HPOOL_EOF, rc);
                CHECK(count == n && wrong == 0 && disorder == 0);
                CHECK(failed == (n + 3) / 7);
                hpool_report report;
                CHECK_RC(failed ? HPOOL_EFAILED : 0, hpool_iter_report(iter, &report));
                CHECK(report.failed == failed);
                CHECK_RC(HPOOL_EOF, hpool_iter_next(iter, &r, -1));
                hpool_iter_free(iter);
                free(seen);
            }
            hpool_source_free(range);
        }
    }
    /* a stream of variable-size records */
    const char *words[] = {"alpha", "", "gamma", "delta", "epsilon"};
    hpool_source *records;
    hpool_source_records(&records, (const void *const *)words, NULL, 5);
    hpool_call call = HPOOL_CALL_INIT;
    call.function = REVERSE_RECORD;
    call.source = records;
    hpool_iter *iter;
    CHECK_RC(0, hpool_imap(pool, &call, &iter));
    hpool_result r;
    uint64_t expected = 0;
    while (hpool_iter_next(iter, &r, -1) == 0) {
        CHECK(r.index == expected);
        size_t length = strlen(words[expected]);
        CHECK(r.size == length + 4);
        if (length > 0)
            CHECK(((const char *)r.data)[0] == words[expected][length - 1]);
        expected++;
    }
    CHECK(expected == 5);
    hpool_iter_free(iter);
    hpool_source_free(records);
    /* a timeout while the next result is not there yet */
    hpool_source *slow;
    hpool_source_range(&slow, 0, 2);
    call = (hpool_call)HPOOL_CALL_INIT;
    call.function = SLEEP_ITEM;
    call.source = slow;
    call.result_size = sizeof(int64_t);
    CHECK_RC(0, hpool_imap(pool, &call, &iter));
    CHECK_RC(HPOOL_ETIMEDOUT, hpool_iter_next(iter, &r, 0.0005));
    CHECK_RC(0, hpool_iter_next(iter, &r, 30));
    hpool_iter_free(iter); /* early: the rest is cancelled */
    hpool_source_free(slow);
}

/* A producer of the integers 0 .. limit-1 as 8-byte records. */
typedef struct counter {
    int64_t next, limit, value;
} counter;

static int produce_counter(const void **data, size_t *size, void *user)
{
    counter *c = user;
    if (c->next >= c->limit)
        return HPOOL_EOF;
    c->value = c->next++;
    *data = &c->value;
    *size = sizeof c->value;
    return 0;
}

static void test_producer(hpool_pool *pool)
{
    counter c = {0, 54321, 0};
    hpool_source *source;
    CHECK_RC(0, hpool_source_producer(&source, produce_counter, &c));
    hpool_call call = HPOOL_CALL_INIT;
    call.function = SQUARE;
    call.source = source;
    call.result_size = sizeof(int64_t);
    hpool_iter *iter;
    CHECK_RC(0, hpool_imap(pool, &call, &iter));
    hpool_result r;
    uint64_t count = 0, wrong = 0;
    while (hpool_iter_next(iter, &r, -1) == 0) {
        int64_t x = (int64_t)r.index;
        wrong += r.index != count || *(const int64_t *)r.data != x * x;
        count++;
    }
    CHECK(count == 54321 && wrong == 0);
    hpool_iter_free(iter);
    /* a producer cannot fill a fixed array of unknown length */
    int64_t out[4];
    call.results = out;
    CHECK_RC(HPOOL_EINVAL, hpool_map(pool, &call, NULL));
    hpool_source_free(source);
}

static void test_reduce(hpool_pool *pool)
{
    static const int64_t stops[] = {0, 1, 1000, 3000001};
    for (size_t s = 0; s < sizeof stops / sizeof stops[0]; s++) {
        for (size_t c = 0; c < sizeof chunksizes / sizeof chunksizes[0]; c++) {
            if (chunksizes[c] == 1 && stops[s] > 1000)
                continue;
            hpool_source *range;
            hpool_source_range(&range, 1, stops[s] + 1);
            uint64_t sum = 12345, expected = 0;
            for (int64_t x = 1; x <= stops[s]; x++)
                expected += (uint64_t)x * (uint64_t)x;
            hpool_call call = HPOOL_CALL_INIT;
            call.function = SUM_SQUARES_SPAN;
            call.source = range;
            call.chunksize = chunksizes[c];
            call.reducer = SUM_U64;
            call.reduction = &sum;
            CHECK_RC(0, hpool_map_reduce(pool, &call, NULL));
            CHECK(sum == expected);
            /* a struct reduce through an item function */
            stats result, reference = empty_stats;
            for (int64_t x = 1; x <= stops[s]; x++) {
                int64_t value = (x * 7919) % 1000003;
                stats one = {value, value, 1};
                combine_stats(&reference, &one, NULL);
            }
            call.function = STATS_ITEM;
            call.reducer = STATS;
            call.reduction = &result;
            hpool_async *async;
            CHECK_RC(0, hpool_map_reduce_async(pool, &call, &async));
            CHECK_RC(0, hpool_async_get(async, -1, NULL));
            CHECK(result.min == reference.min && result.max == reference.max && result.count == reference.count);
            hpool_async_free(async);
            hpool_source_free(range);
        }
    }
}

/* Deterministic mode: the same bits for every chunksize here, and, as every
 * rank and thread count compares with the same sequential fold, for every
 * run of this test. The fold is the documented one: blocks of
 * ceil(n / 65536) items (1 to 4096), each folded in order, then the blocks. */
static void test_deterministic_reduce(hpool_pool *pool)
{
    static const int64_t sizes[] = {0, 5, 100003, 1000003};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int64_t n = sizes[s];
        int64_t block = (n + 65535) / 65536;
        block = block < 1 ? 1 : block > 4096 ? 4096 : block;
        double expected = 0.0;
        for (int64_t start = 0; start < n; start += block) {
            double partial = 0.0;
            for (int64_t x = start; x < n && x < start + block; x++)
                partial += uneven_value(x);
            expected += partial;
        }
        hpool_source *range;
        hpool_source_range(&range, 0, n);
        for (size_t c = 0; c < sizeof chunksizes / sizeof chunksizes[0]; c++) {
            double sum = -1.0;
            hpool_call call = HPOOL_CALL_INIT;
            call.function = UNEVEN_ITEM;
            call.source = range;
            call.chunksize = chunksizes[c];
            call.reducer = SUM_F64;
            call.reduction = &sum;
            call.deterministic = 1;
            CHECK_RC(0, hpool_map_reduce(pool, &call, NULL));
            CHECK(memcmp(&sum, &expected, sizeof sum) == 0);
            if (memcmp(&sum, &expected, sizeof sum) != 0)
                fprintf(stderr, "  n=%lld chunksize=%zu: %.17g, expected %.17g\n", (long long)n, chunksizes[c], sum,
                        expected);
        }
        hpool_source_free(range);
    }
}

static void test_apply_and_state(hpool_pool *pool)
{
    int64_t x = -12, result = 0;
    CHECK_RC(0, hpool_apply(pool, SQUARE, &x, sizeof x, &result, sizeof result));
    CHECK(result == 144);
    hpool_async *async;
    x = 9;
    CHECK_RC(0, hpool_apply_async(pool, SQUARE, &x, sizeof x, &result, sizeof result, &async));
    x = 0; /* the input was copied */
    CHECK_RC(0, hpool_async_get(async, -1, NULL));
    CHECK(result == 81);
    hpool_async_free(async);
    x = 3;
    CHECK_RC(HPOOL_EFAILED, hpool_apply(pool, SQUARE_OR_FAIL, &x, sizeof x, &result, sizeof result));

    enum { N = 20000 };
    int64_t *out = malloc(N * sizeof *out);
    hpool_source *range;
    hpool_source_range(&range, 0, N);
    hpool_call call = HPOOL_CALL_INIT;
    call.function = COUNT_WITH_STATE;
    call.source = range;
    call.results = out;
    call.result_size = sizeof *out;
    CHECK_RC(0, hpool_map(pool, &call, NULL));
    int wrong = 0;
    for (int i = 0; i < N; i++)
        wrong += out[i] != i + 1;
    CHECK(wrong == 0);
    hpool_source_free(range);
    free(out);
}

/* The progress hook: every item reported done exactly once, by runs. */
typedef struct progress_seen {
    unsigned char *times; /* per item: how often a run covered it */
    uint64_t items, calls;
} progress_seen;

static void note_progress(uint64_t first, uint64_t count, void *user)
{
    progress_seen *seen = user;
    seen->calls++;
    for (uint64_t i = first; i < first + count; i++)
        if (i < seen->items && seen->times[i] < 255)
            seen->times[i]++;
        else
            seen->times[seen->items]++; /* out of range: counted apart */
}

static bool progress_complete(const progress_seen *seen)
{
    for (uint64_t i = 0; i < seen->items; i++)
        if (seen->times[i] != 1)
            return false;
    return seen->times[seen->items] == 0 && (seen->items == 0 || seen->calls > 0);
}

static void test_progress(hpool_pool *pool)
{
    static const uint64_t sizes[] = {0, 1, 1000, 100003};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        uint64_t n = sizes[s];
        for (int kind = 0; kind < 3; kind++) {
            progress_seen seen = {calloc(n + 1, 1), n, 0};
            int64_t *out = malloc((n + 1) * sizeof *out);
            uint64_t sum = 0;
            hpool_source *range;
            CHECK_RC(0, hpool_source_range(&range, 0, (int64_t)n));
            hpool_call call = HPOOL_CALL_INIT;
            call.source = range;
            call.chunksize = kind == 1 ? 7 : 0;
            call.progress = note_progress;
            call.user = &seen;
            if (kind == 0) { /* map */
                call.function = SQUARE;
                call.results = out;
                call.result_size = sizeof *out;
                CHECK_RC(0, hpool_map(pool, &call, NULL));
            } else if (kind == 1) { /* imap, read to the end */
                call.function = SQUARE;
                call.result_size = sizeof *out;
                hpool_iter *iter;
                CHECK_RC(0, hpool_imap(pool, &call, &iter));
                hpool_result result;
                while (hpool_iter_next(iter, &result, -1) == 0)
                    ;
                hpool_iter_free(iter);
            } else { /* map_reduce */
                call.function = SUM_SQUARES_SPAN;
                call.reducer = SUM_U64;
                call.reduction = &sum;
                CHECK_RC(0, hpool_map_reduce(pool, &call, NULL));
            }
            CHECK(progress_complete(&seen));
            if (!progress_complete(&seen))
                fprintf(stderr, "  progress: n=%llu kind=%d\n", (unsigned long long)n, kind);
            hpool_source_free(range);
            free(out);
            free(seen.times);
        }
    }
}

static void test_usage_errors(hpool_pool *pool)
{
    hpool_source *range;
    hpool_source_range(&range, 0, 10);
    int64_t out[10];
    hpool_call call = HPOOL_CALL_INIT;
    call.source = range;
    call.function = 1000;
    call.results = out;
    call.result_size = sizeof out[0];
    CHECK_RC(HPOOL_EINVAL, hpool_map(pool, &call, NULL));
    call.function = SQUARE;
    call.source = NULL;
    CHECK_RC(HPOOL_EINVAL, hpool_map(pool, &call, NULL));
    CHECK_RC(HPOOL_EINVAL, hpool_map(NULL, &call, NULL));
    call.source = range;
    call.reducer = 77;
    CHECK_RC(HPOOL_EINVAL, hpool_map_reduce(pool, &call, NULL));
    int index = -1;
    CHECK_RC(0, hpool_pool_function(pool, "stats_item", &index));
    CHECK(index == STATS_ITEM);
    CHECK_RC(HPOOL_EINVAL, hpool_pool_function(pool, "no such", &index));
    hpool_source *bad;
    CHECK_RC(HPOOL_EINVAL, hpool_source_array(&bad, NULL, 8, 3));
    CHECK_RC(HPOOL_EINVAL, hpool_source_producer(&bad, NULL, NULL));
    hpool_source_free(range);
}

static void test_terminate(hpool_pool *pool)
{
    enum { N = 400 };
    int64_t *out = malloc(N * sizeof *out);
    hpool_source *range;
    hpool_source_range(&range, 0, N);
    tally t = {0};
    hpool_call call = HPOOL_CALL_INIT;
    call.function = SLEEP_ITEM;
    call.source = range;
    call.chunksize = 1;
    call.results = out;
    call.result_size = sizeof *out;
    call.callback = count_completion;
    call.user = &t;
    hpool_async *async;
    CHECK_RC(0, hpool_map_async(pool, &call, &async));
    struct timespec pause = {0, 50 * 1000 * 1000};
    nanosleep(&pause, NULL);
    CHECK_RC(0, hpool_pool_terminate(pool));
    hpool_report report;
    CHECK_RC(HPOOL_ECANCELED, hpool_async_get(async, 30, &report));
    CHECK(report.canceled > 0 && report.canceled < N);
    CHECK(report.items == N && report.failed == report.canceled);
    CHECK(t.completions == 1 && t.last_status == HPOOL_ECANCELED);
    hpool_async_free(async);
    CHECK_RC(HPOOL_ECLOSED, hpool_map(pool, &call, NULL));
    hpool_source_free(range);
    free(out);
}

int main(int argc, char **argv)
{
    CHECK_RC(0, hpool_mpi_init(&argc, &argv));
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = functions;
    options.function_count = sizeof functions / sizeof functions[0];
    options.reducers = reducers;
    options.reducer_count = sizeof reducers / sizeof reducers[0];
    hpool_pool *pool;
    int rc = hpool_pool_create(&pool, &options);
    CHECK_RC(0, rc);
    if (rc != 0) {
        hpool_mpi_finalize();
        return 1;
    }
    if (hpool_pool_is_root(pool)) {
        test_map_range(pool);
        test_array_and_records(pool);
        test_starmap(pool);
        test_failures_and_callbacks(pool);
        test_success_callbacks_and_timeout(pool);
        test_streams(pool);
        test_producer(pool);
        test_reduce(pool);
        test_deterministic_reduce(pool);
        test_apply_and_state(pool);
        test_progress(pool);
        test_usage_errors(pool);
        test_terminate(pool);
    } else {
        hpool_source *range;
        hpool_source_range(&range, 0, 1);
        hpool_call call = HPOOL_CALL_INIT;
        call.source = range;
        CHECK_RC(HPOOL_ENOTROOT, hpool_map(pool, &call, NULL));
        hpool_source_free(range);
    }
    CHECK_RC(0, hpool_pool_join(pool));
    int threads = hpool_pool_threads(pool);
    hpool_pool_free(pool);
    /* every thread that made state freed it at the end */
    CHECK(atomic_load(&states_made) == atomic_load(&states_freed));
    CHECK(atomic_load(&states_made) <= threads);
    CHECK_RC(0, hpool_mpi_finalize());
    if (check_failures)
        fprintf(stderr, "test_calls: %d checks failed\n", check_failures);
    return check_failures ? 1 : 0;
}
