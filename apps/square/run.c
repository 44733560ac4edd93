/* run.c: square's work on the root: 1..N or a file's lines read lazily, streamed in order, as they complete, or summed; failures reported. */
#include "square.h"

#include "app_cli.h"
#include "lines.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Reading --input lazily ----------------------------------------------- */

/* The producer: yields each line (lines.c bounds its length). It runs on one
 * pool thread at a time, so the reader's single line buffer is safe. A read
 * error ends the lines as the end of the file would, and run_input then
 * reports it and exits 1: returned to hpool as an error, it would drop the
 * lines already read into the batch being cut, which sources.c packs whole. */
static int produce_line(const void **data, size_t *size, void *user)
{
    const char *line;
    if (line_reader_next(user, &line, size) <= 0)
        return HPOOL_EOF;
    *data = line;
    return 0;
}

/* ---- Reporting failures ------------------------------------------------------ */

/* Where failures are reported: a file's lines, or a range's values. */
typedef struct failure_context {
    const char *input_name; /* the --input file as messages name it; NULL for a range */
} failure_context;

static const char *line_failure_text(int code)
{
    return code < 0 ? hpool_strerror(code) : square_line_failure_text(code);
}

/* Items canceled before they ran (the call failed, or was terminated):
 * one line for all of them at the end, not one each, which for a range of
 * billions would be billions of lines. */
static atomic_uint_fast64_t canceled_items;

static void report_canceled_items(void)
{
    uint64_t canceled = atomic_exchange(&canceled_items, 0);
    if (canceled > 0)
        fprintf(stderr, "square: %" PRIu64 " item%s canceled before %s ran\n", canceled,
                canceled == 1 ? " was" : "s were", canceled == 1 ? "it" : "they");
}

static void report_item_failure(const failure_context *context, uint64_t index, int code)
{
    if (code == HPOOL_ECANCELED) {
        atomic_fetch_add(&canceled_items, 1);
        return;
    }
    if (context->input_name != NULL)
        fprintf(stderr, "square: %s:%" PRIu64 ": %s\n", context->input_name, index + 1,
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

static int status_of_call(int rc)
{
    report_canceled_items();
    if (rc == 0)
        return EXIT_ALL_GOOD;
    /* Failed items were reported one by one. */
    if (rc != HPOOL_EFAILED)
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
        return status_of_call(rc);
    printf("%" PRIu64 "\n", sum); /* the sum of the good items, even if some failed */
    return status_of_call(rc);
}

/* Prints one delivered result, or reports it if its item failed. In input
 * order a failed item leaves its line empty, so that output line k is still
 * the square of input line k; unordered lines carry x, and a failed one is
 * not printed. */
static void print_result(output *out, const settings *settings, const failure_context *context,
                         const hpool_result *result)
{
    output_reserve_line(out);
    if (result->status != 0) {
        report_item_failure(context, result->index, result->status);
        if (!settings->unordered)
            output_char(out, '\n');
        return;
    }
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
        return status_of_call(rc);
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
        status = status_of_call(rc);
    } else {
        hpool_report report;
        status = status_of_call(hpool_iter_report(iter, &report));
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
    failure_context context = {.input_name = NULL};
    hpool_source *range;
    int rc = hpool_source_range(&range, 1, settings->last + 1);
    if (rc != 0)
        return status_of_call(rc);
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
    line_reader *reader = malloc(sizeof *reader);
    if (reader == NULL) {
        fprintf(stderr, "square: %s\n", hpool_strerror(HPOOL_ENOMEM));
        return EXIT_SOME_FAILED;
    }
    failure_context context;
    if (line_reader_open(reader, settings->input_path, &context.input_name) != 0) {
        free(reader);
        return EXIT_USAGE; /* an --input that cannot be read at all, as for a missing file */
    }
    hpool_source *lines;
    int rc = hpool_source_producer(&lines, produce_line, reader);
    if (rc != 0) {
        line_reader_close(reader);
        free(reader);
        return status_of_call(rc);
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
    /* After the output, as the last line: the input ended there. */
    if (reader->read_errno != 0) {
        fprintf(stderr, "square: %s:%" PRIu64 ": read error: %s\n", context.input_name,
                reader->line_number + 1, strerror(reader->read_errno));
        status = EXIT_SOME_FAILED;
    }
    hpool_source_free(lines);
    line_reader_close(reader);
    free(reader);
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
