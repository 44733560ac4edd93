/* worker.c: the map function: reads or fetches each page of a span, checks it, scans it, and emits what it found. */
#include "metatags.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct worker_state {
    scanner *scanner;
    page_buffer file;      /* a local page, reused page after page */
    fetcher *fetcher;      /* made when the first URL comes */
    page_buffer matches;   /* this page's matches, encoded for the record */
    page_buffer key;       /* a keyed pair's key */
    char problems[1024];   /* this page's report lines */
    size_t problems_size;
    hpool_emitter *emitter;
    int emit_status;
    const worker_config *config;
    page_survey survey;    /* this page's text check and literal candidates */
    char no_fetcher[256];  /* why libcurl would not load, for each URL's report */
} worker_state;

int worker_init(void **state_out, void *user)
{
    const worker_config *config = user;
    worker_state *state = calloc(1, sizeof *state);
    if (state == NULL)
        return 1;
    state->config = config;
    state->scanner = scanner_create(&config->pattern);
    if (state->scanner == NULL) {
        free(state);
        return 1;
    }
    *state_out = state;
    return 0;
}

void worker_fini(void *opaque, void *user)
{
    (void)user;
    worker_state *state = opaque;
    if (state == NULL)
        return;
    scanner_free(state->scanner);
    fetcher_free(state->fetcher);
    free(state->file.data);
    free(state->matches.data);
    free(state->key.data);
    free(state);
}

/* Adds one line to the page's report, keeping each line whole. */
static void add_problem(worker_state *state, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void add_problem(worker_state *state, const char *format, ...)
{
    size_t room = sizeof state->problems - state->problems_size;
    if (room < 2)
        return;
    char *at = state->problems + state->problems_size;
    if (state->problems_size > 0) {
        *at++ = '\n';
        room--;
    }
    va_list arguments;
    va_start(arguments, format);
    int written = vsnprintf(at, room, format, arguments);
    va_end(arguments);
    if (written < 0)
        return;
    size_t used = (size_t)written < room ? (size_t)written : room - 1;
    state->problems_size = (size_t)(at - state->problems) + used;
}

static int record_match(const uint8_t *match, size_t size, void *user)
{
    worker_state *state = user;
    uint32_t size32 = (uint32_t)size;
    if (size > UINT32_MAX || page_buffer_append(&state->matches, &size32, sizeof size32) != 0
        || page_buffer_append(&state->matches, match, size) != 0)
        return HPOOL_ENOMEM;
    return 0;
}

static int emit_match(const uint8_t *match, size_t size, void *user)
{
    worker_state *state = user;
    state->key.size = 0;
    if (page_buffer_append(&state->key, "M", 1) != 0 || page_buffer_append(&state->key, match, size) != 0)
        return HPOOL_ENOMEM;
    static const uint64_t one = 1;
    return hpool_emit(state->emitter, state->key.data, state->key.size, &one, sizeof one);
}

/* The checks every page gets, then the scan. */
static int check_and_scan(worker_state *state, const page_buffer *page, scan_match_fn *on_match)
{
    if (page->size == 0) {
        add_problem(state, "empty page (0 bytes)");
        return 0;
    }
    const scan_pattern *pattern = &state->config->pattern;
    page_survey *survey = &state->survey;
    bytes_survey(pattern->has_prefix ? &pattern->finder : NULL, page->data, page->size, survey);
    const page_text_check text = survey->text;
    /* A (*UTF) pattern matches whole characters, and never a stray byte
     * (scan.c): the line says so, where other patterns match bytes. */
    const char *searched = pattern->utf ? "searched as UTF-8, where a byte that is not UTF-8 matches nothing"
                                        : "searched as bytes";
    if (text.first_nul >= 0)
        add_problem(state, "binary: NUL byte at offset %" PRId64 "; %s", text.first_nul, searched);
    else if (text.first_invalid_utf8 >= 0)
        add_problem(state, "not UTF-8: byte 0x%02X at offset %" PRId64 "; %s", page->data[text.first_invalid_utf8],
                    text.first_invalid_utf8, searched);

    scan_outcome outcome;
    int status = scan_surveyed_page(state->scanner, page->data, page->size, survey, on_match, state, &outcome);
    if (status != 0)
        return status;
    if (outcome.long_tag_at >= 0)
        add_problem(state, "unclosed tag at offset %" PRId64 " runs %zu bytes to the end of its line; no match there",
                    outcome.long_tag_at, outcome.long_tag_bytes);
    if (outcome.stopped_at >= 0) {
        PCRE2_UCHAR why[256];
        pcre2_get_error_message(outcome.stop_code, why, sizeof why);
        add_problem(state, "matching stopped at offset %" PRId64 ": %s; later matches are missing",
                    outcome.stopped_at, (const char *)why);
    }
    return 0;
}

/* One page's record for the streams: the report lines' size and text, then
 * each match as a 32-bit size and its bytes. */
static int emit_record(hpool_span *span, size_t i, worker_state *state)
{
    uint32_t problems_size = (uint32_t)state->problems_size;
    int rc = hpool_span_emit(span, i, &problems_size, sizeof problems_size);
    if (rc == 0 && problems_size > 0)
        rc = hpool_span_emit(span, i, state->problems, problems_size);
    if (rc == 0 && state->matches.size > 0)
        rc = hpool_span_emit(span, i, state->matches.data, state->matches.size);
    return rc;
}

/* Keyed calls carry a page's report as a key of its own: "E", the page's
 * index big-endian (so reports sort in input order), then the lines. */
static int emit_report_pair(worker_state *state, uint64_t index)
{
    uint8_t key[1 + 8 + sizeof state->problems];
    key[0] = 'E';
    for (int b = 0; b < 8; b++)
        key[1 + b] = (uint8_t)(index >> (56 - 8 * b));
    memcpy(key + 9, state->problems, state->problems_size);
    static const uint64_t zero = 0;
    return hpool_emit(state->emitter, key, 9 + state->problems_size, &zero, sizeof zero);
}

/* Item i's bytes: its finished transfer, or the file read into the
 * thread's buffer. On failure the reason is added to the page's report. */
static int page_of(worker_state *state, const worker_config *config, size_t i, const char *name,
                   page_buffer **page)
{
    char why[512];
    if (input_is_url(name)) {
        if (state->fetcher == NULL) {
            add_problem(state, "fetch failed: %s", state->no_fetcher);
            return -1;
        }
        if (fetcher_wait(state->fetcher, i, page, why, sizeof why) != 0) {
            add_problem(state, "%s", why);
            return -1;
        }
        return 0;
    }
    if (pages_read_file(name, config->max_page_size, &state->file, why, sizeof why) != 0) {
        add_problem(state, "%s", why);
        return -1;
    }
    *page = &state->file;
    return 0;
}

/* Starts every URL of the span at once: fetching waits on the network, so
 * a worker keeps a whole span's transfers in flight. */
static int start_transfers(worker_state *state, const worker_config *config, const hpool_span *span)
{
    for (size_t i = 0; i < span->count; i++) {
        const void *data;
        size_t size;
        hpool_span_input(span, i, &data, &size);
        if (!input_is_url(data))
            continue;
        if (state->fetcher == NULL) {
            int rc = fetcher_create(&state->fetcher, config->timeout_ms, config->max_page_size, state->no_fetcher,
                                    sizeof state->no_fetcher);
            if (rc == HPOOL_ENOMEM)
                return rc; /* the next span tries again */
            if (rc != 0)
                return 0; /* libcurl would not load: page_of reports no_fetcher for each URL */
        }
        int rc = fetcher_start(state->fetcher, i, data);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int worker_map_pages(hpool_span *span, void *user)
{
    const worker_config *config = user;
    worker_state *state = span->state;
    state->emitter = span->emitter;
    int rc = start_transfers(state, config, span);
    for (size_t i = 0; rc == 0 && i < span->count; i++) {
        const void *data;
        size_t size;
        hpool_span_input(span, i, &data, &size);
        state->problems_size = 0;
        state->matches.size = 0;
        page_buffer *page;
        if (page_of(state, config, i, data, &page) == 0)
            rc = check_and_scan(state, page, span->emitter != NULL ? emit_match : record_match);
        /* Scanned: its room goes to the transfers still running. */
        if (state->fetcher != NULL && input_is_url(data))
            fetcher_release(state->fetcher, i);
        if (rc != 0)
            break;
        if (span->emitter == NULL)
            rc = emit_record(span, i, state);
        else if (state->problems_size > 0)
            rc = emit_report_pair(state, span->first + i);
    }
    if (state->fetcher != NULL)
        fetcher_reset(state->fetcher);
    return rc;
}
