/* run.c: square's work on the root: 1..N or a file's lines read lazily, streamed in order, as they complete, or summed; failures reported. */
#include "square.h"

#include "app_cli.h"
#include "app_stop.h"
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
/* The reader's should_stop: a signal stopped the pool. */
static int pool_stopped(void *pool)
{
    return hpool_pool_stopped(pool, NULL) != 0;
}

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

/* How a call ended, for the exit status and the one line of a stop. */
typedef struct call_end {
    hpool_pool *pool;
    const settings *settings;
    uint64_t total; /* the range's N; 0: unknown (an --input file) */
} call_end;

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

/* Like status_of_call, but a stop is one line and EXIT_STOPPED: the items
 * it canceled are not failures, and a journal's refusal is a usage error. */
static int status_of_ended_call(const call_end *end, int rc, const hpool_report *report)
{
    if (rc == HPOOL_ESTOPPED) {
        atomic_store(&canceled_items, 0);
        uint64_t completed = report->items - report->canceled;
        return app_report_stopped(end->pool, "square", completed, end->total, "items", end->settings->journal_path);
    }
    int journal_status = app_journal_failure("square", end->settings->journal_path, rc);
    if (journal_status >= 0) {
        atomic_store(&canceled_items, 0);
        return journal_status;
    }
    return status_of_call(rc);
}

/* ---- The calls ------------------------------------------------------------- */

/* A reduce: only the sum crosses ranks, never a per-item result. */
static int run_sum(hpool_pool *pool, hpool_call *call, const failure_context *context, const call_end *end)
{
    uint64_t sum = 0;
    call->reducer = REDUCER_SUM_UINT64;
    call->reduction = &sum;
    call->result_size = sizeof sum;
    call->error_callback = report_reduce_failure;
    call->user = (void *)context;
    hpool_report report = {0};
    int rc = hpool_map_reduce(pool, call, &report);
    int status = status_of_ended_call(end, rc, &report);
    if (status == EXIT_STOPPED || (rc != 0 && rc != HPOOL_EFAILED))
        return status; /* a stopped sum is only part of one: not printed */
    printf("%" PRIu64 "\n", sum); /* the sum of the good items, even if some failed */
    return status;
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
                      const failure_context *context, const call_end *end)
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
        hpool_report none = {0};
        return status_of_ended_call(end, rc, &none);
    }
    hpool_result result;
    /* After a stop, in input order, the first item that did not run ends
     * the output: a line after it would leave a gap that a rerun with the
     * journal could not fill in place. The rest is still read, to the end. */
    int gap = 0;
    while ((rc = hpool_iter_next(iter, &result, -1)) == 0) {
        if (result.status == HPOOL_ECANCELED && hpool_pool_stopped(pool, NULL) != 0) {
            gap = !settings->unordered;
            continue;
        }
        if (gap)
            continue;
        print_result(out, settings, context, &result);
        if (out->failed)
            break; /* freeing the iterator below cancels the rest */
    }
    output_flush(out);
    int status;
    hpool_report report = {0};
    if (out->failed) {
        fprintf(stderr, "square: write error: %s\n", strerror(out->write_errno));
        status = EXIT_SOME_FAILED;
    } else if (rc != HPOOL_EOF) {
        /* The report, if the iterator has one, counts what a stop left. */
        if (rc == HPOOL_ESTOPPED)
            hpool_iter_report(iter, &report);
        status = status_of_ended_call(end, rc, &report);
    } else {
        status = status_of_ended_call(end, hpool_iter_report(iter, &report), &report);
    }
    hpool_iter_free(iter);
    free(out);
    return status;
}

/* ---- The inputs ------------------------------------------------------------ */

/* 1..N is a range source: each rank generates its own items, so nothing but
 * results (or a sum) is sent. */
static int run_range(hpool_pool *pool, const settings *settings, hpool_call *call_template)
{
    failure_context context = {.input_name = NULL};
    hpool_source *range;
    int rc = hpool_source_range(&range, 1, settings->last + 1);
    if (rc != 0)
        return status_of_call(rc);
    hpool_call call = *call_template;
    call.source = range;
    call_end end = {.pool = pool, .settings = settings, .total = (uint64_t)settings->last};
    int status;
    if (settings->sum) {
        call.function = FUNCTION_SUM_SQUARES_RANGE;
        status = run_sum(pool, &call, &context, &end);
    } else {
        call.function = FUNCTION_SQUARE_RANGE;
        /* Every square of 1..2^32-1 fits in 64 bits. */
        call.result_size = settings->last <= (int64_t)UINT32_MAX ? sizeof(uint64_t)
                                                                 : sizeof(unsigned __int128);
        status = run_stream(pool, &call, settings, &context, &end);
    }
    hpool_source_free(range);
    return status;
}

static int run_input(hpool_pool *pool, const settings *settings, hpool_call *call_template)
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
    reader->should_stop = pool_stopped;
    reader->should_stop_user = pool;
    hpool_source *lines;
    int rc = hpool_source_producer(&lines, produce_line, reader);
    if (rc != 0) {
        line_reader_close(reader);
        free(reader);
        return status_of_call(rc);
    }
    hpool_call call = *call_template;
    call.source = lines;
    call_end end = {.pool = pool, .settings = settings, .total = 0};
    int status;
    if (settings->sum) {
        call.function = FUNCTION_SQUARE_LINE_MOD_2_64;
        status = run_sum(pool, &call, &context, &end);
    } else {
        call.function = FUNCTION_SQUARE_LINE;
        call.result_size = sizeof(square_of_line);
        status = run_stream(pool, &call, settings, &context, &end);
    }
    /* A stop that ended the input while square waited for it: the call
     * itself ended well, with the lines read until then. */
    if (reader->stopped && status == EXIT_ALL_GOOD)
        status = app_report_stopped(pool, "square", reader->line_number, 0, "items", settings->journal_path);
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

/* What decides the output beyond what hpool sees (the function, the result
 * size and a range's bounds): the mode, and an --input file's path, size
 * and time, since the producer's lines are invisible to hpool. */
static void make_journal_key(const settings *settings, app_journal_key *key)
{
    app_journal_key_add(key, "program", "square");
    app_journal_key_add(key, "output", settings->sum ? "sum" : settings->unordered ? "unordered" : "ordered");
    if (settings->input_path != NULL)
        app_journal_key_add_file(key, "input", settings->input_path);
    else
        app_journal_key_add_number(key, "last", settings->last);
}

static int run_root(hpool_pool *pool, const settings *settings)
{
    hpool_call call = HPOOL_CALL_INIT;
    call.chunksize = settings->chunksize;
    app_journal_key key = {0};
    if (settings->journal_path != NULL) {
        make_journal_key(settings, &key);
        if (key.failed) {
            fprintf(stderr, "square: %s\n", hpool_strerror(HPOOL_ENOMEM));
            app_journal_key_free(&key);
            return EXIT_SOME_FAILED;
        }
        call.journal = settings->journal_path;
        call.journal_key = key.bytes;
        call.journal_key_size = key.size;
    }
    int status = settings->input_path != NULL ? run_input(pool, settings, &call)
                                              : run_range(pool, settings, &call);
    app_journal_key_free(&key);
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
    rc = app_stop_on_signals(pool);
    if (rc != 0) {
        app_print_error("square", "cannot catch the signals that stop it", rc);
        status = EXIT_SOME_FAILED;
    } else if (hpool_pool_is_root(pool)) {
        status = run_root(pool, settings);
    }
    rc = hpool_pool_join(pool);
    if (rc == HPOOL_ESTOPPED)
        rc = 0; /* the root's call said it once, with its counts */
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
