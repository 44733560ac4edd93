/* omp_cube.c: the README's cube example (examples/custom/cube.c) as a bare OpenMP loop: the cubes of 0..N-1, printed in order. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The same program as cube.c without the pool: the same argument, the same
 * results array, the same printf per line, so that the two whole processes
 * differ only by what hpool does around the loop. Threads come from
 * OMP_NUM_THREADS, as cube's do when HPOOL_THREADS is unset. */
int main(int argc, char **argv)
{
    int64_t n = argc > 1 ? atoll(argv[1]) : 10;
    int64_t *cubes = calloc(n > 0 ? (size_t)n : 1, sizeof *cubes);
    if (cubes == NULL) {
        fprintf(stderr, "omp_cube: out of memory\n");
        return 1;
    }
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        cubes[i] = i * i * i;
    for (int64_t i = 0; i < n; i++)
        printf("%lld\n", (long long)cubes[i]);
    free(cubes);
    return 0;
}
