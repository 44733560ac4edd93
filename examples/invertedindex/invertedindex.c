/* invertedindex.c: lists, for every word of some files, the files it is in, with hpool's keyed map-reduce; a merge or a reduce function builds the lists. */
#define _GNU_SOURCE
#include <hpool.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Words as wordcount's: maximal runs of bytes other than ASCII whitespace. */
static const unsigned char space_table[256] = {[' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\v'] = 1, ['\f'] = 1, ['\r'] = 1};

static char **paths; /* argv's files, on every rank: an item is a file's index */

/* A worker thread's buffer for the file it reads. */
typedef struct reader {
    unsigned char *buffer;
    size_t capacity;
} reader;

static int make_reader(void **state, void *user)
{
    *state = calloc(1, sizeof(reader));
    return *state ? 0 : ENOMEM;
}

static void free_reader(void *state, void *user)
{
    reader *r = state;
    free(r->buffer);
    free(r);
}

static int read_file(const char *path, reader *r, size_t *size)
{
    int fd = open(path, O_RDONLY);
    struct stat info;
    if (fd < 0 || fstat(fd, &info) != 0) {
        int code = errno;
        if (fd >= 0)
            close(fd);
        return code;
    }
    if ((size_t)info.st_size > r->capacity) {
        free(r->buffer);
        r->capacity = (size_t)info.st_size;
        if ((r->buffer = malloc(r->capacity)) == NULL) {
            r->capacity = 0;
            close(fd);
            return ENOMEM;
        }
    }
    *size = 0;
    while (*size < (size_t)info.st_size) {
        ssize_t n = read(fd, r->buffer + *size, (size_t)info.st_size - *size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        *size += (size_t)n;
    }
    close(fd);
    return 0;
}

/* One item, one file: (word, the file's index as 8 bytes) for every word
 * in it, repeats included: combining them is the merge's job. */
static int index_file(hpool_task *task, void *user)
{
    uint64_t file = (uint64_t)*(const int64_t *)task->input;
    reader *r = task->state;
    size_t size = 0;
    int code = read_file(paths[file], r, &size);
    const unsigned char *text = r->buffer;
    for (size_t i = 0; code == 0 && i < size;) {
        while (i < size && space_table[text[i]])
            i++;
        size_t word = i;
        while (i < size && !space_table[text[i]])
            i++;
        if (i > word && hpool_emit(task->emitter, text + word, i - word, &file, sizeof file) != 0)
            code = ENOMEM;
    }
    return code;
}

static uint64_t id_at(const unsigned char *ids, size_t i)
{
    uint64_t id;
    memcpy(&id, ids + 8 * i, 8);
    return id;
}

/* The sorted union of two sorted lists of file indexes. A file's words
 * come one at a time, so the usual case is a list and the id it ends
 * with: a copy. */
static int merge_lists(const void *a, size_t a_size, const void *b, size_t b_size, void *out, size_t *out_size,
                       void *user)
{
    const unsigned char *x = a, *y = b;
    unsigned char *to = out;
    size_t a_count = a_size / 8, b_count = b_size / 8, i = 0, j = 0, n = 0;
    if (b_count == 1 && a_count > 0 && id_at(x, a_count - 1) == id_at(y, 0)) {
        memcpy(out, a, a_size);
        *out_size = a_size;
        return 0;
    }
    while (i < a_count && j < b_count) {
        uint64_t u = id_at(x, i), v = id_at(y, j), next = u < v ? u : v;
        i += u == next;
        j += v == next;
        memcpy(to + 8 * n++, &next, 8);
    }
    memcpy(to + 8 * n, x + 8 * i, 8 * (a_count - i));
    n += a_count - i;
    memcpy(to + 8 * n, y + 8 * j, 8 * (b_count - j));
    n += b_count - j;
    *out_size = 8 * n;
    return 0;
}

static int compare_ids(const void *a, const void *b)
{
    uint64_t x, y;
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    return (x > y) - (x < y);
}

/* Without a combiner: every occurrence of the word reaches its owner, and
 * this sorts them and keeps each file once. */
static int reduce_lists(const void *key, size_t key_size, hpool_values *values, hpool_emitter *out, void *user)
{
    size_t count = 0, capacity = 0;
    unsigned char *ids = NULL;
    const void *data;
    size_t size;
    while (hpool_values_next(values, &data, &size) == 0) {
        if (count + size / 8 > capacity) {
            capacity = 2 * (count + size / 8);
            unsigned char *grown = realloc(ids, 8 * capacity);
            if (grown == NULL) {
                free(ids);
                return ENOMEM;
            }
            ids = grown;
        }
        memcpy(ids + 8 * count, data, size);
        count += size / 8;
    }
    qsort(ids, count, 8, compare_ids);
    size_t distinct = 0;
    for (size_t i = 0; i < count; i++)
        if (distinct == 0 || id_at(ids, distinct - 1) != id_at(ids, i))
            memcpy(ids + 8 * distinct++, ids + 8 * i, 8);
    int rc = hpool_emit(out, key, key_size, ids, 8 * distinct);
    free(ids);
    return rc;
}

static const hpool_function functions[] = {
    {.name = "index_file", .map = index_file, .init = make_reader, .fini = free_reader},
};
static const hpool_keyed_reducer keyed[] = {
    {.name = "merged_lists", .merge = merge_lists},
    {.name = "reduced_lists", .reduce = reduce_lists},
};

static void report_failure(uint64_t index, int code, void *user)
{
    fprintf(stderr, "invertedindex: %s: %s\n", paths[index], strerror(code > 0 ? code : EIO));
}

/* WORD<TAB>ids, comma-separated, by word bytes. */
static int print_index(const hpool_pairs *pairs)
{
    for (uint64_t i = 0; i < hpool_pairs_count(pairs); i++) {
        hpool_pair pair;
        hpool_pairs_get(pairs, i, &pair);
        fwrite(pair.key, 1, pair.key_size, stdout);
        for (size_t k = 0; k < pair.value_size / 8; k++)
            printf("%c%llu", k ? ',' : '\t', (unsigned long long)id_at(pair.value, k));
        putchar('\n');
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    int reducer = -1, first = 2;
    size_t budget_mb = 0;
    if (argc >= 2 && strcmp(argv[1], "--merge") == 0)
        reducer = 0;
    else if (argc >= 2 && strcmp(argv[1], "--reduce") == 0)
        reducer = 1;
    if (reducer >= 0 && argc >= 4 && strcmp(argv[2], "--budget") == 0) {
        budget_mb = (size_t)strtoull(argv[3], NULL, 10);
        first = 4;
    }
    if (reducer < 0 || argc <= first) {
        fprintf(stderr, "usage: invertedindex --merge|--reduce [--budget MB] FILE...\n"
                        "Prints WORD<TAB>FILES for every word of the files (FILES: their indexes among\n"
                        "the arguments, from 0, comma-separated), by word bytes. --merge merges each\n"
                        "word's lists wherever two meet (hpool_merge_fn); --reduce ships every\n"
                        "occurrence and builds the list in a reduce function. --budget: the keyed\n"
                        "memory budget in MiB (options.memory_budget). On stderr: the call's seconds\n"
                        "and report.spilled_bytes. Runs as one process or under mpirun.\n");
        return 2;
    }
    static char output_buffer[1 << 20];
    setvbuf(stdout, output_buffer, _IOFBF, sizeof output_buffer);
    paths = argv + first;
    int file_count = argc - first;
    if (hpool_mpi_init(&argc, &argv) != 0) {
        fprintf(stderr, "invertedindex: could not initialise MPI\n");
        return 1;
    }
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = functions;
    options.function_count = 1;
    options.keyed_reducers = keyed;
    options.keyed_reducer_count = 2;
    options.memory_budget = budget_mb << 20;
    hpool_pool *pool;
    int rc = hpool_pool_create(&pool, &options);
    if (rc != 0) {
        fprintf(stderr, "invertedindex: %s\n", hpool_strerror(rc));
        hpool_mpi_finalize();
        return 1;
    }
    int status = 0;
    if (hpool_pool_is_root(pool)) {
        hpool_source *source;
        hpool_pairs *pairs = NULL;
        hpool_report report = {0};
        struct timespec start, end;
        clock_gettime(CLOCK_MONOTONIC, &start);
        rc = hpool_source_range(&source, 0, file_count);
        if (rc == 0) {
            hpool_call call = HPOOL_CALL_INIT;
            call.source = source;
            call.chunksize = 1;
            call.reducer = reducer;
            call.pairs = &pairs;
            call.error_callback = report_failure;
            rc = hpool_map_reduce_keyed(pool, &call, &report);
            hpool_source_free(source);
        }
        clock_gettime(CLOCK_MONOTONIC, &end);
        fprintf(stderr, "call_seconds %.6f spilled_bytes %llu words %llu\n",
                (double)(end.tv_sec - start.tv_sec) + 1e-9 * (double)(end.tv_nsec - start.tv_nsec),
                (unsigned long long)report.spilled_bytes, (unsigned long long)hpool_pairs_count(pairs));
        if (pairs != NULL && print_index(pairs) != 0)
            status = 1;
        if (rc != 0) {
            fprintf(stderr, "invertedindex: %s\n", hpool_strerror(rc));
            status = 1;
        }
        hpool_pairs_free(pairs);
    }
    hpool_pool_free(pool);
    hpool_mpi_finalize();
    return status;
}
