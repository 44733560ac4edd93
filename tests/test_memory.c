/* test_memory.c: a stream over a lazy producer of 10^7 items stays within a memory bound. */
#include "hpool.h"
#include "check.h"

#include <stdio.h>
#include <sys/resource.h>

#define ITEMS 10000000
#define BOUND_MB 80

typedef struct counter {
    uint64_t next, value;
} counter;

static int produce(const void **data, size_t *size, void *user)
{
    counter *c = user;
    if (c->next >= ITEMS)
        return HPOOL_EOF;
    c->value = c->next++;
    *data = &c->value;
    *size = sizeof c->value;
    return 0;
}

static int triple(hpool_task *task, void *user)
{
    *(uint64_t *)task->result = 3 * *(const uint64_t *)task->input;
    return 0;
}

#if defined(__SANITIZE_ADDRESS__)
/* AddressSanitizer keeps 256 MB of freed memory in quarantine by default,
 * which would hide what hpool itself holds. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "quarantine_size_mb=4";
}
#endif

static long peak_rss_mb(void)
{
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss / 1024;
}

int main(int argc, char **argv)
{
    CHECK_RC(0, hpool_mpi_init(&argc, &argv));
    static const hpool_function functions[] = {{.name = "triple", .map = triple}};
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = functions;
    options.function_count = 1;
    hpool_pool *pool;
    CHECK_RC(0, hpool_pool_create(&pool, &options));
    long baseline = peak_rss_mb();
    if (pool != NULL && hpool_pool_is_root(pool)) {
        counter c = {0, 0};
        hpool_source *source;
        hpool_source_producer(&source, produce, &c);
        hpool_call call = HPOOL_CALL_INIT;
        call.source = source;
        call.result_size = sizeof(uint64_t);
        for (int ordered = 0; ordered < 2; ordered++) {
            c.next = 0;
            hpool_iter *iter;
            CHECK_RC(0, ordered ? hpool_imap(pool, &call, &iter) : hpool_imap_unordered(pool, &call, &iter));
            uint64_t count = 0, sum = 0;
            hpool_result r;
            while (hpool_iter_next(iter, &r, -1) == 0) {
                count++;
                sum += *(const uint64_t *)r.data;
            }
            CHECK(count == ITEMS);
            CHECK(sum == 3ull * ((uint64_t)ITEMS * (ITEMS - 1) / 2));
            hpool_iter_free(iter);
        }
        hpool_source_free(source);
    }
    CHECK_RC(0, hpool_pool_join(pool));
    long grown = peak_rss_mb() - baseline;
    printf("rank %d: peak RSS grew %ld MB over %d items (bound %d MB)\n", hpool_pool_rank(pool), grown, ITEMS,
           BOUND_MB);
    CHECK(grown < BOUND_MB);
    hpool_pool_free(pool);
    hpool_mpi_finalize();
    return check_failures ? 1 : 0;
}
