/* test_large.c: a result of more than 2 GiB made on another rank arrives whole on the root. */
#include "hpool.h"
#include "check.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Over INT_MAX bytes, the most one MPI message can hold, and not a whole
 * number of the transport's 1 GiB pieces. */
#define RESULT_BYTES (((size_t)1 << 31) + 4096 + 8)
#define ROOT_SKIPS 5 /* the root's items fail with this: only the other rank's matter */

static bool on_root;

/* Word i of item x's result: a pattern any misplaced or lost piece breaks. */
static uint64_t pattern(uint64_t x, size_t i)
{
    return (x + 1) * 0x9e3779b97f4a7c15u ^ (uint64_t)i;
}

static int fill(hpool_task *task, void *user)
{
    if (on_root)
        return ROOT_SKIPS;
    uint64_t *words = task->result;
    for (size_t i = 0; i < RESULT_BYTES / sizeof *words; i++)
        words[i] = pattern(task->index, i);
    return 0;
}

int main(int argc, char **argv)
{
    CHECK_RC(0, hpool_mpi_init(&argc, &argv));
    static const hpool_function functions[] = {{.name = "fill", .map = fill}};
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = functions;
    options.function_count = 1;
    hpool_pool *pool;
    CHECK_RC(0, hpool_pool_create(&pool, &options));
    if (pool == NULL)
        return 1;
    on_root = hpool_pool_is_root(pool);
    CHECK(hpool_pool_size(pool) >= 2);
    if (on_root) {
        /* Two items: the root takes one, the other rank the other. Pages
         * of the root's own result are never written, so cost nothing. */
        const uint64_t items = 2;
        unsigned char *results = calloc(items, RESULT_BYTES);
        CHECK(results != NULL);
        hpool_source *range;
        CHECK_RC(0, hpool_source_range(&range, 0, (int64_t)items));
        hpool_call call = HPOOL_CALL_INIT;
        call.source = range;
        call.chunksize = 1;
        call.results = results;
        call.result_size = RESULT_BYTES;
        hpool_report report;
        int rc = results ? hpool_map(pool, &call, &report) : HPOOL_ENOMEM;
        /* Each item either failed on the root or came whole from the other. */
        CHECK(rc == 0 || rc == HPOOL_EFAILED);
        CHECK(report.failed < items);
        CHECK(report.failed == 0 || report.first_failed_code == ROOT_SKIPS);
        uint64_t whole = 0;
        for (uint64_t x = 0; results != NULL && x < items; x++) {
            const uint64_t *words = (const uint64_t *)(results + x * RESULT_BYTES);
            if (words[0] == 0)
                continue; /* the root's: skipped */
            size_t wrong = 0;
            for (size_t i = 0; i < RESULT_BYTES / sizeof *words; i++)
                wrong += words[i] != pattern(x, i);
            CHECK(wrong == 0);
            whole += wrong == 0;
        }
        CHECK(whole + report.failed == items);
        free(results);
        hpool_source_free(range);
    }
    CHECK_RC(0, hpool_pool_join(pool));
    hpool_pool_free(pool);
    hpool_mpi_finalize();
    return check_failures ? 1 : 0;
}
