/* scan.c: the pattern, compiled once and JIT-ed, and Python's re.findall over a page's bytes. */
#include "metatags.h"

#include <stdlib.h>
#include <string.h>

/* PCRE2's own default, set here so the limit is a documented part of the
 * tool rather than a property of how Debian built the library. */
#define SCAN_MATCH_LIMIT 10000000u

struct scanner {
    const scan_pattern *pattern;
    pcre2_match_data *match_data;
    pcre2_match_context *context;
    pcre2_jit_stack *jit_stack;
};

/* The literal every match starts with, read from the pattern text: the
 * characters up to the first one with a meaning in PCRE2 syntax. A
 * quantifier after the literal takes its last character away, and any
 * alternation anywhere gives up (a match might then start otherwise). */
static size_t leading_literal(const char *text, uint8_t *literal, size_t capacity)
{
    if (strchr(text, '|') != NULL)
        return 0;
    size_t size = 0;
    while (text[size] != '\0' && strchr("\\^$.[]()?*+{}", text[size]) == NULL && size < capacity) {
        literal[size] = (uint8_t)text[size];
        size++;
    }
    char next = text[size];
    if (size > 0 && (next == '?' || next == '*' || next == '{'))
        size--;
    return size;
}

static pcre2_code *compile(const char *text, uint32_t options, char *message, size_t size)
{
    pcre2_compile_context *context = pcre2_compile_context_create(NULL);
    if (context == NULL) {
        snprintf(message, size, "out of memory");
        return NULL;
    }
    /* Python's "." stops only at \n; so does PCRE2's with LF newlines. */
    pcre2_set_newline(context, PCRE2_NEWLINE_LF);
    int error;
    PCRE2_SIZE offset;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)text, PCRE2_ZERO_TERMINATED, options, &error, &offset, context);
    pcre2_compile_context_free(context);
    if (code == NULL) {
        PCRE2_UCHAR text_of_error[256];
        pcre2_get_error_message(error, text_of_error, sizeof text_of_error);
        snprintf(message, size, "%s at offset %zu", (const char *)text_of_error, (size_t)offset);
        return NULL;
    }
    /* Without JIT support PCRE2 interprets the pattern: slower, same answers. */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    return code;
}

int scan_pattern_compile(scan_pattern *pattern, const char *text, bool caseless, char *message, size_t size)
{
    memset(pattern, 0, sizeof *pattern);
    uint32_t options = caseless ? PCRE2_CASELESS : 0;
    pattern->code = compile(text, options, message, size);
    if (pattern->code == NULL)
        return -1;
    uint32_t all_options = 0;
    pcre2_pattern_info(pattern->code, PCRE2_INFO_ALLOPTIONS, &all_options);
    pattern->utf = (all_options & PCRE2_UTF) != 0;
    if (pattern->utf) {
        /* A pattern in UTF mode ((*UTF)) again, to match pages that are
         * not all UTF-8 too: otherwise PCRE2 refuses the whole page at its
         * first stray byte, and the matches before it are lost. With
         * PCRE2_MATCH_INVALID_UTF a stray byte matches nothing, so no
         * match crosses it and every match is valid UTF-8. */
        options |= PCRE2_MATCH_INVALID_UTF;
        pcre2_code_free(pattern->code);
        if ((pattern->code = compile(text, options, message, size)) == NULL)
            return -1;
    }
    uint8_t literal[sizeof pattern->finder.bytes];
    size_t literal_size = leading_literal(text, literal, sizeof literal);
    if (literal_size > 0) {
        pattern->anchored = compile(text, options | PCRE2_ANCHORED, message, size);
        if (pattern->anchored == NULL) {
            scan_pattern_free(pattern);
            return -1;
        }
        pattern->has_prefix = true;
        bytes_finder_init(&pattern->finder, literal, literal_size, caseless);
        pattern->line_bounded = strcmp(text, "<meta .*?>") == 0;
    }
    return 0;
}

void scan_pattern_free(scan_pattern *pattern)
{
    pcre2_code_free(pattern->code);
    pcre2_code_free(pattern->anchored);
    pattern->code = pattern->anchored = NULL;
}

scanner *scanner_create(const scan_pattern *pattern)
{
    scanner *scanner = calloc(1, sizeof *scanner);
    if (scanner == NULL)
        return NULL;
    scanner->pattern = pattern;
    scanner->match_data = pcre2_match_data_create_from_pattern(pattern->code, NULL);
    scanner->context = pcre2_match_context_create(NULL);
    scanner->jit_stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, NULL);
    if (scanner->match_data == NULL || scanner->context == NULL || scanner->jit_stack == NULL) {
        scanner_free(scanner);
        return NULL;
    }
    pcre2_set_match_limit(scanner->context, SCAN_MATCH_LIMIT);
    pcre2_jit_stack_assign(scanner->context, NULL, scanner->jit_stack);
    return scanner;
}

void scanner_free(scanner *scanner)
{
    if (scanner == NULL)
        return;
    pcre2_match_data_free(scanner->match_data);
    pcre2_match_context_free(scanner->context);
    pcre2_jit_stack_free(scanner->jit_stack);
    free(scanner);
}

/* One match attempt; 1 with [*start, *end), 0 for none, or PCRE2's error. */
static int match_once(scanner *scanner, const pcre2_code *code, const uint8_t *page, size_t size, size_t offset,
                      uint32_t flags, size_t *start, size_t *end)
{
    int rc = pcre2_match(code, page, size, offset, flags, scanner->match_data, scanner->context);
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    if (rc < 0)
        return rc;
    PCRE2_SIZE *ovector = pcre2_get_ovector_pointer(scanner->match_data);
    *start = ovector[0];
    *end = ovector[1];
    if (*end < *start) /* \K in a lookahead: no sensible match */
        *end = *start;
    return 1;
}

static void stop(scan_outcome *outcome, size_t offset, int code)
{
    outcome->stopped_at = (int64_t)offset;
    outcome->stop_code = code;
}

/* Patterns without a literal start: PCRE2 searches the whole page.
 * After an empty match the next search starts at the same offset with
 * PCRE2_NOTEMPTY_ATSTART, not anchored: a non-empty match may start where
 * the empty one did (Python 3.7+), and otherwise PCRE2 itself moves on, by
 * a whole character in UTF mode, where stepping one byte would land inside
 * a character ("bad offset into UTF string"). The start offset stays where
 * the last match ended, so \G holds only there: one empty match for \G, as
 * in Perl, not one at every position. */
/* Whether offset lies between two bytes that are not UTF-8, where PCRE2
 * (PCRE2_MATCH_INVALID_UTF) sees an empty run of text between each two
 * stray bytes and so finds empty matches there. A page of UTF-8 runs
 * between stray bytes has an empty match at each end of a run, as
 * Python's re on each run has, and none inside the stray bytes. */
static bool inside_stray_bytes(const uint8_t *page, size_t size, size_t offset)
{
    if (offset == 0 || offset >= size || bytes_utf8_sequence(page + offset, size - offset) != 0)
        return false;
    for (size_t back = 1; back <= 4 && back <= offset; back++)
        if (bytes_utf8_sequence(page + offset - back, back) == back)
            return false; /* a character ends just before offset */
    return true;
}

static int scan_everywhere(scanner *scanner, const uint8_t *page, size_t size, scan_match_fn *on_match, void *user,
                           scan_outcome *outcome)
{
    const scan_pattern *pattern = scanner->pattern;
    size_t offset = 0;
    bool after_empty = false;
    while (offset <= size) {
        size_t start, end;
        int rc = match_once(scanner, pattern->code, page, size, offset, after_empty ? PCRE2_NOTEMPTY_ATSTART : 0,
                            &start, &end);
        if (after_empty && pattern->utf && rc >= 0 && (rc == 0 || start != offset)) {
            /* No match that starts where the empty one was: the search
             * goes on a character further, from there. PCRE2 10.42 steps
             * past a character and then past the stray bytes after it,
             * and so misses the empty match where its run of UTF-8 ends
             * (PCRE2 pull request 945, 2026, fixed it upstream). */
            size_t character = offset < size ? bytes_utf8_sequence(page + offset, size - offset) : 1;
            offset += character > 0 ? character : 1;
            after_empty = false;
            if (offset > size)
                break;
            rc = match_once(scanner, pattern->code, page, size, offset, 0, &start, &end);
        }
        if (rc == 0)
            break;
        if (rc < 0) {
            stop(outcome, offset, rc);
            return 0;
        }
        after_empty = end == start;
        offset = end;
        if (after_empty && pattern->utf && inside_stray_bytes(page, size, start))
            continue;
        int status = on_match(page + start, end - start, user);
        if (status != 0)
            return status;
    }
    return 0;
}

/* Patterns with a literal start: the literal is found 16 bytes at a time,
 * and PCRE2 runs anchored only where it is. */
static int scan_from_literals(scanner *scanner, const uint8_t *page, size_t size, page_survey *survey,
                              scan_match_fn *on_match, void *user, scan_outcome *outcome)
{
    const scan_pattern *pattern = scanner->pattern;
    size_t position = 0;
    size_t line_end = 0; /* the end of the line of the last failed tag */
    while (position < size) {
        size_t candidate = survey != NULL ? bytes_find_surveyed(&pattern->finder, survey, page, size, position)
                                          : bytes_find(&pattern->finder, page, size, position);
        if (candidate >= size)
            break;
        size_t start, end;
        int rc = match_once(scanner, pattern->anchored, page, size, candidate, 0, &start, &end);
        /* Each line's end is looked for once, so a long line full of
         * failed tags still costs linear time. */
        if (rc <= 0 && candidate >= line_end) {
            const uint8_t *newline = memchr(page + candidate, '\n', size - candidate);
            line_end = newline != NULL ? (size_t)(newline - page) : size;
        }
        if (rc < 0 && pattern->line_bounded) {
            /* PCRE2 counts each byte the lazy .*? takes against the match
             * limit, so a tag open for 10 MB on one line would stop the
             * page. This pattern's match is plain to see: the literal,
             * then up to the first '>' of its line. */
            const uint8_t *close = memchr(page + candidate + pattern->finder.size, '>',
                                          line_end - candidate - pattern->finder.size);
            rc = close != NULL ? 1 : 0;
            start = candidate;
            end = close != NULL ? (size_t)(close - page) + 1 : candidate;
        }
        if (rc < 0) {
            stop(outcome, candidate, rc);
            return 0;
        }
        if (rc == 0) {
            if (line_end - candidate > METATAGS_LONG_TAG_BYTES && outcome->long_tag_at < 0) {
                outcome->long_tag_at = (int64_t)candidate;
                outcome->long_tag_bytes = line_end - candidate;
            }
            position = pattern->line_bounded ? line_end : candidate + 1;
            continue;
        }
        int status = on_match(page + start, end - start, user);
        if (status != 0)
            return status;
        position = end > candidate ? end : candidate + 1;
    }
    return 0;
}

int scan_surveyed_page(scanner *scanner, const uint8_t *page, size_t size, page_survey *survey,
                       scan_match_fn *on_match, void *user, scan_outcome *outcome)
{
    outcome->long_tag_at = -1;
    outcome->long_tag_bytes = 0;
    outcome->stopped_at = -1;
    outcome->stop_code = 0;
    static const uint8_t empty_page[1];
    if (page == NULL)
        page = empty_page;
    if (scanner->pattern->has_prefix)
        return scan_from_literals(scanner, page, size, survey, on_match, user, outcome);
    return scan_everywhere(scanner, page, size, on_match, user, outcome);
}

int scan_page(scanner *scanner, const uint8_t *page, size_t size, scan_match_fn *on_match, void *user,
              scan_outcome *outcome)
{
    return scan_surveyed_page(scanner, page, size, NULL, on_match, user, outcome);
}
