/* balance.c: how close hpool's scheduler gets to the lower bound when item costs are uneven (the hpool side of balance.sh). */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, clock_nanosleep under -std=c11 */
#include "balance_items.h"

#include <hpool.h>

/* What every rank's map function needs; filled once the pool says how many
 * workers there are (the giants' cost depends on it), before any item runs. */
typedef struct balance_job {
    balance_costs costs;
    balance_kind kind;
} balance_job;

static balance_job job;

/* The item's cost comes from its index, so nothing but the index travels;
 * the result is the duration the item measured, which the root sums. */
static int run_item(hpool_task *task, void *user)
{
    const balance_job *items = user;
    *(int64_t *)task->result = balance_run_item(&items->costs, items->kind, task->index);
    return 0;
}

static const hpool_function functions[] = {{.name = "run_item", .map = run_item, .user = &job}};

enum { CALL_MAP, CALL_IMAP_UNORDERED };

static void usage(const char *program)
{
    fprintf(stderr,
            "usage: %s [options]\n"
            "  maps items 0..N-1, each costing what --dist gives its index, over hpool's\n"
            "  ranks (from the launcher) and threads (HPOOL_THREADS), times the call and\n"
            "  prints its efficiency: max(work / workers, longest item) / seconds.\n" BALANCE_COMMON_USAGE
            "  --call C       map or imap_unordered (map)\n"
            "  --chunksize C  items per task; 0 = hpool's automatic chunking (0)\n",
            program);
}

/* imap_unordered: the results come as they finish; each is put at its index
 * so that a lost or repeated item shows as a hole, as with hpool_map. */
static int stream_results(hpool_pool *pool, const hpool_call *call, int64_t *durations, uint64_t items,
                          hpool_report *report)
{
    hpool_iter *iter;
    int rc = hpool_imap_unordered(pool, call, &iter);
    if (rc != 0)
        return rc;
    hpool_result result;
    while ((rc = hpool_iter_next(iter, &result, -1)) == 0) {
        if (result.status != 0 || result.size != sizeof durations[0] || result.index >= items) {
            rc = HPOOL_EFAILED;
            break;
        }
        memcpy(&durations[result.index], result.data, sizeof durations[0]);
    }
    if (rc == HPOOL_EOF)
        rc = hpool_iter_report(iter, report);
    hpool_iter_free(iter);
    return rc;
}

/* Runs the timed call on the root; returns the process exit status. */
static int run_root(hpool_pool *pool, const balance_settings *settings, int call_kind, uint64_t chunksize)
{
    int64_t *durations = calloc(settings->items, sizeof *durations);
    hpool_source *range = NULL;
    if (durations == NULL || hpool_source_range(&range, 0, (int64_t)settings->items) != 0) {
        fprintf(stderr, "balance: out of memory\n");
        free(durations);
        return 1;
    }
    hpool_call call = HPOOL_CALL_INIT;
    call.function = 0;
    call.source = range;
    call.chunksize = (size_t)chunksize;
    call.results = call_kind == CALL_MAP ? durations : NULL;
    call.result_size = sizeof durations[0];
    hpool_report report;
    memset(&report, 0, sizeof report);

    /* Only the call is timed: the pool's and MPI's start-up are left out, as
     * the Python peers leave out their pools' start. */
    double start = balance_now_seconds();
    int rc = call_kind == CALL_MAP ? hpool_map(pool, &call, &report)
                                   : stream_results(pool, &call, durations, settings->items, &report);
    double seconds = balance_now_seconds() - start;

    int status = 0;
    if (rc != 0) {
        char text[160];
        hpool_report_format(&report, text, sizeof text);
        fprintf(stderr, "balance: %s: %s (%s): %s\n", call_kind == CALL_MAP ? "hpool_map" : "hpool_imap_unordered",
                hpool_err_name(rc), hpool_strerror(rc), text);
        status = 1;
    }
    balance_work work = {0, 0};
    for (uint64_t i = 0; i < settings->items && status == 0; i++) {
        /* Every item takes some time, so a zero is an item never run. */
        if (durations[i] <= 0) {
            fprintf(stderr, "balance: item %" PRIu64 " has no measured duration\n", i);
            status = 1;
        }
        balance_work_add(&work, durations[i]);
    }
    if (status == 0)
        balance_print_line("hpool", settings, &job.costs, hpool_pool_size(pool), hpool_pool_threads(pool), seconds,
                           &work);
    hpool_source_free(range);
    free(durations);
    return status;
}

int main(int argc, char **argv)
{
    int rc = hpool_mpi_init(&argc, &argv);
    if (rc != 0) {
        fprintf(stderr, "balance: hpool_mpi_init: %s\n", hpool_strerror(rc));
        return 1;
    }
    balance_settings settings;
    balance_settings_init(&settings);
    int call_kind = CALL_MAP;
    uint64_t chunksize = 0;
    for (int i = 1; i < argc; i++) {
        int parsed = balance_parse_option(argc, argv, &i, &settings);
        if (parsed == 0 && strcmp(argv[i], "--call") == 0 && i + 1 < argc) {
            parsed = 1;
            i++;
            if (strcmp(argv[i], "map") == 0)
                call_kind = CALL_MAP;
            else if (strcmp(argv[i], "imap_unordered") == 0)
                call_kind = CALL_IMAP_UNORDERED;
            else
                parsed = -1;
        } else if (parsed == 0 && strcmp(argv[i], "--chunksize") == 0 && i + 1 < argc) {
            i++;
            parsed = balance_parse_count(argv[i], &chunksize) == 0 ? 1 : -1;
        }
        if (parsed != 1) {
            usage(argv[0]);
            hpool_mpi_finalize();
            return 2;
        }
    }
    if (settings.list_costs) {
        balance_list_costs(&settings);
        hpool_mpi_finalize();
        return 0;
    }

    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = functions;
    options.function_count = sizeof functions / sizeof functions[0];
    hpool_pool *pool;
    rc = hpool_pool_create(&pool, &options);
    if (rc != 0) {
        fprintf(stderr, "balance: hpool_pool_create: %s\n", hpool_strerror(rc));
        hpool_mpi_finalize();
        return 1;
    }
    /* Every rank fills its own copy before it serves any item in
     * hpool_pool_join() (the root before its call). */
    job.costs = balance_costs_of(&settings, hpool_pool_size(pool) * hpool_pool_threads(pool));
    job.kind = settings.kind;
    int status = hpool_pool_is_root(pool) ? run_root(pool, &settings, call_kind, chunksize) : 0;
    rc = hpool_pool_join(pool);
    if (rc != 0) {
        fprintf(stderr, "balance: hpool_pool_join: %s\n", hpool_strerror(rc));
        status = 1;
    }
    hpool_pool_free(pool);
    hpool_mpi_finalize();
    return status;
}
