/* parse.h: what a line of square's --input may hold: one int64, at most SQUARE_LINE_LIMIT bytes; parsed without hpool, so the fuzz target links it alone. */
#ifndef SQUARE_PARSE_H
#define SQUARE_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* The longest --input line, without its "\n" or "\r\n". An int64 needs at
 * most 20 characters; the rest is room for blanks. A longer line is a bad
 * line (LINE_TOO_LONG): the reader keeps only its first SQUARE_LINE_LIMIT + 1
 * bytes, so a line of 300 MB, or /dev/zero behind a pipe, costs no memory. */
#define SQUARE_LINE_LIMIT 4096


/* Why a line is bad: what a map function returns for it. */
enum {
    LINE_NOT_AN_INTEGER = 1,
    LINE_INTEGER_OVERFLOW = 2,
    LINE_TOO_LONG = 3
};

/* Parses bytes [text, text+size) as a decimal int64: an optional sign,
 * optional blanks (spaces, tabs) around it, nothing else. Returns 0,
 * LINE_NOT_AN_INTEGER or LINE_INTEGER_OVERFLOW; *value is set only on 0. */
int square_parse_int64(const char *text, size_t size, int64_t *value);

/* An --input line: LINE_TOO_LONG if size > SQUARE_LINE_LIMIT (the reader
 * hands such a line over cut to SQUARE_LINE_LIMIT + 1 bytes), else as
 * square_parse_int64(). */
int square_parse_line(const char *text, size_t size, int64_t *value);

/* What each code means, for "FILE:LINE: TEXT" on stderr. */
const char *square_line_failure_text(int code);

#endif
