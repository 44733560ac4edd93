/* journal_redo.c: a journaled map over items of a set cost, counting every item it runs in a file that survives kill -9, to measure what a resume redoes. */
#define _GNU_SOURCE
#include <hpool.h>

#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/*   journal_redo JOURNAL COUNTER N ITEM_MICROSECONDS
 *
 * Runs x -> x * x over 0..N-1 with call.journal = JOURNAL, each item
 * spinning ITEM_MICROSECONDS of CPU, and adds one to the u64 in COUNTER (a
 * file mapped shared, so the count survives the process being killed) for
 * every item it runs. Stops on SIGTERM (exit 75, as the apps). On success
 * prints the sum of the results and exits 0. The driver kills it, reruns
 * it with the same journal until it exits 0, and reads COUNTER - N: the
 * items run more than once. */

static _Atomic uint64_t *counter;
static long item_ns;

static void spin(long ns)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do
        clock_gettime(CLOCK_MONOTONIC, &now);
    while ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) < ns);
}

static int square(hpool_task *task, void *user)
{
    (void)user;
    int64_t x = *(const int64_t *)task->input;
    spin(item_ns);
    atomic_fetch_add(counter, 1);
    *(int64_t *)task->result = x * x;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: journal_redo JOURNAL COUNTER N ITEM_MICROSECONDS\n");
        return 2;
    }
    long n = atol(argv[3]);
    item_ns = atol(argv[4]) * 1000L;
    int fd = open(argv[2], O_RDWR | O_CREAT, 0644);
    if (fd < 0 || ftruncate(fd, sizeof(uint64_t)) != 0) {
        perror(argv[2]);
        return 1;
    }
    counter = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (counter == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    int rc = hpool_mpi_init(&argc, &argv);
    hpool_function functions[] = {{.name = "square", .map = square}};
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = functions;
    options.function_count = 1;
    hpool_pool *pool = NULL;
    if (rc == 0)
        rc = hpool_pool_create(&pool, &options);
    if (rc != 0) {
        fprintf(stderr, "journal_redo: %s\n", hpool_strerror(rc));
        return 1;
    }
    hpool_pool_stop_on_signal(pool, SIGTERM);
    int status = 0;
    if (hpool_pool_is_root(pool)) {
        int64_t *results = calloc((size_t)n, sizeof *results);
        hpool_source *range;
        hpool_source_range(&range, 0, n);
        hpool_call call = HPOOL_CALL_INIT;
        call.source = range;
        call.results = results;
        call.result_size = sizeof *results;
        call.journal = argv[1];
        hpool_report report;
        rc = hpool_map(pool, &call, &report);
        if (rc == 0) {
            int64_t sum = 0;
            for (long i = 0; i < n; i++)
                sum += results[i];
            printf("%lld\n", (long long)sum);
        } else {
            char detail[512];
            hpool_error_detail(rc, detail, sizeof detail);
            fprintf(stderr, "journal_redo: %s\n", detail);
            status = rc == HPOOL_ESTOPPED ? 75 : 1;
        }
        hpool_source_free(range);
        free(results);
    }
    hpool_pool_join(pool);
    hpool_pool_free(pool);
    hpool_mpi_finalize();
    return status;
}
