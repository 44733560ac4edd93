/* balance_items.h: what balance.c and balance_omp.c share: running one item, its options, and the line each prints. */
#ifndef BALANCE_ITEMS_H
#define BALANCE_ITEMS_H

#include "balance_costs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How an item spends its cost. */
typedef enum balance_kind {
    BALANCE_SLEEP, /* waits: any number of workers fit on any number of cores */
    BALANCE_SPIN,  /* computes: only as many workers as cores can run at once */
} balance_kind;

static const char *const balance_kind_names[] = {"sleep", "spin"};

static inline int64_t balance_timespec_ns(const struct timespec *time)
{
    return (int64_t)time->tv_sec * 1000000000 + time->tv_nsec;
}

/*! balance_sleep_item() : sleeps cost_ns and returns the wall time it took.
 *  The deadline is absolute, so a wake-up on a signal resumes towards the
 *  same instant instead of sleeping the whole cost again; what is returned
 *  is measured, so timer slack and late wake-ups count as work, not as the
 *  scheduler's idleness. */
static inline int64_t balance_sleep_item(int64_t cost_ns)
{
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int64_t deadline_ns = balance_timespec_ns(&start) + cost_ns;
    struct timespec deadline = {.tv_sec = deadline_ns / 1000000000, .tv_nsec = deadline_ns % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL) == EINTR)
        continue;
    clock_gettime(CLOCK_MONOTONIC, &end);
    return balance_timespec_ns(&end) - balance_timespec_ns(&start);
}

/*! balance_spin_item() : busy-loops until this thread has run for cost_ns
 *  of CPU time and returns the CPU time it used. Thread CPU time, not wall
 *  time: a worker preempted by another (or by another job on the machine)
 *  does not finish its item early, and the time it lost is not counted as
 *  work it did. */
static inline int64_t balance_spin_item(int64_t cost_ns)
{
    struct timespec start, now;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
    int64_t start_ns = balance_timespec_ns(&start), used_ns;
    do {
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
        used_ns = balance_timespec_ns(&now) - start_ns;
    } while (used_ns < cost_ns);
    return used_ns;
}

/*! balance_run_item() : runs item index; @return : its measured duration in ns. */
static inline int64_t balance_run_item(const balance_costs *costs, balance_kind kind, uint64_t index)
{
    int64_t cost_ns = (int64_t)(balance_cost_seconds(costs, index) * 1e9 + 0.5);
    return kind == BALANCE_SLEEP ? balance_sleep_item(cost_ns) : balance_spin_item(cost_ns);
}

static inline double balance_now_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

/* The options both C programs take. */
typedef struct balance_settings {
    balance_distribution distribution;
    balance_kind kind;
    uint64_t items;
    double mean_us;
    long cores;        /* for the spin bound; default: the machine's online CPUs */
    int workers;       /* only for --list-costs: the W the giants divide by */
    int list_costs;    /* print the costs' bits and exit, for balance.sh's check */
} balance_settings;

static inline void balance_settings_init(balance_settings *settings)
{
    settings->distribution = BALANCE_U1MS;
    settings->kind = BALANCE_SLEEP;
    settings->items = 1000;
    settings->mean_us = 1000.0;
    /* The online CPUs, not this process's affinity mask: mpirun binds each
     * rank to one core, which says nothing about how many cores the spinning
     * workers of all the ranks share. */
    settings->cores = sysconf(_SC_NPROCESSORS_ONLN);
    settings->workers = 1;
    settings->list_costs = 0;
}

#define BALANCE_COMMON_USAGE                                                                       \
    "  --dist D       u1us u1ms u100ms exp tail giant_first giant_last rising (u1ms)\n"               \
    "  --kind K       sleep (clock_nanosleep) or spin (thread CPU time) (sleep)\n"                    \
    "  --items N      items in the map (1000)\n"                                                      \
    "  --mean-us M    mean cost M of exp, tail, giant_*, rising, in µs (1000)\n"                      \
    "  --cores C      cores the spin bound allows (the machine's online CPUs)\n"                      \
    "  --list-costs   print each item's cost as the bits of a double and exit\n"                      \
    "  --workers W    with --list-costs: the W that giant_first and giant_last divide by (1)\n"

static inline int balance_parse_count(const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-')
        return -1;
    *out = value;
    return 0;
}

/*! balance_parse_option() : reads the option at argv[*i] (and its value,
 *  advancing *i) if it is one of the common ones.
 *  @return : 1 if it was, 0 if it is not a common option, -1 if its value is bad. */
static inline int balance_parse_option(int argc, char **argv, int *i, balance_settings *settings)
{
    const char *name = argv[*i];
    if (strcmp(name, "--list-costs") == 0) {
        settings->list_costs = 1;
        return 1;
    }
    const char *names[] = {"--dist", "--kind", "--items", "--mean-us", "--cores", "--workers"};
    int which = -1;
    for (int k = 0; k < (int)(sizeof names / sizeof names[0]); k++)
        if (strcmp(name, names[k]) == 0)
            which = k;
    if (which < 0)
        return 0;
    if (*i + 1 == argc)
        return -1;
    const char *value = argv[++*i];
    uint64_t count;
    char *end;
    switch (which) {
    case 0:
        return balance_distribution_parse(value, &settings->distribution) == 0 ? 1 : -1;
    case 1:
        if (strcmp(value, "sleep") == 0)
            settings->kind = BALANCE_SLEEP;
        else if (strcmp(value, "spin") == 0)
            settings->kind = BALANCE_SPIN;
        else
            return -1;
        return 1;
    case 2: /* hpool's range source takes int64_t bounds */
        if (balance_parse_count(value, &settings->items) != 0 || settings->items == 0 ||
            settings->items > INT64_MAX)
            return -1;
        return 1;
    case 3:
        errno = 0;
        settings->mean_us = strtod(value, &end);
        return errno == 0 && end != value && *end == '\0' && isfinite(settings->mean_us) && settings->mean_us > 0
                   ? 1
                   : -1;
    case 4:
        if (balance_parse_count(value, &count) != 0 || count == 0 || count > 1000000)
            return -1;
        settings->cores = (long)count;
        return 1;
    default:
        if (balance_parse_count(value, &count) != 0 || count == 0 || count > 1000000)
            return -1;
        settings->workers = (int)count;
        return 1;
    }
}

static inline balance_costs balance_costs_of(const balance_settings *settings, int workers)
{
    balance_costs costs = {settings->distribution, settings->mean_us * 1e-6, settings->items, workers};
    return costs;
}

/*! balance_list_costs() : one line per item, "INDEX BITS" with BITS the
 *  cost's double as a 64-bit integer in hex; balance_pool.py prints the same. */
static inline void balance_list_costs(const balance_settings *settings)
{
    balance_costs costs = balance_costs_of(settings, settings->workers);
    for (uint64_t i = 0; i < settings->items; i++) {
        double cost = balance_cost_seconds(&costs, i);
        uint64_t bits;
        memcpy(&bits, &cost, sizeof bits);
        printf("%" PRIu64 " %016" PRIx64 "\n", i, bits);
    }
}

/* The sum and the maximum of the items' measured durations. */
typedef struct balance_work {
    int64_t sum_ns;
    int64_t longest_ns;
} balance_work;

static inline void balance_work_add(balance_work *work, int64_t duration_ns)
{
    work->sum_ns += duration_ns;
    if (duration_ns > work->longest_ns)
        work->longest_ns = duration_ns;
}

/*! balance_print_line() : the line balance.sh reads. The bound is what a
 *  perfect scheduler with no overhead would take on the work as measured:
 *  no schedule beats the longest item, nor the work spread evenly over the
 *  workers that can run at once; spinning workers beyond the cores only
 *  take turns. nominal_sum, the costs as asked for, comes last: measured
 *  work above it is wake-up latency or clock reads, and a tool whose own
 *  processes crowd the cores inflates its sleeping items (and so its bound)
 *  that way. */
static inline void balance_print_line(const char *tool, const balance_settings *settings, const balance_costs *costs,
                                      int ranks, int threads, double seconds, const balance_work *work)
{
    long workers = (long)ranks * threads;
    long parallel = settings->kind == BALANCE_SPIN && settings->cores < workers ? settings->cores : workers;
    double work_sum = (double)work->sum_ns * 1e-9, longest = (double)work->longest_ns * 1e-9;
    double bound = work_sum / (double)parallel > longest ? work_sum / (double)parallel : longest;
    double nominal_sum = 0.0;
    for (uint64_t i = 0; i < settings->items; i++)
        nominal_sum += balance_cost_seconds(costs, i);
    printf("tool %s dist %s kind %s ranks %d threads %d workers %ld items %" PRIu64
           " seconds %.6f work_sum %.6f longest %.6f bound %.6f efficiency %.4f nominal_sum %.6f\n",
           tool, balance_distribution_names[settings->distribution], balance_kind_names[settings->kind], ranks,
           threads, workers, settings->items, seconds, work_sum, longest, bound, bound / seconds, nominal_sum);
}

#endif /* BALANCE_ITEMS_H */
