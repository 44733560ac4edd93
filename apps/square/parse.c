/* parse.c: the integer on an --input line (or in N), parsed strictly: no strtoll, no locale, no NUL terminator needed. */
#include "parse.h"

/* "4096" from SQUARE_LINE_LIMIT, for the message. */
#define SQUARE_STRING(x) #x
#define SQUARE_EXPAND(x) SQUARE_STRING(x)

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Hand-written instead of strtoll because an item is not NUL-terminated, and
 * strtoll accepts more than a line of numbers should hold (0x, newlines). */
int square_parse_int64(const char *text, size_t size, int64_t *value)
{
    size_t at = 0;
    while (at < size && is_blank(text[at]))
        at++;
    int negative = 0;
    if (at < size && (text[at] == '+' || text[at] == '-')) {
        negative = text[at] == '-';
        at++;
    }
    /* The magnitude of INT64_MIN is one more than INT64_MAX. */
    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t magnitude = 0;
    size_t digits = 0;
    int overflow = 0;
    for (; at < size && text[at] >= '0' && text[at] <= '9'; at++, digits++) {
        unsigned digit = (unsigned)(text[at] - '0');
        if (magnitude > (limit - digit) / 10)
            overflow = 1; /* keep scanning: trailing junk still makes it "not an integer" */
        else
            magnitude = magnitude * 10 + digit;
    }
    while (at < size && is_blank(text[at]))
        at++;
    if (digits == 0 || at != size)
        return LINE_NOT_AN_INTEGER;
    if (overflow)
        return LINE_INTEGER_OVERFLOW;
    /* Negate in unsigned arithmetic so INT64_MIN does not overflow. */
    *value = negative ? (int64_t)(0 - magnitude) : (int64_t)magnitude;
    return 0;
}

int square_parse_line(const char *text, size_t size, int64_t *value)
{
    if (size > SQUARE_LINE_LIMIT)
        return LINE_TOO_LONG;
    return square_parse_int64(text, size, value);
}

const char *square_line_failure_text(int code)
{
    switch (code) {
    case LINE_NOT_AN_INTEGER:
        return "not an integer";
    case LINE_INTEGER_OVERFLOW:
        return "integer overflow";
    case LINE_TOO_LONG:
        return "line longer than " SQUARE_EXPAND(SQUARE_LINE_LIMIT) " bytes";
    default:
        return "failed";
    }
}
