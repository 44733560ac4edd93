/* test_stall.c: a rank that stops (SIGSTOP, as kill -STOP does), the root included, fails the call with HPOOL_ESTALLED naming it, within the stall timeout, and the pool still joins and frees; stuck items and unread streams are given up; a stop at once abandons what is stuck on every rank and still ends through MPI_Finalize. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <hpool.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *pid_file;

static double now_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* Items take 50 ms; on stopping_rank (1, or the root), the fifth item it
 * runs stops the whole process, the way kill -STOP does, after leaving its
 * pid for the other rank to wake it with. */
static atomic_int items_run;
static int stopping_rank = 1;

static int nap_or_stop(hpool_task *task, void *user)
{
    int rank = *(const int *)user;
    if (rank == stopping_rank && atomic_fetch_add(&items_run, 1) == 4) {
        FILE *file = fopen(pid_file, "w");
        if (file != NULL) {
            fprintf(file, "%ld\n", (long)getpid());
            fclose(file);
        }
        raise(SIGSTOP);
    }
    struct timespec nap = {0, 50 * 1000 * 1000};
    nanosleep(&nap, NULL);
    *(int64_t *)task->result = *(const int64_t *)task->input;
    return 0;
}

/* A map function that never returns, at item 5. */
static int never_returns(hpool_task *task, void *user)
{
    (void)user;
    while (*(const int64_t *)task->input == 5) {
        struct timespec nap = {1, 0};
        nanosleep(&nap, NULL);
    }
    *(int64_t *)task->result = *(const int64_t *)task->input;
    return 0;
}

/* A pool of 2 threads with the shortest stall timeout and one function. */
static hpool_pool *pool_of(const hpool_function *function)
{
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = function;
    options.function_count = 1;
    options.threads = 2;
    options.stall_timeout = 4;
    hpool_pool *pool = NULL;
    CHECK_RC(0, hpool_pool_create(&pool, &options));
    return pool;
}

/* MPI, this process's rank, and a pool of function on exactly 2 ranks
 * (function->user is the rank); NULL if it cannot be made or the job has
 * another size. */
static hpool_pool *pool_on_two_ranks(int *argc, char ***argv, const char *test, hpool_function *function, int *rank)
{
    CHECK_RC(0, hpool_mpi_init(argc, argv));
    *rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    function->user = rank;
    hpool_pool *pool = pool_of(function);
    if (pool != NULL && hpool_pool_size(pool) != 2) {
        fprintf(stderr, "test_stall: run %s with 2 ranks\n", test);
        return NULL;
    }
    return pool;
}

/* A map of items 0..n-1 (*range, for the caller to free) into out, one
 * item a chunk, so that every item is a batch of its own. */
static hpool_call one_item_chunks(hpool_source **range, size_t n, void *out, size_t result_size)
{
    hpool_source_range(range, 0, n);
    hpool_call call = HPOOL_CALL_INIT;
    call.source = *range;
    call.results = out;
    call.result_size = result_size;
    call.chunksize = 1;
    return call;
}

/* Starts one_item_chunks's map, whose function gets stuck: a wait of 1 s
 * on it times out. */
static hpool_async *start_stuck_call(hpool_pool *pool, hpool_source **range, int64_t *out, size_t n)
{
    hpool_call call = one_item_chunks(range, n, out, sizeof out[0]);
    hpool_async *async = NULL;
    CHECK_RC(0, hpool_map_async(pool, &call, &async));
    CHECK_RC(HPOOL_ETIMEDOUT, hpool_async_get(async, 1.0, NULL));
    return async;
}

/* After hpool_async_get timed out on it: hpool_pool_terminate returns
 * after the stall timeout, the call ends with HPOOL_ESTALLED naming the
 * item, and hpool_pool_free returns at once (the thread is abandoned).
 * Without terminate, hpool_pool_free itself returns after the timeout. */
static int test_stuck(bool terminate)
{
    static const hpool_function function = {.name = "never_returns", .map = never_returns};
    hpool_pool *pool = pool_of(&function);
    if (pool == NULL)
        return 1;
    enum { N = 50 };
    static int64_t out[N];
    hpool_source *range;
    hpool_async *async = start_stuck_call(pool, &range, out, N);
    double started = now_seconds();
    if (!terminate) {
        hpool_async_free(async); /* the call goes on */
        hpool_pool_free(pool);
        double took = now_seconds() - started;
        fprintf(stderr, "test_stall: free took %.1f s\n", took);
        CHECK(took >= 2 && took < 15);
        hpool_source_free(range);
        CHECK_RC(0, hpool_mpi_finalize());
        if (check_failures == 0)
            printf("stall stuck-free: all checks passed\n");
        return check_failures != 0;
    }
    CHECK_RC(0, hpool_pool_terminate(pool));
    double took = now_seconds() - started;
    CHECK(took >= 2 && took < 15); /* the stall timeout from the item's start */
    hpool_report report;
    CHECK_RC(HPOOL_ESTALLED, hpool_async_get(async, 0, &report));
    char detail[512];
    hpool_error_detail(HPOOL_ESTALLED, detail, sizeof detail);
    fprintf(stderr, "test_stall: terminate took %.1f s: %s\n", took, detail);
    CHECK(strstr(detail, "still running in map function \"never_returns\" at item 5") != NULL);
    CHECK(strstr(detail, "abandoned") != NULL);
    hpool_async_free(async);
    started = now_seconds();
    hpool_pool_free(pool);
    CHECK(now_seconds() - started < 2);
    hpool_source_free(range);
    CHECK_RC(0, hpool_mpi_finalize());
    if (check_failures == 0)
        printf("stall stuck: all checks passed\n");
    return check_failures != 0;
}

/* What a stuck map function does. */
static void sleep_forever(void)
{
    for (;;) {
        struct timespec nap = {1, 0};
        nanosleep(&nap, NULL);
    }
}

/* Rank 1's hpool_pool_join, the code it returned (expected) and its
 * detail (into detail), which is printed and must name function. */
static void join_rank_one(hpool_pool *pool, int expected, const char *function, char *detail, size_t size)
{
    double started = now_seconds();
    int rc = hpool_pool_join(pool);
    hpool_error_detail(rc, detail, size);
    fprintf(stderr, "test_stall: rank 1's join after %.1f s: %s\n", now_seconds() - started, detail);
    CHECK_RC(expected, rc);
    char running[128];
    snprintf(running, sizeof running, "still running in map function \"%s\"", function);
    CHECK(strstr(detail, running) != NULL);
}

/* On rank 1, the first item it runs never returns; every other item is
 * copied. */
static atomic_int rank_one_items;

static int stuck_on_rank_one(hpool_task *task, void *user)
{
    int rank = *(const int *)user;
    if (rank == 1 && atomic_fetch_add(&rank_one_items, 1) == 0)
        sleep_forever();
    *(int64_t *)task->result = *(const int64_t *)task->input;
    return 0;
}

/* 2 ranks. A map function stuck on rank 1: hpool_pool_terminate on the
 * root returns a stall timeout on, the call ends with HPOOL_ESTALLED
 * naming rank 1 and its item, and the root's join and free return. On
 * rank 1, join returns HPOOL_ESTALLED (the item abandoned with its
 * thread) instead of waiting for it, so that both ranks reach
 * MPI_Finalize and the job ends. */
static int test_stuck_rank(int argc, char **argv)
{
    int rank;
    hpool_function function = {.name = "stuck_on_rank_one", .map = stuck_on_rank_one};
    hpool_pool *pool = pool_on_two_ranks(&argc, &argv, "stuck-rank", &function, &rank);
    if (pool == NULL)
        return 1;
    if (hpool_pool_is_root(pool)) {
        enum { N = 200 };
        static int64_t out[N];
        hpool_source *range;
        hpool_async *async = start_stuck_call(pool, &range, out, N);
        double started = now_seconds();
        CHECK_RC(0, hpool_pool_terminate(pool));
        double took = now_seconds() - started;
        CHECK(took >= 3 && took < 15); /* the stall timeout, 4 s, from terminate */
        hpool_report report;
        CHECK_RC(HPOOL_ESTALLED, hpool_async_get(async, 0, &report));
        char detail[512];
        hpool_error_detail(HPOOL_ESTALLED, detail, sizeof detail);
        fprintf(stderr, "test_stall: terminate took %.1f s: %s\n", took, detail);
        CHECK(strstr(detail, "rank 1 (host ") != NULL && strstr(detail, "after hpool_pool_terminate") != NULL);
        CHECK(strstr(detail, " of call ") != NULL); /* the item it held */
        hpool_async_free(async);
        hpool_source_free(range);
        started = now_seconds();
        hpool_pool_join(pool);
        hpool_pool_free(pool);
        CHECK(now_seconds() - started < 5);
    } else {
        char detail[512];
        join_rank_one(pool, HPOOL_ESTALLED, "stuck_on_rank_one", detail, sizeof detail);
        CHECK(strstr(detail, "abandoned") != NULL);
        hpool_pool_free(pool);
    }
    CHECK_RC(0, hpool_mpi_finalize());
    if (check_failures == 0 && rank == 0)
        printf("stall stuck-rank: all checks passed\n");
    return check_failures != 0;
}

/* On each rank, the first item it runs never returns; on rank 1 it first
 * creates pid_file, so that the root knows it runs. Every other item is
 * copied. */
static atomic_int items_begun;
/* Results larger than MPI's eager limit: those rank 1 still sends after
 * the stop complete only if the root takes them, as it does until rank 1
 * says it stopped. */
#define STUCK_RESULT_SIZE 65536

static int stuck_on_every_rank(hpool_task *task, void *user)
{
    int rank = *(const int *)user;
    if (atomic_fetch_add(&items_begun, 1) == 0) {
        if (rank == 1) {
            FILE *file = fopen(pid_file, "w");
            if (file != NULL)
                fclose(file);
        }
        sleep_forever();
    }
    /* The value first: on the root it goes straight into the caller's
     * array, where an abandoned thread may still be writing it. */
    *(int64_t *)task->result = *(const int64_t *)task->input;
    memset((unsigned char *)task->result + sizeof(int64_t), 0x5a, STUCK_RESULT_SIZE - sizeof(int64_t));
    return 0;
}

/* 2 ranks. A second hpool_pool_stop while an item is stuck on each rank:
 * the call ends with HPOOL_ESTOPPED at once, every item it counts as done
 * was delivered, the root's join and free return at once, rank 1's join
 * returns HPOOL_ESTOPPED naming the item it abandoned (not HPOOL_ESTALLED:
 * the stop abandoned it on purpose), and both ranks then get through
 * MPI_Finalize, with no MPI_Abort (which under MPICH could lose what the
 * job had just printed). */
static int test_stop_at_once_ranks(int argc, char **argv)
{
    int rank;
    hpool_function function = {.name = "stuck_on_every_rank", .map = stuck_on_every_rank};
    hpool_pool *pool = pool_on_two_ranks(&argc, &argv, "stop-at-once", &function, &rank);
    if (pool == NULL)
        return 1;
    if (hpool_pool_is_root(pool)) {
        remove(pid_file);
        enum { N = 400 };
        /* Static: the abandoned threads may write into it until the end. */
        static unsigned char out[(size_t)N * STUCK_RESULT_SIZE];
        for (int i = 0; i < N; i++)
            *(int64_t *)(out + (size_t)i * STUCK_RESULT_SIZE) = -1;
        hpool_source *range;
        hpool_call call = one_item_chunks(&range, N, out, STUCK_RESULT_SIZE);
        hpool_async *async = NULL;
        CHECK_RC(0, hpool_map_async(pool, &call, &async));
        for (int tries = 0; access(pid_file, F_OK) != 0 && tries < 3000; tries++) {
            struct timespec nap = {0, 10000000};
            nanosleep(&nap, NULL);
        }
        CHECK(access(pid_file, F_OK) == 0); /* rank 1 runs its stuck item */
        double started = now_seconds();
        CHECK_RC(0, hpool_pool_stop(pool));
        CHECK_RC(HPOOL_ETIMEDOUT, hpool_async_wait(async, 0.5)); /* the first stop waits for the stuck items */
        CHECK_RC(0, hpool_pool_stop(pool));
        hpool_report report;
        CHECK_RC(HPOOL_ESTOPPED, hpool_async_get(async, 10, &report));
        double took = now_seconds() - started;
        char detail[512];
        hpool_error_detail(HPOOL_ESTOPPED, detail, sizeof detail);
        fprintf(stderr, "test_stall: stopped at once after %.1f s: %s\n", took, detail);
        CHECK(took < 5 && strstr(detail, "a second stop") != NULL);
        uint64_t delivered = 0;
        for (int i = 0; i < N; i++) {
            int64_t value = *(int64_t *)(out + (size_t)i * STUCK_RESULT_SIZE);
            if (value != -1 && value != i)
                fprintf(stderr, "test_stall: item %d's result is %lld\n", i, (long long)value);
            CHECK(value == -1 || value == i);
            delivered += value == i;
        }
        fprintf(stderr, "test_stall: %llu of %llu items canceled, %llu delivered\n",
                (unsigned long long)report.canceled, (unsigned long long)report.items,
                (unsigned long long)delivered);
        CHECK(report.items == N && report.canceled >= 2 && report.items - report.canceled <= delivered);
        hpool_async_free(async);
        hpool_source_free(range);
        started = now_seconds();
        int rc = hpool_pool_join(pool);
        hpool_error_detail(rc, detail, sizeof detail);
        fprintf(stderr, "test_stall: the root's join after %.1f s: %s\n", now_seconds() - started, detail);
        CHECK(rc == 0 || rc == HPOOL_ESTOPPED);
        hpool_pool_free(pool);
        CHECK(now_seconds() - started < 5);
    } else {
        char detail[512];
        join_rank_one(pool, HPOOL_ESTOPPED, "stuck_on_every_rank", detail, sizeof detail);
        CHECK(strstr(detail, "stopped the pool at once") != NULL);
        CHECK(hpool_pool_stopped(pool, NULL) == 2);
        hpool_pool_free(pool);
    }
    CHECK_RC(0, hpool_mpi_finalize());
    if (check_failures == 0 && rank == 0)
        printf("stall stop-at-once: all checks passed\n");
    return check_failures != 0;
}

/* The pid that nap_or_stop left in pid_file, woken with SIGCONT. */
static void wake_stopped_rank(void)
{
    FILE *file = fopen(pid_file, "r");
    long pid = 0;
    CHECK(file != NULL && fscanf(file, "%ld", &pid) == 1 && pid > 0);
    if (file != NULL)
        fclose(file);
    if (pid > 0)
        kill((pid_t)pid, SIGCONT);
}

/* 2 ranks. The root stops (SIGSTOP) in the middle of a map: rank 1 stops
 * serving it a stall timeout on, and its join returns HPOOL_ESTALLED
 * saying why, instead of waiting for it forever; woken, the root's map
 * ends with rank 1's error, and both ranks end. Results of 64 KiB, more
 * than MPI sends without the receiver (eagerly), leave rank 1 sends to
 * the stopped root that never complete: it must not wait for them. */
static int test_root_stopped(int argc, char **argv)
{
    int rank;
    stopping_rank = 0;
    hpool_function function = {.name = "nap_or_stop", .map = nap_or_stop};
    hpool_pool *pool = pool_on_two_ranks(&argc, &argv, "root-stopped", &function, &rank);
    if (pool == NULL)
        return 1;
    if (hpool_pool_is_root(pool)) {
        enum { N = 200, RESULT_SIZE = 64 * 1024 };
        static unsigned char out[N][RESULT_SIZE];
        hpool_source *range;
        hpool_call call = one_item_chunks(&range, N, out, RESULT_SIZE); /* nap_or_stop writes the first 8 bytes */
        int rc = hpool_map(pool, &call, NULL);
        char detail[512];
        hpool_error_detail(rc, detail, sizeof detail);
        fprintf(stderr, "test_stall: the root's map, woken: %s\n", detail);
        CHECK_RC(HPOOL_ESTALLED, rc);
        CHECK(strstr(detail, "rank 1") != NULL);
        hpool_source_free(range);
        hpool_pool_join(pool);
    } else {
        remove(pid_file);
        double started = now_seconds();
        int rc = hpool_pool_join(pool);
        double took = now_seconds() - started;
        char detail[512];
        hpool_error_detail(rc, detail, sizeof detail);
        fprintf(stderr, "test_stall: rank 1's join after %.1f s: %s\n", took, detail);
        CHECK_RC(HPOOL_ESTALLED, rc);
        CHECK(strstr(detail, "has not heard from the root, rank 0") != NULL);
        CHECK(took >= 4 && took < 20); /* the stall timeout, and not much more */
        wake_stopped_rank();
    }
    hpool_pool_free(pool);
    CHECK_RC(0, hpool_mpi_finalize());
    if (check_failures == 0 && rank == 0)
        printf("stall root-stopped: all checks passed\n");
    return check_failures != 0;
}

static int copy_item(hpool_task *task, void *user)
{
    (void)user;
    memcpy(task->result, task->input, sizeof(int64_t));
    return 0;
}

/* A stream read once and then left, its window full, while the root
 * joins: a stall timeout after the join began, the stream is cancelled,
 * and join returns HPOOL_EDEADLK saying why, instead of waiting for a
 * reader that will never come. The results done before still read, and
 * the stream ends with the same code. */
static int test_unread_stream(int argc, char **argv)
{
    CHECK_RC(0, hpool_mpi_init(&argc, &argv));
    static const hpool_function function = {.name = "copy_item", .map = copy_item};
    hpool_pool *pool = pool_of(&function);
    if (pool == NULL)
        return 1;
    if (!hpool_pool_is_root(pool)) {
        CHECK_RC(0, hpool_pool_join(pool));
        hpool_pool_free(pool);
        CHECK_RC(0, hpool_mpi_finalize());
        return check_failures != 0;
    }
    enum { N = 100000000 };
    hpool_source *range;
    hpool_source_range(&range, 0, N);
    hpool_call call = HPOOL_CALL_INIT;
    call.source = range;
    call.result_size = sizeof(int64_t);
    hpool_iter *iter = NULL;
    CHECK_RC(0, hpool_imap(pool, &call, &iter));
    hpool_result result;
    CHECK_RC(0, hpool_iter_next(iter, &result, -1));
    CHECK(result.index == 0);
    double started = now_seconds();
    CHECK_RC(HPOOL_EDEADLK, hpool_pool_join(pool));
    double took = now_seconds() - started;
    char detail[512];
    hpool_error_detail(HPOOL_EDEADLK, detail, sizeof detail);
    fprintf(stderr, "test_stall: join took %.1f s: %s\n", took, detail);
    CHECK(strstr(detail, "hpool_imap) has a full window of results that nobody read") != NULL);
    CHECK(took >= 3 && took < 30);
    uint64_t read = 1, next = 1;
    int rc;
    while ((rc = hpool_iter_next(iter, &result, 0)) == 0) {
        CHECK(result.index == next && result.status == 0 && *(const int64_t *)result.data == (int64_t)next);
        next++;
        read++;
    }
    CHECK_RC(HPOOL_EDEADLK, rc);
    CHECK(read > 1 && read < N);
    hpool_iter_free(iter);
    hpool_pool_free(pool);
    hpool_source_free(range);
    CHECK_RC(0, hpool_mpi_finalize());
    if (check_failures == 0)
        printf("stall unread-stream: all checks passed\n");
    return check_failures != 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_stall PID_FILE [root-stopped|stop-at-once] | test_stall - stuck|stuck-free|stuck-rank|unread-stream\n");
        return 2;
    }
    if (argc > 2 && strcmp(argv[2], "stuck") == 0)
        return test_stuck(true);
    if (argc > 2 && strcmp(argv[2], "stuck-free") == 0)
        return test_stuck(false);
    if (argc > 2 && strcmp(argv[2], "stuck-rank") == 0)
        return test_stuck_rank(argc, argv);
    if (argc > 2 && strcmp(argv[2], "unread-stream") == 0)
        return test_unread_stream(argc, argv);
    pid_file = argv[1];
    if (argc > 2 && strcmp(argv[2], "root-stopped") == 0)
        return test_root_stopped(argc, argv);
    if (argc > 2 && strcmp(argv[2], "stop-at-once") == 0)
        return test_stop_at_once_ranks(argc, argv);
    CHECK_RC(0, hpool_mpi_init(&argc, &argv));
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    hpool_function functions[] = {{.name = "nap_or_stop", .map = nap_or_stop, .user = &rank}};
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = functions;
    options.function_count = 1;
    options.stall_timeout = 4; /* the shortest it takes: four heartbeats */
    hpool_pool *pool = NULL;
    CHECK_RC(0, hpool_pool_create(&pool, &options));
    if (pool == NULL)
        return 1;
    if (hpool_pool_size(pool) != 2) {
        fprintf(stderr, "test_stall: run it with 2 ranks\n");
        return 1;
    }
    if (hpool_pool_is_root(pool)) {
        remove(pid_file);
        enum { N = 200 };
        static int64_t out[N];
        hpool_source *range;
        hpool_call call = one_item_chunks(&range, N, out, sizeof out[0]);
        double started = now_seconds();
        int rc = hpool_map(pool, &call, NULL);
        double took = now_seconds() - started;
        CHECK_RC(HPOOL_ESTALLED, rc);
        char detail[512];
        hpool_error_detail(rc, detail, sizeof detail);
        fprintf(stderr, "test_stall: after %.1f s: %s\n", took, detail);
        CHECK(strstr(detail, "rank 1 (host ") != NULL && strstr(detail, "has not answered for") != NULL);
        CHECK(strstr(detail, "it held item") != NULL); /* the batches it held */
        /* the timeout, and not much more: the rest of the run was 200 x 50 ms over 3 threads or fewer */
        CHECK(took >= 4 && took < 20);
        /* A later call fails at once, with the same error. */
        CHECK_RC(HPOOL_ESTALLED, hpool_map(pool, &call, NULL));
        started = now_seconds();
        CHECK_RC(HPOOL_ESTALLED, hpool_pool_join(pool));
        CHECK(now_seconds() - started < 10);
        hpool_source_free(range);
        wake_stopped_rank(); /* rank 1, so that the job can end normally */
    } else {
        hpool_pool_join(pool); /* after the root gave up, what it says does not matter */
    }
    hpool_pool_free(pool);
    CHECK_RC(0, hpool_mpi_finalize());
    if (check_failures == 0 && rank == 0)
        printf("stall: all checks passed\n");
    return check_failures != 0;
}
