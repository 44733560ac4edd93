/* balance_omp.c: balance.c's items as a hand-written OpenMP loop with schedule(dynamic, 1), the peer every scheduler is held to. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, clock_nanosleep under -std=c11 */
#include "balance_items.h"

#include <omp.h>

static void usage(const char *program)
{
    fprintf(stderr,
            "usage: %s [options]\n"
            "  runs items 0..N-1, each costing what --dist gives its index, with\n"
            "  #pragma omp parallel for schedule(dynamic, 1) on OMP_NUM_THREADS threads,\n"
            "  and prints the loop's efficiency as balance does.\n" BALANCE_COMMON_USAGE,
            program);
}

int main(int argc, char **argv)
{
    balance_settings settings;
    balance_settings_init(&settings);
    for (int i = 1; i < argc; i++) {
        if (balance_parse_option(argc, argv, &i, &settings) != 1) {
            usage(argv[0]);
            return 2;
        }
    }
    if (settings.list_costs) {
        balance_list_costs(&settings);
        return 0;
    }

    int threads = omp_get_max_threads();
    balance_costs costs = balance_costs_of(&settings, threads);
    int64_t *durations = calloc(settings.items, sizeof *durations);
    if (durations == NULL) {
        fprintf(stderr, "balance_omp: out of memory\n");
        return 1;
    }
    /* Start the team before the clock, as hpool's threads and the Python
     * pools are started before theirs. */
#pragma omp parallel
    {
        (void)omp_get_thread_num();
    }

    /* One item per grab: the finest dynamic schedule, which wastes nothing
     * at the end of the loop and costs an atomic increment per item. */
    double start = balance_now_seconds();
#pragma omp parallel for schedule(dynamic, 1)
    for (uint64_t i = 0; i < settings.items; i++)
        durations[i] = balance_run_item(&costs, settings.kind, i);
    double seconds = balance_now_seconds() - start;

    balance_work work = {0, 0};
    for (uint64_t i = 0; i < settings.items; i++)
        balance_work_add(&work, durations[i]);
    balance_print_line("omp-dynamic", &settings, &costs, 1, threads, seconds, &work);
    free(durations);
    return 0;
}
