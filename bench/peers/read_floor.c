/* read_floor.c: the floor under any page scanner: open, read into a reused buffer and close every page of metatags-style INPUTs, on OpenMP threads. */
#define _GNU_SOURCE /* getline, strdup, DT_* under -std=c11 */
#include "page_list.h"

#include <inttypes.h>
#include <omp.h>

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        fprintf(argc < 2 ? stderr : stdout,
                "usage: read_floor INPUT...\n"
                "Reads every page of the INPUTs (FILE, DIRECTORY, @LIST, as metatags takes them)\n"
                "and prints 'pages N bytes B'. Threads from OMP_NUM_THREADS.\n");
        return argc < 2 ? 2 : 0;
    }
    page_list list = {0};
    if (page_list_expand(&list, argv + 1, argc - 1) != 0) {
        fprintf(stderr, "read_floor: out of memory\n");
        return 1;
    }
    uint64_t bytes = 0, pages = 0;
    int failures = list.failures;
#pragma omp parallel reduction(+ : bytes, pages, failures)
    {
        page_buffer buffer = {NULL, 0};
        /* Chunks of 16: pages are small (100 kB), and a grab per page
         * would be one more atomic per open. */
#pragma omp for schedule(dynamic, 16)
        for (size_t i = 0; i < list.count; i++) {
            int64_t size = page_read(list.names[i], &buffer);
            if (size < 0) {
                fprintf(stderr, "read_floor: %s: %s\n", list.names[i], strerror(errno));
                failures++;
                continue;
            }
            bytes += (uint64_t)size;
            pages++;
        }
        free(buffer.data);
    }
    printf("pages %" PRIu64 " bytes %" PRIu64 "\n", pages, bytes);
    return failures > 0 || fflush(stdout) != 0 ? 1 : 0;
}
