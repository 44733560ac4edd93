/* fuzz_metatags_scan.c: metatags' scanner (scan_page) against PCRE2's own global-match loop, as pcre2test's /g runs it, for several patterns, as a libFuzzer target or a plain driver of fixed inputs, the seed pages and seeded random ones. */
#define _POSIX_C_SOURCE 200809L
#include "metatags.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The patterns every input is scanned with: each takes a different path
 * through scan.c. */
typedef struct fuzz_pattern {
    const char *text;
    bool caseless;              /* metatags' -i */
    scan_pattern scan;          /* as metatags compiles it */
    scanner *scanner;
    pcre2_code *reference;      /* compiled here, interpreted (no JIT) */
    pcre2_match_data *reference_data;
    bool utf;
} fuzz_pattern;

static fuzz_pattern patterns[] = {
    /* The default, as main.c sets it: not caseless, not DOTALL, "." stops
     * at \n only. The literal finder, anchored PCRE2, a failed tag skipping
     * to its line's end. */
    {.text = "<meta .*?>", .caseless = false},
    /* The default with -i: the caseless finder, still line-bounded. */
    {.text = "<meta .*?>", .caseless = true},
    /* Caseless, not the default: no line skip, and [^>] crosses lines. */
    {.text = "<Meta\\s[^>]*>", .caseless = true},
    /* No literal start, empty matches between the others: PCRE2 over the
     * whole page, after an empty match a search at the same offset. */
    {.text = "<?[a-z]*", .caseless = false},
    /* UTF: the empty alternative comes first, so a non-empty match is
     * found where an empty one was, and an empty match moves on by a whole
     * character of 1 to 4 bytes. */
    {.text = "(*UTF)(?:|\\x{e9}|[\\x{20ac}\\x{1f600}>]+)", .caseless = false},
};
#define PATTERN_COUNT (sizeof patterns / sizeof patterns[0])

/* ---- Matches, both sides ---------------------------------------------------- */

typedef struct match_list {
    size_t *starts, *ends; /* [starts[i], ends[i]) in the page */
    size_t count, capacity;
    bool stopped;          /* a PCRE2 error ended the scan */
    int stop_code;
} match_list;

static void list_add(match_list *list, size_t start, size_t end)
{
    if (list->count == list->capacity) {
        list->capacity = list->capacity ? 2 * list->capacity : 256;
        list->starts = realloc(list->starts, list->capacity * sizeof *list->starts);
        list->ends = realloc(list->ends, list->capacity * sizeof *list->ends);
        if (list->starts == NULL || list->ends == NULL) {
            fprintf(stderr, "fuzz_metatags_scan: out of memory\n");
            abort();
        }
    }
    list->starts[list->count] = start;
    list->ends[list->count] = end;
    list->count++;
}

/* The reference: pcre2test's /g (and pcre2demo.c's loop), over a subject
 * of its own that starts at page offset base. After a non-empty match the
 * next search starts at its end. After an empty one it is over at the
 * subject's end; otherwise the same offset is tried again with
 * PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED, and if that fails the search
 * goes on, without options, one character further (a whole UTF-8
 * character in UTF mode; newlines are LF, so no CRLF rule). False if a
 * PCRE2 error stopped it. */
static bool reference_scan_run(fuzz_pattern *pattern, const uint8_t *subject, size_t size, size_t base,
                               match_list *list)
{
    size_t offset = 0;
    uint32_t options = 0;
    for (;;) {
        int rc = pcre2_match(pattern->reference, subject, size, offset, options, pattern->reference_data, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) {
            if (options == 0)
                return true;
            offset++;
            if (pattern->utf)
                while (offset < size && (subject[offset] & 0xC0) == 0x80)
                    offset++;
            options = 0;
            continue;
        }
        if (rc < 0) {
            list->stopped = true;
            list->stop_code = rc;
            return false;
        }
        PCRE2_SIZE *ovector = pcre2_get_ovector_pointer(pattern->reference_data);
        size_t start = ovector[0], end = ovector[1];
        if (end < start) {
            fprintf(stderr, "fuzz_metatags_scan: \\K in a lookahead; no pattern here has one\n");
            abort();
        }
        list_add(list, base + start, base + end);
        options = 0;
        if (start == end) {
            if (end == size)
                return true;
            options = PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED;
        }
        offset = end;
    }
}

/* The size of the valid UTF-8 character at p (RFC 3629: no overlong form,
 * surrogate or code point past U+10FFFF), or 0 if none starts there. Not
 * bytes.c's bytes_utf8_sequence: the reference shares no code with what
 * it checks. */
static size_t utf8_character_size(const uint8_t *p, size_t left)
{
    uint8_t lead = p[0], low = 0x80, high = 0xBF;
    size_t size;
    if (lead < 0x80)
        return 1;
    if (lead >= 0xC2 && lead <= 0xDF) {
        size = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        size = 3;
        low = lead == 0xE0 ? 0xA0 : low;
        high = lead == 0xED ? 0x9F : high;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        size = 4;
        low = lead == 0xF0 ? 0x90 : low;
        high = lead == 0xF4 ? 0x8F : high;
    } else {
        return 0;
    }
    if (left < size || p[1] < low || p[1] > high)
        return 0;
    for (size_t i = 2; i < size; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return size;
}

/* A (*UTF) pattern, which metatags compiles with PCRE2_MATCH_INVALID_UTF,
 * matches a page that is not all UTF-8 run by run: a byte that is not
 * UTF-8 matches nothing. Here each run of valid UTF-8 is a subject of its
 * own, as reference.py splits the decoded page (the pattern has no ^, $,
 * \b or lookbehind, which would see a run's edges otherwise). */
static void reference_scan(fuzz_pattern *pattern, const uint8_t *page, size_t size, match_list *list)
{
    if (!pattern->utf || size == 0) {
        reference_scan_run(pattern, page, size, 0, list);
        return;
    }
    size_t at = 0;
    for (;;) {
        size_t end = at, step;
        while (end < size && (step = utf8_character_size(page + end, size - end)) > 0)
            end += step;
        if (!reference_scan_run(pattern, page + at, end - at, at, list) || end == size)
            return;
        at = end;
        while (at < size && utf8_character_size(page + at, size - at) == 0)
            at++;
    }
}

typedef struct scan_collect {
    const uint8_t *page;
    match_list *list;
} scan_collect;

static int collect(const uint8_t *match, size_t size, void *user)
{
    scan_collect *collected = user;
    /* A NULL page is scanned as scan_page's own empty one: only 0 there. */
    size_t start = collected->page != NULL ? (size_t)(match - collected->page) : 0;
    list_add(collected->list, start, start + size);
    return 0;
}

/* ---- The check --------------------------------------------------------------- */

static void setup(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    for (size_t i = 0; i < PATTERN_COUNT; i++) {
        fuzz_pattern *pattern = &patterns[i];
        char message[256];
        if (scan_pattern_compile(&pattern->scan, pattern->text, pattern->caseless, message, sizeof message) != 0 ||
            (pattern->scanner = scanner_create(&pattern->scan)) == NULL) {
            fprintf(stderr, "fuzz_metatags_scan: %s: %s\n", pattern->text, message);
            abort();
        }
        /* As the manual says metatags compiles it: -i is PCRE2_CASELESS,
         * the newline is LF only, nothing else (and a (*UTF) pattern's
         * PCRE2_MATCH_INVALID_UTF is reference_scan's runs). */
        pcre2_compile_context *context = pcre2_compile_context_create(NULL);
        pcre2_set_newline(context, PCRE2_NEWLINE_LF);
        int error;
        PCRE2_SIZE error_offset;
        pattern->reference = pcre2_compile((PCRE2_SPTR)pattern->text, PCRE2_ZERO_TERMINATED,
                                           pattern->caseless ? PCRE2_CASELESS : 0, &error, &error_offset, context);
        pcre2_compile_context_free(context);
        if (pattern->reference == NULL) {
            fprintf(stderr, "fuzz_metatags_scan: %s does not compile\n", pattern->text);
            abort();
        }
        uint32_t all_options;
        pcre2_pattern_info(pattern->reference, PCRE2_INFO_ALLOPTIONS, &all_options);
        pattern->utf = (all_options & PCRE2_UTF) != 0;
        pattern->reference_data = pcre2_match_data_create_from_pattern(pattern->reference, NULL);
        if (pattern->reference_data == NULL) {
            fprintf(stderr, "fuzz_metatags_scan: out of memory\n");
            abort();
        }
    }
}

static void show_list(const char *who, const match_list *list, const uint8_t *page)
{
    fprintf(stderr, "  %s: %zu matches", who, list->count);
    if (list->stopped)
        fprintf(stderr, ", stopped by PCRE2 error %d", list->stop_code);
    fprintf(stderr, "\n");
    for (size_t i = 0; i < list->count && i < 20; i++) {
        fprintf(stderr, "    [%zu, %zu)", list->starts[i], list->ends[i]);
        for (size_t at = list->starts[i]; at < list->ends[i] && at < list->starts[i] + 32; at++)
            fprintf(stderr, " %02x", page[at]);
        fprintf(stderr, "\n");
    }
}

static void show_and_abort(const fuzz_pattern *pattern, const uint8_t *page, size_t size, const match_list *got,
                           const match_list *expected)
{
    fprintf(stderr, "fuzz_metatags_scan: scan_page differs from PCRE2's /g loop for %s%s, input of %zu bytes:",
            pattern->text, pattern->caseless ? " (caseless)" : "", size);
    for (size_t i = 0; i < size && i < 256; i++)
        fprintf(stderr, " %02x", page[i]);
    fprintf(stderr, "%s\n", size > 256 ? " ..." : "");
    show_list("scan_page", got, page);
    show_list("PCRE2 /g", expected, page);
    abort();
}

static void check_pattern(fuzz_pattern *pattern, const uint8_t *page, size_t size)
{
    static match_list got, expected;
    got.count = expected.count = 0;
    got.stopped = expected.stopped = false;
    got.stop_code = expected.stop_code = 0;
    static const uint8_t empty_page[1];
    scan_collect collected = {page, &got};
    scan_outcome outcome;
    if (scan_page(pattern->scanner, page, size, collect, &collected, &outcome) != 0) {
        fprintf(stderr, "fuzz_metatags_scan: scan_page returned non-zero\n");
        abort();
    }
    got.stopped = outcome.stopped_at >= 0;
    got.stop_code = outcome.stop_code;
    reference_scan(pattern, page != NULL ? page : empty_page, size, &expected);
    bool same = got.count == expected.count && got.stopped == expected.stopped &&
                got.stop_code == expected.stop_code;
    for (size_t i = 0; same && i < got.count; i++)
        same = got.starts[i] == expected.starts[i] && got.ends[i] == expected.ends[i];
    if (!same)
        show_and_abort(pattern, page != NULL ? page : empty_page, size, &got, &expected);

    /* The worker's way: the page surveyed first, its candidates used. */
    static page_survey survey;
    got.count = 0;
    got.stopped = false;
    got.stop_code = 0;
    bytes_survey(pattern->scan.has_prefix ? &pattern->scan.finder : NULL, page != NULL ? page : empty_page, size,
                 &survey);
    if (scan_surveyed_page(pattern->scanner, page, size, &survey, collect, &collected, &outcome) != 0) {
        fprintf(stderr, "fuzz_metatags_scan: scan_surveyed_page returned non-zero\n");
        abort();
    }
    got.stopped = outcome.stopped_at >= 0;
    got.stop_code = outcome.stop_code;
    same = got.count == expected.count && got.stopped == expected.stopped && got.stop_code == expected.stop_code;
    for (size_t i = 0; same && i < got.count; i++)
        same = got.starts[i] == expected.starts[i] && got.ends[i] == expected.ends[i];
    if (!same) {
        fprintf(stderr, "fuzz_metatags_scan: (after bytes_survey)\n");
        show_and_abort(pattern, page != NULL ? page : empty_page, size, &got, &expected);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    for (size_t i = 0; i < PATTERN_COUNT; i++)
        check_pattern(&patterns[i], data, size);
    return 0;
}

/* ---- Fixed inputs -------------------------------------------------------- */

/* An exact copy in a buffer of its own size, so that ASan sees any read
 * past the page (the vector loops read 16 or 32 bytes at a time). */
static void check_copy(const void *data, size_t size)
{
    uint8_t *copy = malloc(size > 0 ? size : 1);
    if (copy == NULL) {
        fprintf(stderr, "fuzz_metatags_scan: out of memory\n");
        abort();
    }
    if (size > 0)
        memcpy(copy, data, size);
    LLVMFuzzerTestOneInput(copy, size);
    free(copy);
}

static const char *const tricky[] = {
    "", "<", "<meta", "<meta ", "<meta >", "<meta>", "<meta x>", "<META x>", "<MeTa\tx>", "<meta \n>",
    "<meta \r>", "<meta <meta a>>", "<meta a><meta b>", "<meta a>\n<meta b", "<meta a\n<meta b>",
    "<<meta >", "<meta\n>", "abc", "a<b>c", "\xc3\xa9", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80>x",
    "\xe2\x82", "\xc3", "\xff", "\xed\xa0\x80", "<meta \xc3\xa9>", "<Meta\n\n>>", "\n\n", "é<meta é>é",
};

static void run_fixed(void)
{
    LLVMFuzzerTestOneInput(NULL, 0);
    for (size_t i = 0; i < sizeof tricky / sizeof tricky[0]; i++)
        check_copy(tricky[i], strlen(tricky[i]));
    check_copy("<meta \0>", 8); /* a NUL */

    /* A tag at every offset of pages of every size up to 80 bytes: the
     * ends of the 16- and 32-byte steps, cut tags at the page's end. */
    static const char tag[] = "<META b\xc3\xa9>";
    uint8_t page[80];
    for (size_t size = 0; size <= sizeof page; size++) {
        for (size_t at = 0; at <= size; at++) {
            memset(page, 'a', size);
            size_t room = size - at < sizeof tag - 1 ? size - at : sizeof tag - 1;
            memcpy(page + at, tag, room);
            check_copy(page, size);
        }
    }

    /* A tag left open for more than METATAGS_LONG_TAG_BYTES of its line. */
    size_t long_size = METATAGS_LONG_TAG_BYTES + 100;
    uint8_t *long_page = malloc(long_size);
    if (long_page == NULL) {
        fprintf(stderr, "fuzz_metatags_scan: out of memory\n");
        abort();
    }
    memset(long_page, 'x', long_size);
    memcpy(long_page + 10, "<meta ", 6);
    memcpy(long_page + long_size - 20, "\n<meta a>", 9);
    /* Only the patterns with a literal start, which is where tags are
     * measured. */
    for (size_t i = 0; i < PATTERN_COUNT; i++)
        if (patterns[i].scan.has_prefix)
            check_pattern(&patterns[i], long_page, long_size);
    free(long_page);
}

#ifdef HPOOL_LIBFUZZER
/* libFuzzer calls this once, before its own inputs. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setup();
    run_fixed();
    return 0;
}
#else
/* ---- The plain driver: fixed inputs, the pages named, then COUNT random ones ---- */

static uint64_t random_state = 14; /* fixed: a failure repeats */

static uint64_t next_random(void)
{
    /* xorshift64* */
    random_state ^= random_state >> 12;
    random_state ^= random_state << 25;
    random_state ^= random_state >> 27;
    return random_state * 0x2545F4914F6CDD1DULL;
}

/* What pages are made of, for the patterns above. */
static const char *const pieces[] = {
    "<meta ", "<META ", "<Meta\t", "<meta", "<", ">", ">", "\n", "\r\n", " ", "a", "x", "m", "name=\"",
    "\"", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "<html>", "<head>", "\t",
};
#define PIECE_COUNT (sizeof pieces / sizeof pieces[0])

typedef struct page_bytes {
    uint8_t *data;
    size_t size;
} page_bytes;

static int read_page(const char *path, page_bytes *page)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        return -1;
    page->data = NULL;
    page->size = 0;
    size_t capacity = 0;
    for (;;) {
        if (page->size == capacity) {
            capacity = capacity ? 2 * capacity : 4096;
            page->data = realloc(page->data, capacity);
            if (page->data == NULL) {
                fclose(file);
                return -1;
            }
        }
        size_t got = fread(page->data + page->size, 1, capacity - page->size, file);
        if (got == 0)
            break;
        page->size += got;
    }
    int failed = ferror(file);
    fclose(file);
    return failed ? -1 : 0;
}

static uint8_t input[70000];

/* Appends a random piece, or now and then a random byte, at size. */
static size_t add_piece(size_t size)
{
    uint64_t r = next_random();
    if (size >= sizeof input)
        return size;
    if (r % 32 == 0) {
        input[size] = (uint8_t)(r >> 8);
        return size + 1;
    }
    const char *piece = pieces[(r >> 8) % PIECE_COUNT];
    size_t length = strlen(piece);
    if (size + length > sizeof input)
        return size;
    memcpy(input + size, piece, length);
    return size + length;
}

/* A seed page with a few pieces put in, bytes changed or a range cut. */
static size_t mutate(const page_bytes *seed)
{
    size_t size = seed->size < sizeof input / 2 ? seed->size : sizeof input / 2;
    memcpy(input, seed->data, size);
    int edits = 1 + (int)(next_random() % 6);
    for (int i = 0; i < edits; i++) {
        uint64_t r = next_random();
        size_t at = size > 0 ? (size_t)(next_random() % (size + 1)) : 0;
        if (r % 3 == 0 && size + 8 <= sizeof input) {
            /* a piece inserted at at */
            static uint8_t rest[sizeof input];
            size_t tail = size - at;
            memcpy(rest, input + at, tail);
            size_t end = add_piece(at);
            memcpy(input + end, rest, tail < sizeof input - end ? tail : sizeof input - end);
            size = end + (tail < sizeof input - end ? tail : sizeof input - end);
        } else if (r % 3 == 1 && at < size) {
            input[at] = (uint8_t)(r >> 16);
        } else if (at < size) {
            size_t cut = (size_t)(next_random() % (size - at + 1));
            memmove(input + at, input + at + cut, size - at - cut);
            size -= cut;
        }
    }
    return size;
}

int main(int argc, char **argv)
{
    long count = argc > 1 ? strtol(argv[1], NULL, 10) : 100000;
    setup();
    run_fixed();
    int seed_count = argc > 2 ? argc - 2 : 0;
    page_bytes *seeds = calloc((size_t)seed_count + 1, sizeof *seeds);
    for (int i = 0; i < seed_count; i++) {
        if (read_page(argv[i + 2], &seeds[i]) != 0) {
            fprintf(stderr, "fuzz_metatags_scan: cannot read %s\n", argv[i + 2]);
            return 1;
        }
        check_copy(seeds[i].data, seeds[i].size);
    }
    for (long i = 0; i < count; i++) {
        uint64_t shape = next_random();
        size_t size = 0;
        if (seed_count > 0 && shape % 4 == 0) {
            size = mutate(&seeds[(shape >> 8) % (uint64_t)seed_count]);
        } else {
            /* Mostly short pages; one in 64 long, across many vector steps. */
            size_t pieces_wanted = shape % 64 == 0 ? (size_t)(next_random() % 8000) : (size_t)(next_random() % 40);
            for (size_t piece = 0; piece < pieces_wanted; piece++)
                size = add_piece(size);
        }
        check_copy(input, size);
    }
    printf("fuzz_metatags_scan: %zu patterns over fixed inputs, %d seed pages and %ld random pages agree with "
           "PCRE2's /g loop\n",
           PATTERN_COUNT, seed_count, count);
    for (int i = 0; i < seed_count; i++)
        free(seeds[i].data);
    free(seeds);
    return 0;
}
#endif
