/* wordcount.c: counts the words of files with hpool's keyed map-reduce; prints COUNT<TAB>WORD by count, then word. */
#define _GNU_SOURCE
#include <hpool.h>

#include "app_stop.h" /* apps/common: the signals, the stop line, journal keys */
#include "tokenize.h"   /* bytes.split()'s words, with AVX2 where the CPU has it */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One item: a byte range of one file. Files are named by their index in
 * argv, which every rank has, so no path travels. */
typedef struct file_range {
    uint32_t file;
    uint32_t to_end; /* 1: a file whose size stat does not know (/proc): read it to its end */
    uint64_t offset, length;
} file_range;

#define RANGE_BYTES (4u << 20)
/* An item's code (beyond errno's) for a file shorter than when it was
 * cut into ranges: its words since then are not all there to count. */
#define FILE_SHRANK 100000

static char **paths; /* argv + first operand, on every rank */

/* Each worker thread reads into its own buffer. */
typedef struct reader {
    unsigned char *buffer;
    size_t capacity;
} reader;

static int make_reader(void **state, void *user)
{
    reader *r = calloc(1, sizeof *r);
    *state = r;
    return r ? 0 : ENOMEM;
}

static void free_reader(void *state, void *user)
{
    reader *r = state;
    free(r->buffer);
    free(r);
}

/* Makes room for extra more bytes after have. */
static int reserve(reader *r, size_t have, size_t extra)
{
    if (have + extra <= r->capacity)
        return 0;
    size_t capacity = r->capacity ? r->capacity : 65536;
    while (capacity < have + extra)
        capacity *= 2;
    /* Page-aligned: the kernel copies from the page cache into a buffer
     * that is not 64-byte aligned 3x slower on AMD Zen. */
    unsigned char *grown = aligned_alloc(4096, capacity);
    if (grown == NULL)
        return ENOMEM;
    if (have > 0)
        memcpy(grown, r->buffer, have);
    free(r->buffer);
    r->buffer = grown;
    r->capacity = capacity;
    return 0;
}

/* Reads up to size bytes at offset; sets *got (short only at end of file). */
static int read_at(int fd, unsigned char *into, size_t size, uint64_t offset, size_t *got)
{
    *got = 0;
    while (*got < size) {
        ssize_t n = pread(fd, into + *got, size - *got, (off_t)(offset + *got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        if (n == 0)
            break;
        *got += (size_t)n;
    }
    return 0;
}

/* A word belongs to the range it starts in: read the byte before the range
 * too, to know whether the range starts inside a word, and read past the
 * end until the last word is over. The read starts 64 bytes early, so the
 * file offset keeps the buffer's alignment (see reserve()); *skip says how
 * many bytes come before the one before the range. */
static int read_range(const file_range *range, reader *r, size_t *have, size_t *skip)
{
    int fd = open(paths[range->file], O_RDONLY);
    if (fd < 0)
        return errno;
    uint64_t start = range->offset >= 64 ? range->offset - 64 : 0;
    *skip = range->offset > 0 ? (size_t)(range->offset - 1 - start) : 0;
    size_t want = range->to_end ? 65536 : (size_t)(range->offset + range->length - start), got = 0;
    int code = reserve(r, 0, want);
    if (code == 0)
        code = read_at(fd, r->buffer, want, start, &got);
    *have = code == 0 ? got : 0;
    while (code == 0 && range->to_end && got > 0) { /* until the end, however long */
        if ((code = reserve(r, *have, 65536)) == 0 && (code = read_at(fd, r->buffer + *have, 65536, *have, &got)) == 0)
            *have += got;
    }
    if (code == 0 && !range->to_end && *have < want)
        code = FILE_SHRANK; /* the range ends past the file's end now */
    while (code == 0 && got > 0 && *have > 0 && !tokenize_is_space(r->buffer[*have - 1])) {
        if ((code = reserve(r, *have, 65536)) != 0 || (code = read_at(fd, r->buffer + *have, 65536, start + *have, &got)) != 0)
            break;
        size_t end = *have, limit = *have + got;
        while (end < limit && !tokenize_is_space(r->buffer[end]))
            end++;
        *have = end;
        if (end < limit)
            break; /* the last word ended */
    }
    close(fd);
    return code;
}

static int count_range(hpool_task *task, void *user)
{
    const file_range *range = task->input;
    reader *r = task->state;
    size_t have = 0, skip = 0;
    int code = read_range(range, r, &have, &skip);
    if (code != 0)
        return code;
    const unsigned char *text = r->buffer + skip;
    have -= skip;
    /* text[0] is the byte before the range, when there is one: a word that
     * starts there began in the previous range, which counts it. */
    size_t first_start = range->offset > 0 ? 1 : 0;
    static const uint64_t one = 1;
    size_t bounds[2 * 256];
    for (size_t at = 0; at < have;) {
        size_t count = tokenize_words(text, have, at, bounds, sizeof bounds / sizeof bounds[0] / 2, &at);
        for (size_t k = 0; k < count; k++) {
            size_t start = bounds[2 * k], end = bounds[2 * k + 1];
            if (start >= first_start && hpool_emit(task->emitter, text + start, end - start, &one, sizeof one) != 0)
                return ENOMEM;
        }
    }
    return 0;
}

static const hpool_function functions[] = {
    {.name = "count_range", .map = count_range, .init = make_reader, .fini = free_reader},
};
static const hpool_keyed_reducer keyed[] = {
    {.name = "word_count", .value_size = sizeof(uint64_t), .combine = hpool_combine_sum_u64, .compare = hpool_compare_u64_desc},
};

typedef struct call_context {
    const file_range *ranges;
    uint64_t hpool_failures; /* items that failed with hpool's own codes */
} call_context;

/* A positive code is the map function's errno for its file; a negative
 * one is hpool's (no memory, canceled), not the file's fault: the call's
 * detail names it once, after the call. */
static void report_failure(uint64_t index, int code, void *user)
{
    call_context *context = user;
    if (code < 0) {
        context->hpool_failures++;
        return;
    }
    fprintf(stderr, "wordcount: %s: %s\n", paths[context->ranges[index].file],
            code == FILE_SHRANK ? "shorter than when it was cut into ranges: it changed while read, and its "
                                  "words are not all counted" : strerror(code));
}

/* One line with the call's error and its detail. */
static void report_error(int rc)
{
    char detail[512];
    hpool_error_detail(rc, detail, sizeof detail);
    fprintf(stderr, "wordcount: %s\n", detail);
}

/* COUNT<TAB>WORD lines, built without printf and handed to stdout with
 * its lock taken once: printf and two more locked calls a line were 1.4%
 * of a 262,500-word count's samples (about 17 ms, on one thread, after
 * everything else), and are 0.2% this way. */
static int print_pairs(const hpool_pairs *pairs)
{
    flockfile(stdout);
    for (uint64_t i = 0; i < hpool_pairs_count(pairs); i++) {
        hpool_pair pair;
        hpool_pairs_get(pairs, i, &pair);
        uint64_t count;
        memcpy(&count, pair.value, sizeof count);
        char digits[24], *at = digits + sizeof digits;
        *--at = '\t';
        do
            *--at = (char)('0' + count % 10);
        while ((count /= 10) > 0);
        fwrite_unlocked(at, 1, (size_t)(digits + sizeof digits - at), stdout);
        fwrite_unlocked(pair.key, 1, pair.key_size, stdout);
        putc_unlocked('\n', stdout);
    }
    funlockfile(stdout);
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
}

/* call.journal_key: hpool sees the ranges, not the files' bytes, so each
 * file's path, size and modification time say which files were counted. */
static void make_journal_key(int file_count, app_journal_key *key)
{
    app_journal_key_add(key, "program", "wordcount");
    for (int f = 0; f < file_count; f++)
        app_journal_key_add_file(key, "file", paths[f]);
}

int main(int argc, char **argv)
{
    /* --journal FILE comes first, so that every other word is a FILE. */
    const char *journal = NULL;
    if (argc >= 3 && strcmp(argv[1], "--journal") == 0) {
        journal = argv[2];
        argv += 2;
        argc -= 2;
    }
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        (journal != NULL && journal[0] == '\0') || strcmp(argv[1], "--journal") == 0) {
        fprintf(argc < 2 || strcmp(argv[1], "--journal") == 0 ? stderr : stdout,
                "usage: wordcount [--journal JOURNAL] FILE...\n"
                "Counts the words of the files (runs of bytes other than space, \\t, \\n, \\v,\n"
                "\\f, \\r) and prints COUNT<TAB>WORD lines, most frequent first, ties by the\n"
                "word's bytes. Runs as one process or under mpirun; threads per rank from\n"
                "HPOOL_THREADS, OMP_NUM_THREADS or the CPUs available.\n"
                "Exit status: 0, 1 if a file could not be read (the others are counted) or\n"
                "the count failed (one line says why, e.g. a spill file in TMPDIR that could\n"
                "not be written), 2 usage or a JOURNAL written for other files (path,\n"
                "size or modification time), 75 stopped by SIGTERM, SIGINT, SIGUSR1 or\n"
                "SIGUSR2 (under mpirun, send SIGUSR1): no counts are printed, and one line\n"
                "says how far it got; rerun with the same --journal to resume: the journal\n"
                "keeps each rank's counts of the ranges read when stopped (and every\n"
                "HPOOL_JOURNAL_CHECKPOINT seconds), and a rerun reads only the others.\n");
        return argc < 2 || strcmp(argv[1], "--journal") == 0 ? 2 : 0;
    }
    /* Fully buffered even when stdout is a terminal or mpirun's pipe:
     * one write per line would cost more than counting. */
    static char output_buffer[1 << 20];
    setvbuf(stdout, output_buffer, _IOFBF, sizeof output_buffer);
    paths = argv + 1;
    int file_count = argc - 1;
    app_hold_stop_signals(); /* before MPI_Init, which a forwarded signal may interrupt */
    if (hpool_mpi_init(&argc, &argv) != 0) {
        fprintf(stderr, "wordcount: could not initialise MPI\n");
        return 1;
    }
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = functions;
    options.function_count = 1;
    options.keyed_reducers = keyed;
    options.keyed_reducer_count = 1;
    hpool_pool *pool;
    int rc = hpool_pool_create(&pool, &options);
    if (rc != 0) {
        report_error(rc);
        hpool_mpi_finalize();
        return 1;
    }
    /* On every rank, right after the pool: a signal to any rank stops the
     * whole pool. */
    if ((rc = app_stop_on_signals(pool)) != 0)
        report_error(rc);
    int status = 0;
    if (hpool_pool_is_root(pool)) {
        /* Cut every file into ranges; unreadable files are reported here. */
        size_t count = 0, capacity = 64;
        file_range *ranges = malloc(capacity * sizeof *ranges);
        for (int f = 0; f < file_count && ranges != NULL; f++) {
            struct stat info;
            const char *problem = NULL;
            if (stat(paths[f], &info) != 0)
                problem = strerror(errno);
            else if (!S_ISREG(info.st_mode))
                problem = S_ISDIR(info.st_mode) ? "a directory, not a regular file" : "not a regular file";
            else if (access(paths[f], R_OK) != 0)
                problem = strerror(errno);
            if (problem != NULL) {
                fprintf(stderr, "wordcount: %s: %s\n", paths[f], problem);
                status = 1;
                continue;
            }
            /* stat says 0 bytes for /proc's files, whose words are there all
             * the same: such a file is one range, read to its end. */
            if (info.st_size == 0) {
                if (count == capacity) {
                    file_range *grown = realloc(ranges, (capacity *= 2) * sizeof *ranges);
                    if (grown == NULL)
                        break;
                    ranges = grown;
                }
                ranges[count++] = (file_range){(uint32_t)f, 1, 0, 0};
                continue;
            }
            for (uint64_t offset = 0; offset < (uint64_t)info.st_size; offset += RANGE_BYTES) {
                if (count == capacity) {
                    file_range *grown = realloc(ranges, (capacity *= 2) * sizeof *ranges);
                    if (grown == NULL)
                        break;
                    ranges = grown;
                }
                uint64_t length = (uint64_t)info.st_size - offset < RANGE_BYTES ? (uint64_t)info.st_size - offset
                                                                                 : RANGE_BYTES;
                ranges[count++] = (file_range){(uint32_t)f, 0, offset, length};
            }
        }
        hpool_source *source;
        hpool_pairs *pairs = NULL;
        rc = ranges ? hpool_source_array(&source, ranges, sizeof *ranges, count) : HPOOL_ENOMEM;
        if (rc == 0) {
            hpool_call call = HPOOL_CALL_INIT;
            call.source = source;
            call.chunksize = 1;
            call.reducer = 0;
            call.pairs = &pairs;
            call_context context = {ranges, 0};
            call.error_callback = report_failure;
            call.user = &context;
            app_journal_key key = {0};
            if (journal != NULL)
                make_journal_key(file_count, &key);
            call.journal = journal;
            call.journal_key = key.bytes;
            call.journal_key_size = key.size;
            hpool_report report = {0};
            rc = key.failed ? HPOOL_ENOMEM : hpool_map_reduce_keyed(pool, &call, &report);
            int journal_status;
            if (rc == HPOOL_ESTOPPED) {
                /* The counts so far are partial: none is printed. */
                status = app_report_stopped(pool, "wordcount", report.items - report.canceled, report.items,
                                            "file ranges", journal);
                hpool_pairs_free(pairs);
                pairs = NULL;
            } else if ((journal_status = app_journal_failure("wordcount", journal, rc)) >= 0) {
                status = journal_status;
            } else if (rc != 0 && (rc != HPOOL_EFAILED || context.hpool_failures > 0)) {
                /* Files that failed were named one by one; anything else
                 * (a spill file or the journal that could not be written,
                 * no memory) once. */
                report_error(rc);
            }
            app_journal_key_free(&key);
            hpool_source_free(source);
        } else {
            report_error(rc);
        }
        if (pairs != NULL && print_pairs(pairs) != 0)
            status = 1;
        if (rc != 0 && status == 0)
            status = 1;
        hpool_pairs_free(pairs);
        free(ranges);
    }
    hpool_pool_free(pool);
    hpool_mpi_finalize();
    return status;
}
