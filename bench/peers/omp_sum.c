/* omp_sum.c: the hand-written OpenMP peer of `square --sum N`: sum of x*x for x = 1..N, mod 2^64. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */
#include <errno.h>
#include <inttypes.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s N   (threads from OMP_NUM_THREADS)\n", argv[0]);
        return 2;
    }
    char *end;
    errno = 0;
    uint64_t n = strtoull(argv[1], &end, 10);
    if (errno != 0 || *end != '\0' || n == 0) {
        fprintf(stderr, "%s: N must be a positive integer, not '%s'\n", argv[0], argv[1]);
        return 2;
    }

    double start = now_seconds();
    uint64_t sum = 0;
    /* Unsigned overflow wraps, which is exactly the mod 2^64 that the square app
     * reports, so the two sums can be compared digit for digit. */
#pragma omp parallel for reduction(+ : sum) schedule(static)
    for (uint64_t x = 1; x <= n; x++)
        sum += x * x;
    double seconds = now_seconds() - start;

    printf("sum %" PRIu64 "\n", sum);
    printf("threads %d items %" PRIu64 " seconds %.6f items/s %.4g\n", omp_get_max_threads(), n,
           seconds, (double)n / seconds);
    return 0;
}
