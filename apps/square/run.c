/* run.c: square's work on the root: 1..N or a file's lines read lazily, streamed in order, as they complete, or summed; failures reported. */
#define _POSIX_C_SOURCE 200809L /* getline, ssize_t, fileno, fstat */
#include "square.h"

#include "app_cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- Reading --input lazily ----------------------------------------------- */

typedef struct line_reader {
    FILE *file;
    char *line;
    size_t capacity;
    int read_errno; /* set when getline failed for a reason other than EOF */
} line_reader;

/* The producer: yields each line without its newline or a trailing \r. It
 * runs on one pool thread at a time, so the single line buffer is safe. */
static int produce_line(const void **data, size_t *size, void *user)
{
    line_reader *reader = user;
    errno = 0;
    ssize_t length = getline(&reader->line, &reader->capacity, reader->file);
    if (length < 0) {
        if (ferror(reader->file)) {
            reader->read_errno = errno != 0 ? errno : EIO;
            return HPOOL_EIO;
        }
        return HPOOL_EOF;
    }
    if (length > 0 && reader->line[length - 1] == '\n')
        length--;
    if (length > 0 && reader->line[length - 1] == '\r')
        length--;
    *data = reader->line;
    *size = (size_t)length;
    return 0;
}

/* ---- Reporting failures ------------------------------------------------------ */

/* Where failures are reported: a file's lines, or a range's values. */
typedef struct failure_context {
    const char *input_path;     /* NULL for a range */
    const line_reader *reader;  /* NULL for a range */
} failure_context;

static const char *line_failure_text(int code)
{
    switch (code) {
    case LINE_NOT_AN_INTEGER:
        return "not an integer";
    case LINE_INTEGER_OVERFLOW:
        return "integer overflow";
    default:
        return code < 0 ? hpool_strerror(code) : "failed";
    }
}

static void report_item_failure(const failure_context *context, uint64_t index, int code)
{
    if (context->input_path != NULL)
        fprintf(stderr, "square: %s:%" PRIu64 ": %s\n", context->input_path, index + 1,
                line_failure_text(code));
    else
        fprintf(stderr, "square: item %" PRIu64 " (x = %" PRIu64 "): %s\n", index, index + 1,
                line_failure_text(code));
}

/* The reduce reports failures through this callback, on a pool thread. */
static void report_reduce_failure(uint64_t index, int code, void *user)
{
    report_item_failure(user, index, code);
}

static int status_of_call(int rc, const failure_context *context)
{
    if (rc == 0)
        return EXIT_ALL_GOOD;
    /* Failed items were reported one by one; a read error of ours is reported
     * with the file name and errno by run_input, which says more. */
    int reported = rc == HPOOL_EFAILED ||
                   (rc == HPOOL_EIO && context->reader != NULL && context->reader->read_errno != 0);
    if (!reported)
        app_print_error("square", NULL, rc);
    return EXIT_SOME_FAILED;
}

/* ---- The calls ------------------------------------------------------------- */

/* A reduce: only the sum crosses ranks, never a per-item result. */
static int run_sum(hpool_pool *pool, hpool_call *call, const failure_context *context)
{
    uint64_t sum = 0;
    call->reducer = REDUCER_SUM_UINT64;
    call->reduction = &sum;
    call->result_size = sizeof sum;
    call->error_callback = report_reduce_failure;
    call->user = (void *)context;
    hpool_report report;
    int rc = hpool_map_reduce(pool, call, &report);
    if (rc != 0 && rc != HPOOL_EFAILED)
        return status_of_call(rc, context);
    printf("%" PRIu64 "\n", sum); /* the sum of the good items, even if some failed */
    return status_of_call(rc, context);
}

/* Prints one delivered result, or reports it if its item failed. */
static void print_result(output *out, const settings *settings, const failure_context *context,
                         const hpool_result *result)
{
    if (result->status != 0) {
        report_item_failure(context, result->index, result->status);
        return;
    }
    output_reserve_line(out);
    if (settings->input_path != NULL) {
        square_of_line line;
        memcpy(&line, result->data, sizeof line);
        if (settings->unordered) {
            output_int64(out, line.x);
            output_char(out, '\t');
        }
        output_uint128(out, (unsigned __int128)line.square_high << 64 | line.square_low);
    } else {
        if (settings->unordered) {
            output_uint64(out, result->index + 1); /* a range 1..N: x = 1 + index */
            output_char(out, '\t');
        }
        if (result->size == sizeof(uint64_t)) {
            uint64_t square;
            memcpy(&square, result->data, sizeof square);
            output_uint64(out, square);
        } else {
            unsigned __int128 square;
            memcpy(&square, result->data, sizeof square);
            output_uint128(out, square);
        }
    }
    output_char(out, '\n');
}

/* imap or imap_unordered: every result comes back to the root and is printed
 * as it arrives. */
static int run_stream(hpool_pool *pool, hpool_call *call, const settings *settings,
                      const failure_context *context)
{
    output *out = malloc(sizeof *out);
    if (out == NULL) {
        fprintf(stderr, "square: %s\n", hpool_strerror(HPOOL_ENOMEM));
        return EXIT_SOME_FAILED;
    }
    out->used = 0;
    out->failed = 0;

    hpool_iter *iter;
    int rc = settings->unordered ? hpool_imap_unordered(pool, call, &iter)
                                 : hpool_imap(pool, call, &iter);
    if (rc != 0) {
        free(out);
        return status_of_call(rc, context);
    }
    hpool_result result;
    while ((rc = hpool_iter_next(iter, &result, -1)) == 0) {
        print_result(out, settings, context, &result);
        if (out->failed)
            break; /* freeing the iterator below cancels the rest */
    }
    output_flush(out);
    int status;
    if (out->failed) {
        fprintf(stderr, "square: write error: %s\n", strerror(out->write_errno));
        status = EXIT_SOME_FAILED;
    } else if (rc != HPOOL_EOF) {
        status = status_of_call(rc, context);
    } else {
        hpool_report report;
        status = status_of_call(hpool_iter_report(iter, &report), context);
    }
    hpool_iter_free(iter);
    free(out);
    return status;
}

/* ---- The inputs ------------------------------------------------------------ */

/* 1..N is a range source: each rank generates its own items, so nothing but
 * results (or a sum) is sent. */
static int run_range(hpool_pool *pool, const settings *settings)
{
    failure_context context = {.input_path = NULL, .reader = NULL};
    hpool_source *range;
    int rc = hpool_source_range(&range, 1, settings->last + 1);
    if (rc != 0)
        return status_of_call(rc, &context);
    hpool_call call = HPOOL_CALL_INIT;
    call.source = range;
    call.chunksize = settings->chunksize;
    int status;
    if (settings->sum) {
        call.function = FUNCTION_SUM_SQUARES_RANGE;
        status = run_sum(pool, &call, &context);
    } else {
        call.function = FUNCTION_SQUARE_RANGE;
        /* Every square of 1..2^32-1 fits in 64 bits. */
        call.result_size = settings->last <= (int64_t)UINT32_MAX ? sizeof(uint64_t)
                                                                 : sizeof(unsigned __int128);
        status = run_stream(pool, &call, settings, &context);
    }
    hpool_source_free(range);
    return status;
}

static int run_input(hpool_pool *pool, const settings *settings)
{
    line_reader reader = {.file = fopen(settings->input_path, "r")};
    if (reader.file == NULL) {
        fprintf(stderr, "square: %s: %s\n", settings->input_path, strerror(errno));
        return EXIT_USAGE;
    }
    /* fopen accepts a directory; only reading it fails. Saying so now keeps
     * every unusable FILE a usage error. */
    struct stat file_status;
    if (fstat(fileno(reader.file), &file_status) == 0 && S_ISDIR(file_status.st_mode)) {
        fprintf(stderr, "square: %s: %s\n", settings->input_path, strerror(EISDIR));
        fclose(reader.file);
        return EXIT_USAGE;
    }
    failure_context context = {.input_path = settings->input_path, .reader = &reader};
    hpool_source *lines;
    int rc = hpool_source_producer(&lines, produce_line, &reader);
    if (rc != 0) {
        fclose(reader.file);
        return status_of_call(rc, &context);
    }
    hpool_call call = HPOOL_CALL_INIT;
    call.source = lines;
    call.chunksize = settings->chunksize;
    int status;
    if (settings->sum) {
        call.function = FUNCTION_SQUARE_LINE_MOD_2_64;
        status = run_sum(pool, &call, &context);
    } else {
        call.function = FUNCTION_SQUARE_LINE;
        call.result_size = sizeof(square_of_line);
        status = run_stream(pool, &call, settings, &context);
    }
    if (reader.read_errno != 0) {
        fprintf(stderr, "square: %s: %s\n", settings->input_path, strerror(reader.read_errno));
        status = EXIT_SOME_FAILED;
    }
    hpool_source_free(lines);
    free(reader.line);
    fclose(reader.file);
    return status;
}

int square_run(const settings *settings)
{
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.threads = settings->threads;
    options.functions = square_functions;
    options.function_count = SQUARE_FUNCTION_COUNT;
    options.reducers = square_reducers;
    options.reducer_count = SQUARE_REDUCER_COUNT;
    hpool_pool *pool;
    int rc = hpool_pool_create(&pool, &options);
    if (rc != 0) {
        app_print_error("square", "cannot start the pool", rc);
        return EXIT_SOME_FAILED;
    }
    int status = EXIT_ALL_GOOD;
    if (hpool_pool_is_root(pool))
        status = settings->input_path != NULL ? run_input(pool, settings)
                                              : run_range(pool, settings);
    rc = hpool_pool_join(pool);
    if (rc != 0) {
        app_print_error("square", NULL, rc);
        if (status == EXIT_ALL_GOOD)
            status = EXIT_SOME_FAILED;
    }
    hpool_pool_free(pool);
    if (fflush(stdout) != 0 && status == EXIT_ALL_GOOD) {
        fprintf(stderr, "square: write error: %s\n", strerror(errno));
        status = EXIT_SOME_FAILED;
    }
    return status;
}
