/* fuzz_square_parse.c: square's --input line parser and line reader against simple references (strtoll, a split on '\n'), as a libFuzzer target or a plain driver of fixed and seeded random inputs. */
#define _POSIX_C_SOURCE 200809L /* pwrite, ftruncate, fileno */
#include "lines.h"
#include "parse.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- The references ------------------------------------------------------- */

static int is_blank(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* What a line should parse to, by strtoll: the bytes between the blanks must
 * be a sign and digits, which strtoll then reads, saying ERANGE on overflow. */
static int reference_parse_line(const unsigned char *text, size_t size, int64_t *value)
{
    if (size > SQUARE_LINE_LIMIT)
        return LINE_TOO_LONG;
    size_t first = 0, end = size;
    while (first < end && is_blank(text[first]))
        first++;
    while (end > first && is_blank(text[end - 1]))
        end--;
    size_t digits_from = first < end && (text[first] == '+' || text[first] == '-') ? first + 1 : first;
    if (digits_from == end)
        return LINE_NOT_AN_INTEGER;
    for (size_t at = digits_from; at < end; at++)
        if (text[at] < '0' || text[at] > '9')
            return LINE_NOT_AN_INTEGER;
    char copy[SQUARE_LINE_LIMIT + 1];
    memcpy(copy, text + first, end - first);
    copy[end - first] = '\0';
    errno = 0;
    char *stop;
    long long parsed = strtoll(copy, &stop, 10);
    if (errno == ERANGE)
        return LINE_INTEGER_OVERFLOW;
    if (errno != 0 || *stop != '\0') {
        fprintf(stderr, "reference: strtoll refused '%s'\n", copy);
        abort();
    }
    *value = (int64_t)parsed;
    return 0;
}

static void show_and_abort(const char *what, const unsigned char *data, size_t size)
{
    fprintf(stderr, "fuzz_square_parse: %s, input of %zu bytes:", what, size);
    for (size_t i = 0; i < size && i < 256; i++)
        fprintf(stderr, " %02x", data[i]);
    fprintf(stderr, "%s\n", size > 256 ? " ..." : "");
    abort();
}

static void check_parse(const unsigned char *data, size_t size)
{
    int64_t got = 0, expected = 0;
    int got_code = square_parse_line((const char *)data, size, &got);
    int expected_code = reference_parse_line(data, size, &expected);
    if (got_code != expected_code)
        show_and_abort("square_parse_line's code differs from strtoll's", data, size);
    if (got_code == 0 && got != expected)
        show_and_abort("square_parse_line's value differs from strtoll's", data, size);
}

/* ---- The line reader --------------------------------------------------------- */

static FILE *scratch; /* one file for every input, rewritten each time */

/* The reader's lines must be the input cut at each '\n' (a last piece
 * without one included), one trailing '\r' dropped, and a line longer than
 * SQUARE_LINE_LIMIT cut to SQUARE_LINE_LIMIT + 1 bytes, in the raw bytes
 * of the line (a cut line keeps what would have been a '\r'). */
static void check_lines(const unsigned char *data, size_t size)
{
    if (scratch == NULL && (scratch = tmpfile()) == NULL) {
        perror("fuzz_square_parse: tmpfile");
        abort();
    }
    int fd = fileno(scratch);
    if (ftruncate(fd, 0) != 0 || (size > 0 && pwrite(fd, data, size, 0) != (ssize_t)size) ||
        lseek(fd, 0, SEEK_SET) != 0) {
        perror("fuzz_square_parse: scratch file");
        abort();
    }
    static line_reader reader; /* 68 KiB: not on the stack */
    line_reader_init(&reader, fd);
    size_t at = 0;
    uint64_t lines = 0;
    for (;;) {
        const char *line;
        size_t line_size;
        int rc = line_reader_next(&reader, &line, &line_size);
        if (rc < 0)
            show_and_abort("the reader failed to read a file", data, size);
        if (rc == 0)
            break;
        if (at >= size)
            show_and_abort("the reader gave a line after the end", data, size);
        const unsigned char *newline = memchr(data + at, '\n', size - at);
        size_t raw = newline != NULL ? (size_t)(newline - (data + at)) : size - at;
        size_t expected = raw;
        if (raw > SQUARE_LINE_LIMIT + 1)
            expected = SQUARE_LINE_LIMIT + 1;
        else if (raw > 0 && data[at + raw - 1] == '\r')
            expected = raw - 1;
        if (line_size != expected || memcmp(line, data + at, expected) != 0)
            show_and_abort("a line differs from the split", data, size);
        check_parse((const unsigned char *)line, line_size);
        lines++;
        at += raw + (newline != NULL);
    }
    if (at != size)
        show_and_abort("the reader ended early", data, size);
    if (reader.line_number != lines)
        show_and_abort("the reader's line count is wrong", data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_parse(data, size);
    check_lines(data, size);
    return 0;
}

/* ---- Fixed inputs -------------------------------------------------------- */

/* Each is checked whole, as a line and as a file. */
static const char *const tricky[] = {
    "", "0", "-0", "+0", "-", "+", "+-1", "--1", " ", "\t", " 7 ", "\t-7\t", "7 7", "1.5", "0x10", "1e3",
    "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
    "00000000000000000000000009223372036854775807", "99999999999999999999999999", "12abc",
    "\r", "7\r", "7\r\r", "\n", "\n\n", "1\n2", "1\r\n2\r\n", "\r\n", "1\n\r\n3", " +5\n-6 \n",
    "\v1", "1\f", "\xff", "\xc2\xa0" "1",
};

static void run_fixed(void)
{
    for (size_t i = 0; i < sizeof tricky / sizeof tricky[0]; i++)
        LLVMFuzzerTestOneInput((const uint8_t *)tricky[i], strlen(tricky[i]));
    LLVMFuzzerTestOneInput((const uint8_t *)"1\0" "2\n3", 5); /* a NUL */

    /* Lines at the limit: 4095 blanks and a digit (good), with "\r" (good),
     * 4096 blanks and a digit (too long), with "\r" (too long, cut before
     * it), and a line of 300 KB across the reader's 64 KiB buffers. */
    static unsigned char big[300000 + 16];
    const size_t lengths[] = {SQUARE_LINE_LIMIT - 1, SQUARE_LINE_LIMIT, SQUARE_LINE_LIMIT + 1, 300000};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        for (int carriage_return = 0; carriage_return < 2; carriage_return++) {
            size_t n = 0;
            big[n++] = '1';
            big[n++] = '\n';
            memset(big + n, ' ', lengths[i]);
            n += lengths[i];
            big[n++] = '9';
            if (carriage_return)
                big[n++] = '\r';
            big[n++] = '\n';
            big[n++] = '3';
            LLVMFuzzerTestOneInput(big, n);
        }
    }
    /* 4096 bytes, a "\r" as byte 4097, then more: too long, not a line of
     * 4096 with a CRLF. */
    memset(big, ' ', SQUARE_LINE_LIMIT - 1);
    memcpy(big + SQUARE_LINE_LIMIT - 1, "9\r9\n", 4);
    LLVMFuzzerTestOneInput(big, SQUARE_LINE_LIMIT + 3);
}

#ifdef HPOOL_LIBFUZZER
/* libFuzzer calls this once, before its own inputs. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    run_fixed();
    return 0;
}
#else
/* ---- The plain driver: fixed inputs, then COUNT random ones ---------------- */

static uint64_t random_state = 14; /* fixed: a failure repeats */

static uint64_t next_random(void)
{
    /* xorshift64* */
    random_state ^= random_state >> 12;
    random_state ^= random_state << 25;
    random_state ^= random_state >> 27;
    return random_state * 0x2545F4914F6CDD1DULL;
}

int main(int argc, char **argv)
{
    long count = argc > 1 ? strtol(argv[1], NULL, 10) : 100000;
    run_fixed();
    /* Mostly the bytes a line of numbers is made of, so that inputs get past
     * the first check; sometimes any byte; sometimes long runs. */
    static const char alphabet[] = "0123456789000999+- \t\r\n\n";
    static unsigned char input[140000];
    for (long i = 0; i < count; i++) {
        uint64_t shape = next_random();
        size_t size = shape % 8 == 0 ? (size_t)(next_random() % sizeof input) : (size_t)(next_random() % 48);
        for (size_t at = 0; at < size; at++) {
            uint64_t r = next_random();
            if (r % 64 == 0 && size > 5000) {
                size_t run = (size_t)(next_random() % 5000);
                if (run > size - at)
                    run = size - at;
                memset(input + at, r % 128 == 0 ? '0' : ' ', run);
                at += run - (run > 0);
                continue;
            }
            input[at] = r % 16 == 0 ? (unsigned char)(r >> 8) : (unsigned char)alphabet[(r >> 8) % (sizeof alphabet - 1)];
        }
        LLVMFuzzerTestOneInput(input, size);
    }
    printf("fuzz_square_parse: %zu fixed inputs and %ld random ones agree with the references\n",
           sizeof tricky / sizeof tricky[0] + 10, count);
    return 0;
}
#endif
