/* test_misuse.c: misuse of the public API is an error code, never a crash or a hang; and the version calls agree with the header. */
#include "check.h"

#include <hpool.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The pool, for map functions and callbacks that try to call into it. */
static hpool_pool *the_pool;
static atomic_int inner_rc = 1;   /* what a nested call returned; 1: not run */
static atomic_int inner_join = 1;

static int square(hpool_task *task, void *user)
{
    int64_t x = *(const int64_t *)task->input;
    if (task->result != NULL)
        *(int64_t *)task->result = x * x;
    return 0;
}

/* A map function that calls hpool_map on its own pool: it would wait for
 * itself. Every rank's workers try it. */
static int nested(hpool_task *task, void *user)
{
    hpool_source *source = NULL;
    hpool_source_range(&source, 0, 4);
    int64_t out[4];
    hpool_call call = HPOOL_CALL_INIT;
    call.source = source;
    call.results = out;
    call.result_size = sizeof out[0];
    atomic_store(&inner_rc, hpool_map(the_pool, &call, NULL));
    hpool_source_free(source);
    return 0;
}

static void add_i64(void *accumulator, const void *value, void *user)
{
    *(int64_t *)accumulator += *(const int64_t *)value;
}

/* A completion callback that waits on its own pool, twice. */
static void on_complete(const hpool_report *report, void *user)
{
    hpool_source *source = NULL;
    hpool_source_range(&source, 0, 4);
    hpool_call call = HPOOL_CALL_INIT;
    call.source = source;
    atomic_store(&inner_rc, hpool_map(the_pool, &call, NULL));
    atomic_store(&inner_join, hpool_pool_join(the_pool));
    hpool_pool_free(the_pool); /* does nothing from the pool's own thread */
    hpool_source_free(source);
}

/* A completion callback (on the root's engine, a thread of the pool) that
 * only starts calls: allowed, since nothing waits. */
static hpool_source *started_source;
static int64_t started_out[4];
static hpool_async *started_async;
static hpool_iter *started_iter;
static atomic_int start_rc = 1, stream_rc = 1;

static void on_complete_starts(const hpool_report *report, void *user)
{
    hpool_call call = HPOOL_CALL_INIT;
    call.source = started_source;
    call.results = started_out;
    call.result_size = sizeof started_out[0];
    atomic_store(&start_rc, hpool_map_async(the_pool, &call, &started_async));
    hpool_call stream = HPOOL_CALL_INIT;
    stream.source = started_source;
    stream.result_size = sizeof(int64_t);
    atomic_store(&stream_rc, hpool_imap(the_pool, &stream, &started_iter));
}

int main(int argc, char **argv)
{
    CHECK(hpool_version() == HPOOL_VERSION_NUMBER);
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", HPOOL_VERSION_MAJOR, HPOOL_VERSION_MINOR, HPOOL_VERSION_PATCH);
    CHECK(strcmp(hpool_version_string(), expected) == 0);

    CHECK_RC(0, hpool_mpi_init(&argc, &argv));
    static const int64_t zero = 0;
    static const hpool_function functions[] = {{.name = "square", .map = square}, {.name = "nested", .map = nested}};
    static const hpool_reducer reducers[] = {
        {.name = "sum", .value_size = sizeof(int64_t), .identity = &zero, .combine = add_i64}};
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = functions;
    options.function_count = 2;
    options.reducers = reducers;
    options.reducer_count = 1;
    CHECK_RC(0, hpool_pool_create(&the_pool, &options));
    if (the_pool == NULL)
        return 1;

    /* MPI cannot end under a live pool (plain runs have no MPI to end). */
    int mpi_running = 0;
    MPI_Initialized(&mpi_running);
    CHECK_RC(mpi_running ? HPOOL_EBUSY : 0, hpool_mpi_finalize());
    int size = hpool_pool_size(the_pool);

    if (hpool_pool_is_root(the_pool)) {
        hpool_source *source;
        hpool_source_range(&source, 0, 100);
        int64_t out[100];

        /* Results of 8 bytes and nowhere to put them. */
        hpool_call call = HPOOL_CALL_INIT;
        call.source = source;
        call.result_size = sizeof out[0];
        CHECK_RC(HPOOL_EINVAL, hpool_map(the_pool, &call, NULL));
        CHECK_RC(HPOOL_EINVAL, hpool_apply(the_pool, 0, &zero, sizeof zero, NULL, sizeof out[0]));

        /* Each detail names the function called. */
        hpool_async *no_async = NULL;
        char said[256];
        CHECK_RC(HPOOL_EINVAL, hpool_apply(NULL, 0, &zero, sizeof zero, NULL, 0));
        hpool_error_detail(HPOOL_EINVAL, said, sizeof said);
        CHECK(strstr(said, "hpool_apply: pool is NULL") != NULL);
        CHECK_RC(HPOOL_EINVAL, hpool_map_async(NULL, &call, &no_async));
        hpool_error_detail(HPOOL_EINVAL, said, sizeof said);
        CHECK(strstr(said, "hpool_map_async: pool is NULL") != NULL);
        CHECK_RC(HPOOL_EINVAL, hpool_starmap(the_pool, NULL, NULL));
        hpool_error_detail(HPOOL_EINVAL, said, sizeof said);
        CHECK(strstr(said, "hpool_starmap: call is NULL") != NULL);

        /* Result sizes no buffer can hold: count × size wrapped, and
         * sized the buffers too small (a heap overrun on another rank).
         * The function writes none of it; the array is never reached. */
        static const size_t huge_sizes[] = {SIZE_MAX, (size_t)1 << 63, (size_t)1 << 62, (size_t)1 << 41,
                                            ((size_t)1 << 40) + 1};
        for (size_t h = 0; h < sizeof huge_sizes / sizeof huge_sizes[0]; h++) {
            call.results = out;
            call.result_size = huge_sizes[h];
            CHECK_RC(HPOOL_EINVAL, hpool_map(the_pool, &call, NULL));
            char detail[256];
            hpool_error_detail(HPOOL_EINVAL, detail, sizeof detail);
            CHECK(strstr(detail, "at most 1099511627776 bytes") != NULL);
            hpool_iter *stream = NULL;
            CHECK_RC(HPOOL_EINVAL, hpool_imap(the_pool, &call, &stream));
            CHECK(stream == NULL);
            CHECK_RC(HPOOL_EINVAL, hpool_apply(the_pool, 0, &zero, sizeof zero, out, huge_sizes[h]));
        }
        hpool_source *vast;
        hpool_source_range(&vast, 0, (int64_t)1 << 35);
        call.source = vast;
        call.result_size = (size_t)1 << 30; /* 1 GiB results, but 2^35 of them */
        CHECK_RC(HPOOL_EINVAL, hpool_map(the_pool, &call, NULL));
        char detail[256];
        hpool_error_detail(HPOOL_EINVAL, detail, sizeof detail);
        CHECK(strstr(detail, "more bytes than memory has") != NULL);
        /* A stream holds no array, but a chunk of 2^33 such results is
         * still 2^63 bytes. */
        call.results = NULL;
        call.chunksize = (size_t)1 << 33;
        hpool_iter *chunked = NULL;
        CHECK_RC(HPOOL_EINVAL, hpool_imap(the_pool, &call, &chunked));
        hpool_error_detail(HPOOL_EINVAL, detail, sizeof detail);
        CHECK(strstr(detail, "more bytes than a chunk can hold") != NULL);
        call.chunksize = 0;
        hpool_source_free(vast);
        call.source = source;
        call.results = NULL;
        call.result_size = sizeof out[0];

        /* A value size that is not the reducer's. */
        int64_t sum = 0;
        hpool_call reduce = HPOOL_CALL_INIT;
        reduce.source = source;
        reduce.reducer = 0;
        reduce.reduction = &sum;
        reduce.result_size = sizeof(int32_t);
        CHECK_RC(HPOOL_EINVAL, hpool_map_reduce(the_pool, &reduce, NULL));
        reduce.result_size = sizeof(int64_t); /* the reducer's own: fine */
        CHECK_RC(0, hpool_map_reduce(the_pool, &reduce, NULL));
        CHECK(sum == 99 * 100 * 199 / 6);

        /* A map function calling into its own pool gets HPOOL_EDEADLK. */
        hpool_call outer = HPOOL_CALL_INIT;
        outer.function = 1;
        outer.source = source;
        CHECK_RC(0, hpool_map(the_pool, &outer, NULL));
        CHECK_RC(HPOOL_EDEADLK, atomic_load(&inner_rc));

        /* So does a completion callback, for a call and for a join. */
        atomic_store(&inner_rc, 1);
        hpool_call async_call = HPOOL_CALL_INIT;
        async_call.source = source;
        async_call.results = out;
        async_call.result_size = sizeof out[0];
        async_call.callback = on_complete;
        hpool_async *async = NULL;
        CHECK_RC(0, hpool_map_async(the_pool, &async_call, &async));
        CHECK_RC(0, hpool_async_get(async, 60, NULL));
        hpool_async_free(async);
        CHECK_RC(HPOOL_EDEADLK, atomic_load(&inner_rc));
        CHECK_RC(HPOOL_EDEADLK, atomic_load(&inner_join));
        CHECK(out[99] == 9801);

        /* A callback may start calls on its own pool, which the program's
         * thread then waits for. */
        hpool_source_range(&started_source, 0, 4);
        async_call.callback = on_complete_starts;
        CHECK_RC(0, hpool_map_async(the_pool, &async_call, &async));
        CHECK_RC(0, hpool_async_get(async, 60, NULL));
        hpool_async_free(async);
        CHECK_RC(0, atomic_load(&start_rc));
        CHECK_RC(0, atomic_load(&stream_rc));
        if (started_async != NULL) {
            CHECK_RC(0, hpool_async_get(started_async, 60, NULL));
            CHECK(started_out[3] == 9);
            hpool_async_free(started_async);
        }
        if (started_iter != NULL) {
            hpool_result result;
            int64_t total = 0;
            int rc;
            while ((rc = hpool_iter_next(started_iter, &result, 60)) == 0)
                total += *(const int64_t *)result.data;
            CHECK_RC(HPOOL_EOF, rc);
            CHECK(total == 0 + 1 + 4 + 9);
            hpool_iter_free(started_iter);
        }
        hpool_source_free(started_source);

        /* apply_async's handle may be freed before its call ends. */
        int64_t applied = 0, seven = 7;
        CHECK_RC(0, hpool_apply_async(the_pool, 0, &seven, sizeof seven, &applied, sizeof applied, &async));
        hpool_async_free(async);
        CHECK_RC(0, hpool_apply(the_pool, 0, &seven, sizeof seven, &applied, sizeof applied));
        CHECK(applied == 49);
        hpool_source_free(source);
    }
    CHECK_RC(0, hpool_pool_join(the_pool));
    hpool_pool_free(the_pool);
    CHECK_RC(0, hpool_mpi_finalize());
    if (check_failures == 0)
        printf("misuse: all checks passed on %d rank%s\n", size, size == 1 ? "" : "s");
    return check_failures ? 1 : 0;
}
