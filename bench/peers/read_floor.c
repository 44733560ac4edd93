/* read_floor.c: the floor under any page scanner: open, read into a reused buffer and close every page of metatags-style INPUTs, on OpenMP threads. */
#define _GNU_SOURCE /* getline, strdup, DT_* under -std=c11 */
#include "page_list.h"

#include <immintrin.h>
#include <inttypes.h>
#include <omp.h>

/* --touch: the least a scanner can do with a page once it is read, one OR
 * of every byte, 32 at a time; what a scan of every byte costs at least
 * on top of the floor. */
__attribute__((target("avx2"))) static uint64_t touch_avx2(const unsigned char *data, size_t size)
{
    __m256i all = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= size; i += 32)
        all = _mm256_or_si256(all, _mm256_loadu_si256((const __m256i *)(data + i)));
    uint64_t bits = (uint32_t)_mm256_movemask_epi8(all);
    for (; i < size; i++)
        bits |= data[i];
    return bits;
}

static uint64_t touch_plain(const unsigned char *data, size_t size)
{
    uint64_t bits = 0;
    for (size_t i = 0; i < size; i++)
        bits |= data[i];
    return bits;
}

static volatile uint64_t touched; /* the ORs end here, so that the compiler keeps them */

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        fprintf(argc < 2 ? stderr : stdout,
                "usage: read_floor [--touch] INPUT...\n"
                "Reads every page of the INPUTs (FILE, DIRECTORY, @LIST, as metatags takes them)\n"
                "and prints 'pages N bytes B'. Threads from OMP_NUM_THREADS. --touch also ORs\n"
                "every byte of each page once it is read (AVX2 if the CPU has it).\n");
        return argc < 2 ? 2 : 0;
    }
    int first = 1;
    uint64_t (*touch)(const unsigned char *, size_t) = NULL;
    if (strcmp(argv[1], "--touch") == 0) {
        touch = __builtin_cpu_supports("avx2") ? touch_avx2 : touch_plain;
        first = 2;
    }
    page_list list = {0};
    if (page_list_expand(&list, argv + first, argc - first) != 0) {
        fprintf(stderr, "read_floor: out of memory\n");
        return 1;
    }
    uint64_t bytes = 0, pages = 0, seen = 0;
    int failures = list.failures;
#pragma omp parallel reduction(+ : bytes, pages, failures) reduction(| : seen)
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
            if (touch != NULL)
                seen |= touch((const unsigned char *)buffer.data, (size_t)size);
            bytes += (uint64_t)size;
            pages++;
        }
        free(buffer.data);
    }
    touched = seen;
    printf("pages %" PRIu64 " bytes %" PRIu64 "\n", pages, bytes);
    return failures > 0 || fflush(stdout) != 0 ? 1 : 0;
}
