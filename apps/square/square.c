/* square.c: square's kernel on hpool: the map functions (x -> x², exact to 128 bits) and the reduce (a sum mod 2^64). */
#include "square.h"

#include <string.h>

/* ---- Map functions ------------------------------------------------------ */

/* Results are copied in and out with memcpy throughout: the framework
 * promises no alignment for result slots or accumulators. */

/* Squares a span of a range source. The caller asks for 8-byte results when
 * every square fits in 64 bits (N < 2^32), halving what travels between
 * ranks, and for 16-byte unsigned __int128 results otherwise. */
static int square_range_span(hpool_span *span, void *user)
{
    unsigned char *results = span->results;
    int64_t first = span->range_first;
    if (span->result_size == sizeof(uint64_t)) {
        for (size_t i = 0; i < span->count; i++) {
            uint64_t x = square_magnitude(first + (int64_t)i);
            uint64_t square = x * x;
            memcpy(results + i * sizeof square, &square, sizeof square);
        }
    } else {
        for (size_t i = 0; i < span->count; i++) {
            uint64_t x = square_magnitude(first + (int64_t)i);
            unsigned __int128 square = (unsigned __int128)x * x;
            memcpy(results + i * sizeof square, &square, sizeof square);
        }
    }
    return 0;
}

/* Adds the squares of a span of a range source into a uint64 accumulator,
 * modulo 2^64. This loop is the whole cost of `square --sum N`, hence one
 * call per span rather than per item, and a plain counted loop over uint64
 * that the compiler vectorises where the target multiplies 64-bit lanes
 * (GCC does at -O3 -mavx2; at baseline x86-64 it stays a tight scalar loop). */
static int sum_squares_range_span(hpool_span *span, void *user)
{
    uint64_t first = (uint64_t)span->range_first;
    size_t count = span->count;
    uint64_t sum = 0;
    for (size_t i = 0; i < count; i++) {
        uint64_t x = first + i;
        sum += x * x;
    }
    uint64_t accumulated;
    memcpy(&accumulated, span->accumulator, sizeof accumulated);
    accumulated += sum;
    memcpy(span->accumulator, &accumulated, sizeof accumulated);
    return 0;
}

/* Parses one --input line and squares it exactly. A bad line fails its item
 * alone: the pool counts it and still delivers every other result. The
 * square travels as two uint64 halves rather than an unsigned __int128
 * member, so the struct needs only 8-byte alignment and has no padding. */
static int square_line(hpool_task *task, void *user)
{
    square_of_line result;
    int code = square_parse_line(task->input, task->input_size, &result.x);
    if (code != 0)
        return code;
    uint64_t x = square_magnitude(result.x);
    unsigned __int128 square = (unsigned __int128)x * x;
    result.square_low = (uint64_t)square;
    result.square_high = (uint64_t)(square >> 64);
    memcpy(task->result, &result, sizeof result);
    return 0;
}

/* Parses one --input line and yields its square modulo 2^64, for --sum:
 * the reduce needs no more, so no 128-bit product. */
static int square_line_mod_2_64(hpool_task *task, void *user)
{
    int64_t x;
    int code = square_parse_line(task->input, task->input_size, &x);
    if (code != 0)
        return code;
    uint64_t square = (uint64_t)x * (uint64_t)x;
    memcpy(task->result, &square, sizeof square);
    return 0;
}

/* Ranks name functions by index, never by pointer (addresses differ between
 * processes), and the pool checks that the names agree on every rank. */
const hpool_function square_functions[SQUARE_FUNCTION_COUNT] = {
    [FUNCTION_SQUARE_RANGE] = {.name = "square_range", .span = square_range_span},
    [FUNCTION_SUM_SQUARES_RANGE] = {.name = "sum_squares_range", .span = sum_squares_range_span},
    [FUNCTION_SQUARE_LINE] = {.name = "square_line", .map = square_line},
    [FUNCTION_SQUARE_LINE_MOD_2_64] = {.name = "square_line_mod_2_64", .map = square_line_mod_2_64},
};

/* ---- The reduce --------------------------------------------------------- */

/* Addition mod 2^64 is associative and commutative, so the sum is the same
 * whatever the ranks, threads and chunks. */
static void add_uint64(void *accumulator, const void *value, void *user)
{
    uint64_t sum, addend;
    memcpy(&sum, accumulator, sizeof sum);
    memcpy(&addend, value, sizeof addend);
    sum += addend; /* wraps modulo 2^64, which is what --sum promises */
    memcpy(accumulator, &sum, sizeof sum);
}

static const uint64_t zero_uint64 = 0;

const hpool_reducer square_reducers[SQUARE_REDUCER_COUNT] = {
    [REDUCER_SUM_UINT64] = {.name = "sum_u64",
                            .value_size = sizeof(uint64_t),
                            .identity = &zero_uint64,
                            .combine = add_uint64},
};
