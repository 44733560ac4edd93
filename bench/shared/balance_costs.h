/* balance_costs.h: the item costs of the load-balance benchmark, the same bits in C as in balance_pool.py. */
#ifndef BALANCE_COSTS_H
#define BALANCE_COSTS_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/*
 * Every tool derives each item's cost from its index alone, so that hpool,
 * the OpenMP loop and the Python pools run exactly the same items whichever
 * worker picks which, and no cost table has to travel. balance_pool.py
 * repeats this arithmetic with 64-bit masks; `--list-costs` in both prints
 * the bits, and balance.sh compares them before it measures anything.
 */

/* Fixed, so that every run of every tool sees the same "random" costs. */
#define BALANCE_SEED UINT64_C(0x68706f6f6c) /* "hpool" */

typedef enum balance_distribution {
    BALANCE_U1US,        /* every item 1 µs (spin only: nothing sleeps 1 µs) */
    BALANCE_U1MS,        /* every item 1 ms */
    BALANCE_U100MS,      /* every item 100 ms */
    BALANCE_EXP,         /* exponential of mean M */
    BALANCE_TAIL,        /* 1 item in 100 costs 100 M, the rest M */
    BALANCE_GIANT_FIRST, /* item 0 costs n M / W, the rest M */
    BALANCE_GIANT_LAST,  /* item n-1 costs n M / W, the rest M */
    BALANCE_RISING,      /* item i costs 2 M (i + 0.5) / n */
    BALANCE_DISTRIBUTION_COUNT
} balance_distribution;

static const char *const balance_distribution_names[BALANCE_DISTRIBUTION_COUNT] = {
    "u1us", "u1ms", "u100ms", "exp", "tail", "giant_first", "giant_last", "rising",
};

/* What a cost depends on besides the index. */
typedef struct balance_costs {
    balance_distribution distribution;
    double mean_seconds; /* M; the uniform distributions ignore it */
    uint64_t items;      /* n */
    int workers;         /* W, for the giants: one giant is a worker's fair share */
} balance_costs;

/*! balance_distribution_parse() : @return : 0 and *distribution, or -1 for an unknown name. */
static inline int balance_distribution_parse(const char *name, balance_distribution *distribution)
{
    for (int i = 0; i < BALANCE_DISTRIBUTION_COUNT; i++) {
        if (strcmp(name, balance_distribution_names[i]) == 0) {
            *distribution = (balance_distribution)i;
            return 0;
        }
    }
    return -1;
}

/* splitmix64 (Steele, Lea and Flood), one step from state x: a full-period,
 * well-mixed 64-bit value per index without any state between items. */
static inline uint64_t balance_splitmix64(uint64_t x)
{
    uint64_t z = x + UINT64_C(0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Uniform in [0, 1): the top 53 bits, each value exact in a double, so the
 * Python side gets the same double from the same integer. */
static inline double balance_uniform(uint64_t index)
{
    return (double)(balance_splitmix64(BALANCE_SEED + index) >> 11) * 0x1p-53;
}

/*! balance_cost_seconds() : the cost of item index. Each formula is written
 *  in the order balance_pool.py evaluates it, so the doubles are the same. */
static inline double balance_cost_seconds(const balance_costs *costs, uint64_t index)
{
    double mean = costs->mean_seconds;
    switch (costs->distribution) {
    case BALANCE_U1US:
        return 1e-6;
    case BALANCE_U1MS:
        return 1e-3;
    case BALANCE_U100MS:
        return 0.1;
    case BALANCE_EXP:
        /* 1 - u is exact for u = k 2^-53, and never 0. */
        return -mean * log(1.0 - balance_uniform(index));
    case BALANCE_TAIL:
        return index % 100 == 37 ? 100.0 * mean : mean;
    case BALANCE_GIANT_FIRST:
        return index == 0 ? (double)costs->items * mean / (double)costs->workers : mean;
    case BALANCE_GIANT_LAST:
        return index + 1 == costs->items ? (double)costs->items * mean / (double)costs->workers : mean;
    case BALANCE_RISING:
        return 2.0 * mean * ((double)index + 0.5) / (double)costs->items;
    case BALANCE_DISTRIBUTION_COUNT:
        break;
    }
    return 0.0;
}

#endif /* BALANCE_COSTS_H */
