/* metatags.h: what the metatags app's files share: inputs, the pattern scanner, page reading and fetching, output. */
#ifndef METATAGS_H
#define METATAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* A tag opened but not closed for more than this many bytes on its line
 * is reported: Python's findall finds nothing there either. */
#define METATAGS_LONG_TAG_BYTES ((size_t)1 << 20)

/* --max-page-size's default: far above real pages (the largest on this
 * machine's /usr/share/doc is Node.js's one-page API, 8.4 MB; python3.11-doc's
 * largest is 2.6 MB), far below memory: a thread holds one file page, or a
 * task's fetched bodies of at most twice this (see fetch.c), so 64 threads
 * stay under 8 GiB even on hostile input. */
#define METATAGS_DEFAULT_MAX_PAGE_SIZE ((size_t)64 << 20)

/* A @LIST line longer than this is not a name (PATH_MAX is 4096 bytes): it
 * is reported and skipped, and the list read on, without holding it. */
#define METATAGS_MAX_LIST_LINE ((size_t)1 << 20)

/* ---- Byte checks (bytes.c) --------------------------------------------- */

/* Where a page first stops being UTF-8 text, if it does. */
typedef struct page_text_check {
    int64_t first_nul;         /* offset of the first NUL byte, or -1 */
    int64_t first_invalid_utf8; /* offset of the first byte of a bad sequence, or -1 */
} page_text_check;

void bytes_check_text(const uint8_t *data, size_t size, page_text_check *check);

/* Length of the valid UTF-8 sequence at data (1..4), or 0 if the bytes there
 * do not start one (strict: no overlongs, surrogates or beyond U+10FFFF). */
size_t bytes_utf8_sequence(const uint8_t *data, size_t size);

/* A search for a literal, exact or ASCII-caseless. */
typedef struct literal_finder {
    uint8_t bytes[64];
    size_t size;
    bool caseless;
    size_t rare_offset[2]; /* two positions in the literal tested 16 or 32 at a time */
    uint8_t rare_fold[2];  /* ORed into the page's bytes there before the test: 0x20 to fold a letter's case, or 0 */
} literal_finder;

void bytes_finder_init(literal_finder *finder, const uint8_t *literal, size_t size, bool caseless);
/* Offset of the first occurrence at or after from, or size if none. */
size_t bytes_find(const literal_finder *finder, const uint8_t *data, size_t size, size_t from);

/* A page's one pass before matching: bytes_check_text's answer and the
 * offsets where the finder's literal may start (its two rare bytes are
 * there), found together, so the worker reads each byte once where it used
 * to read it twice. Candidates are few ("<m" is once in 24 kB of HTML); a
 * page with more than fit keeps those below complete_below, and the search
 * goes on from there as bytes_find. */
#define PAGE_SURVEY_CANDIDATES 256
typedef struct page_survey {
    page_text_check text;
    size_t candidates[PAGE_SURVEY_CANDIDATES]; /* ascending */
    size_t candidate_count;
    size_t complete_below; /* every candidate below this offset is listed (0 without AVX2) */
    size_t next_candidate; /* bytes_find_surveyed's place in candidates */
} page_survey;

/* Surveys size bytes at data; finder NULL (a pattern without a literal
 * start) surveys the text alone. Without AVX2 it is bytes_check_text and
 * no candidates. Reads no byte outside the page. */
void bytes_survey(const literal_finder *finder, const uint8_t *data, size_t size, page_survey *survey);
/* bytes_find on a surveyed page, for the same finder: from must not go
 * back from one call to the next (scan.c's calls never do). */
size_t bytes_find_surveyed(const literal_finder *finder, page_survey *survey, const uint8_t *data, size_t size,
                           size_t from);

/* ---- The pattern and findall (scan.c) ----------------------------------- */

typedef struct scan_pattern {
    pcre2_code *code;          /* the pattern, unanchored */
    pcre2_code *anchored;      /* the same, anchored: tried at each prefix hit */
    bool has_prefix;           /* every match starts with finder's literal */
    literal_finder finder;
    /* The pattern is the default <meta .*?>: a failed tag cannot match
     * anywhere later on its line, so the scan skips to the line's end. */
    bool line_bounded;
    /* In UTF mode ((*UTF)), compiled with PCRE2_MATCH_INVALID_UTF: a byte
     * that is not UTF-8 matches nothing. Such patterns start with "(*", so
     * never have a literal prefix. */
    bool utf;
} scan_pattern;

/* Compiles pattern (PCRE2 syntax; caseless for -i). On error, writes
 * PCRE2's message and the offset into message and returns -1. */
int scan_pattern_compile(scan_pattern *pattern, const char *text, bool caseless, char *message, size_t size);
void scan_pattern_free(scan_pattern *pattern);

/* Per thread: match data and the JIT stack. */
typedef struct scanner scanner;
scanner *scanner_create(const scan_pattern *pattern);
void scanner_free(scanner *scanner);

typedef int scan_match_fn(const uint8_t *match, size_t size, void *user);

/* What a scan noticed beyond its matches. */
typedef struct scan_outcome {
    int64_t long_tag_at;       /* first unclosed tag over METATAGS_LONG_TAG_BYTES, or -1 */
    size_t long_tag_bytes;
    int64_t stopped_at;        /* the scan gave up here (match limit...), or -1 */
    int stop_code;             /* PCRE2's error code then */
} scan_outcome;

/* Calls on_match for each match of re.findall semantics: leftmost,
 * non-overlapping, an empty match advances by one character (a byte unless
 * the pattern sets (*UTF)). Returns on_match's first
 * non-zero return, else 0; outcome says if the scan stopped early. */
int scan_page(scanner *scanner, const uint8_t *page, size_t size, scan_match_fn *on_match, void *user,
              scan_outcome *outcome);
/* The same on a page bytes_survey surveyed with the pattern's finder (or
 * NULL when the pattern has no literal start): the literal's candidates
 * come from survey instead of a second pass over the page. */
int scan_surveyed_page(scanner *scanner, const uint8_t *page, size_t size, page_survey *survey,
                       scan_match_fn *on_match, void *user, scan_outcome *outcome);

/* ---- Inputs (inputs.c) --------------------------------------------------- */

typedef struct input_list {
    char **names;      /* paths and URLs, in input order */
    size_t *lengths;
    uint64_t *sizes;   /* file sizes from stat when wanted (for progress); else 0 */
    size_t count, capacity;
    bool has_urls;
    bool want_sizes;   /* set before expanding: stat every page for its size */
    int failures;      /* inputs already reported on stderr */
} input_list;

bool input_is_url(const char *name);
/* Expands the command line's INPUTs (files, directories, @LIST, URLs).
 * Reports bad ones on stderr and counts them; returns -1 only when out of
 * memory. A name in a @LIST that ends in .html or .htm is taken as a page
 * without a check: reading it reports what is wrong with it. */
/* 0, -1 when out of memory, or 1 when the pool given to inputs_stop_with
 * was stopped while a list was read. */
int inputs_expand(input_list *list, char **arguments, int count);
struct hpool_pool;
void inputs_stop_with(const struct hpool_pool *pool);
void inputs_free(input_list *list);

/* ---- Reading and fetching pages (pages.c, fetch.c) ----------------------- */

typedef struct page_buffer {
    uint8_t *data;
    size_t size, capacity;
} page_buffer;

/* Room for more bytes after buffer->size, contents kept; the buffer is
 * page-aligned. 0, or -1 when out of memory. */
int page_buffer_reserve(page_buffer *buffer, size_t more);
/* The same, never growing the capacity past most (rounded up to 4 KiB)
 * unless more needs it. */
int page_buffer_reserve_at_most(page_buffer *buffer, size_t more, size_t most);
/* The capacity page_buffer_reserve_at_most would leave. */
size_t page_buffer_grown_capacity(const page_buffer *buffer, size_t more, size_t most);
/* Appends size bytes (room reserved first). 0, or -1 when out of memory. */
int page_buffer_append(page_buffer *buffer, const void *data, size_t size);
int page_buffer_append_at_most(page_buffer *buffer, const void *data, size_t size, size_t most);

/* What kind of file mode is, for messages: "a FIFO", "a socket", ... */
const char *pages_file_kind(unsigned mode);

/* Reads a whole regular file of at most max_size bytes; refuses any other
 * kind of file without waiting on it (a FIFO is opened non-blocking). On
 * error writes why into message and returns -1. */
int pages_read_file(const char *path, size_t max_size, page_buffer *buffer, char *message, size_t size);

/* curl_global_cleanup if a URL loaded libcurl (libcurl.c); from the main
 * thread, after the pool. */
void libcurl_unload(void);

typedef struct fetcher fetcher;
/* Each body is cut off at max_body bytes (decompressed) and reported; the
 * bodies of a task's transfers together hold at most 2 * max_body bytes:
 * the body being waited for, and the others together up to max_body (a
 * transfer that would go over waits, paused, until bodies are released).
 * 0 and *created; HPOOL_ENOMEM; or -1 when libcurl cannot be loaded,
 * message saying why (libcurl.c remembers it for the process). */
int fetcher_create(fetcher **created, long timeout_ms, size_t max_body, char *message, size_t size);
void fetcher_free(fetcher *fetcher);
/* Starts fetching url as transfer slot (0.. slots-1 of this batch). */
int fetcher_start(fetcher *fetcher, size_t slot, const char *url);
/* Waits for slot's transfer; on success its body is in *body (owned by the
 * fetcher until fetcher_release or fetcher_reset); on failure message says
 * why. */
int fetcher_wait(fetcher *fetcher, size_t slot, page_buffer **body, char *message, size_t size);
/* Frees slot's body, making room for the transfers still running. */
void fetcher_release(fetcher *fetcher, size_t slot);
/* Cancels and forgets every transfer. */
void fetcher_reset(fetcher *fetcher);

/* ---- The map function (worker.c) ------------------------------------------ */

#include <hpool.h>

/* What every rank's workers need, the same on every rank. */
typedef struct worker_config {
    scan_pattern pattern;
    long timeout_ms;      /* per URL */
    size_t max_page_size; /* per page, read or fetched (decompressed) */
} worker_config;

/* A span function over page names: streams get one record per page (see
 * worker.c), keyed calls get "M"+match pairs counting 1 and "E"+index
 * pairs carrying a page's report lines. */
int worker_map_pages(hpool_span *span, void *user);
int worker_init(void **state, void *user);
void worker_fini(void *state, void *user);

/* ---- Output (output.c) ----------------------------------------------------- */

/* RAW writes the bytes as they are (like grep -o); TSV escapes TAB, LF, CR
 * and backslash in each field as PostgreSQL's COPY text format does. */
enum output_format { FORMAT_RAW, FORMAT_TSV, FORMAT_JSONL };

/* The caller holds out's lock (flockfile). */
void output_match(FILE *out, enum output_format format, const char *path, size_t path_size,
                  const uint8_t *match, size_t match_size);
void output_count(FILE *out, enum output_format format, const uint8_t *match, size_t match_size, uint64_t count);
/* A JSON string of any bytes: UTF-8 passes through, others become \udcXX. */
void output_json_string(FILE *out, const uint8_t *data, size_t size);
/* A name for a line on stderr, malloc'd: TAB, LF, CR and backslash as \t,
 * \n, \r and \\, other control bytes as \xNN. NULL when out of memory. */
char *output_quote_name(const char *name);

/* ---- Progress (progress.c) ---------------------------------------------------- */

typedef struct progress progress;
progress *progress_create(const input_list *inputs, bool enabled);
void progress_items_done(progress *progress, uint64_t first, uint64_t count);
/* Prints one report line on stderr without garbling the progress line. */
void progress_report(progress *progress, const char *path, const char *message);
void progress_finish(progress *progress);
void progress_free(progress *progress);

#endif
