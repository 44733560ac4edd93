/* square.h: what the square app's files share: the kernel's tables, the output writer, the settings and the run. */
#ifndef SQUARE_H
#define SQUARE_H

#include "parse.h"

#include <hpool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- The kernel (square.c) ---------------------------------------------- */

/* |x| as a uint64, defined for INT64_MIN too. */
static inline uint64_t square_magnitude(int64_t x)
{
    return x < 0 ? 0 - (uint64_t)x : (uint64_t)x;
}

/* What --input delivers per line: x and its exact square, split into two
 * uint64 halves. */
typedef struct square_of_line {
    int64_t x;
    uint64_t square_low;
    uint64_t square_high;
} square_of_line;

/* The function table, the same on every rank: calls name functions by
 * these indexes. */
enum {
    FUNCTION_SQUARE_RANGE,         /* span of 1..N -> uint64 or unsigned __int128 squares */
    FUNCTION_SUM_SQUARES_RANGE,    /* span of 1..N -> added into a REDUCER_SUM_UINT64 */
    FUNCTION_SQUARE_LINE,          /* a line -> square_of_line */
    FUNCTION_SQUARE_LINE_MOD_2_64, /* a line -> its square mod 2^64, for --sum */
    SQUARE_FUNCTION_COUNT
};
extern const hpool_function square_functions[SQUARE_FUNCTION_COUNT];

enum {
    REDUCER_SUM_UINT64, /* a sum modulo 2^64 */
    SQUARE_REDUCER_COUNT
};
extern const hpool_reducer square_reducers[SQUARE_REDUCER_COUNT];

/* ---- stdout (output.c) ---------------------------------------------------- */

/* A buffer of whole lines, written to stdout in large blocks. Lines are
 * appended with output_reserve_line, then output_* calls, then '\n'. */
typedef struct output {
    char buffer[1 << 16];
    size_t used;
    int failed; /* a write failed: errno was saved in write_errno */
    int write_errno;
} output;

/* The longest line appended: a 20-character int64, a tab, a 39-digit
 * unsigned __int128 and a newline. */
enum { OUTPUT_LONGEST_LINE = 64 };

/* Writes what is buffered to stdout and empties the buffer; after a failed
 * write, discards instead (out->failed says so). */
void output_flush(output *out);

/* Makes room for one more line of at most OUTPUT_LONGEST_LINE bytes. */
static inline void output_reserve_line(output *out)
{
    if (sizeof out->buffer - out->used < OUTPUT_LONGEST_LINE)
        output_flush(out);
}

static inline void output_char(output *out, char c)
{
    out->buffer[out->used++] = c;
}

void output_uint64(output *out, uint64_t value);
void output_int64(output *out, int64_t value);
/* Every digit, exactly: 2^128 - 1 has 39. */
void output_uint128(output *out, unsigned __int128 value);

/* ---- The command line (main.c) and the run (run.c) ----------------------- */

typedef struct settings {
    int unordered;
    int sum;
    const char *input_path; /* NULL: square 1..last */
    int64_t last;
    size_t chunksize; /* 0: let the pool adapt it */
    int threads;      /* 0: from the environment */
    const char *journal_path; /* --journal: NULL for none */
} settings;

/* Starts the pool, does the work on the root (the other ranks serve), and
 * returns the exit status. */
int square_run(const settings *settings);

#endif
