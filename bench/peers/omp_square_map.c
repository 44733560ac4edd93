/* omp_square_map.c: square_map.c's work as a hand-written OpenMP loop: the floor any pool can reach as a whole process. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    long long items = 1000000;
    if (argc == 3 && strcmp(argv[1], "--items") == 0) {
        char *end;
        errno = 0;
        items = strtoll(argv[2], &end, 10);
        if (errno != 0 || *end != '\0' || items < 0) {
            fprintf(stderr, "%s: bad item count '%s'\n", argv[0], argv[2]);
            return 2;
        }
    } else if (argc != 1) {
        fprintf(stderr, "usage: %s [--items N (1000000)]\n", argv[0]);
        return 2;
    }
    /* A results array like square_map's, rather than a reduction, so that
     * this floor pays for the same memory, page faults included. */
    int64_t *results = malloc((size_t)(items ? items : 1) * sizeof *results);
    if (results == NULL) {
        fprintf(stderr, "%s: out of memory\n", argv[0]);
        return 1;
    }
#pragma omp parallel for num_threads(2) schedule(static)
    for (long long x = 0; x < items; x++)
        results[x] = (int64_t)x * x;
    uint64_t sum = 0;
    for (long long i = 0; i < items; i++)
        sum += (uint64_t)results[i];
    printf("sum %" PRIu64 "\n", sum);
    free(results);
    return 0;
}
