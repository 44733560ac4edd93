/* emit_path.c: the keyed emit path alone, on one thread: every whitespace-separated word of a file into a pair table, with a combiner called by pointer or the built-in u64 sum.
 *
 *   emit_path FILE [call|builtin|none] [REPEAT]
 *
 * prints the thread's CPU time, the words and the distinct keys. "none"
 * only splits the words, to subtract. It links hpool_testing (the
 * framework's internals), so it is built only with the tests. */
#define _POSIX_C_SOURCE 200809L
#include "keyed/keyed_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void add_u64(void *accumulator, const void *value, void *user)
{
    (void)user;
    uint64_t sum, more;
    memcpy(&sum, accumulator, sizeof sum);
    memcpy(&more, value, sizeof more);
    sum += more;
    memcpy(accumulator, &sum, sizeof sum);
}

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: emit_path FILE [call|builtin|none] [REPEAT]\n");
        return 2;
    }
    const char *mode = argc > 2 ? argv[2] : "builtin";
    int repeat = argc > 3 ? atoi(argv[3]) : 3;
    FILE *file = fopen(argv[1], "rb");
    if (file == NULL || fseek(file, 0, SEEK_END) != 0) {
        perror(argv[1]);
        return 1;
    }
    long size = ftell(file);
    rewind(file);
    unsigned char *text = malloc(size > 0 ? (size_t)size : 1);
    if (text == NULL || fread(text, 1, (size_t)size, file) != (size_t)size) {
        perror(argv[1]);
        return 1;
    }
    fclose(file);
    hpool_keyed_reducer spec = {.name = "count", .value_size = 8,
                                .combine = strcmp(mode, "call") == 0 ? add_u64 : hpool_combine_sum_u64};
    bool emit = strcmp(mode, "none") != 0;
    hpool__pair_table table;
    hpool__pair_table_init(&table, &spec);
    hpool_emitter *emitter = calloc(1, sizeof *emitter);
    emitter->table = &table;
    struct timespec start, end;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
    uint64_t one = 1, words = 0;
    volatile uint64_t touched = 0; /* so that "none" still reads the words */
    for (int r = 0; r < repeat; r++)
        for (long i = 0; i < size;) {
            while (i < size && is_space(text[i]))
                i++;
            long word = i;
            while (i < size && !is_space(text[i]))
                i++;
            if (i == word)
                continue;
            words++;
            if (emit)
                hpool_emit(emitter, text + word, (size_t)(i - word), &one, sizeof one);
            else
                touched = touched + text[word];
        }
    hpool__emitter_flush(emitter);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &end);
    printf("%s: %.3f s cpu, %llu words, %zu keys\n", mode,
           (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9,
           (unsigned long long)words, table.count);
    int rc = emitter->error;
    hpool__pair_table_release(&table);
    free(emitter);
    free(text);
    return rc != 0;
}
