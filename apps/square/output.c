/* output.c: square's stdout: integers formatted by hand, exact to 128 bits, into a buffer written in large blocks. */
#include "square.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* By hand rather than printf per line, which would cost more than the
 * squaring; and printf has no conversion for unsigned __int128. */

void output_flush(output *out)
{
    if (out->used > 0 && !out->failed && fwrite(out->buffer, 1, out->used, stdout) != out->used) {
        out->failed = 1;
        out->write_errno = errno;
    }
    out->used = 0;
}

/* Two digits per division: formatting is most of the time `square N` spends
 * on the root, so it halves what the ordered stream costs. */
static const char digit_pairs[201] = "00010203040506070809"
                                     "10111213141516171819"
                                     "20212223242526272829"
                                     "30313233343536373839"
                                     "40414243444546474849"
                                     "50515253545556575859"
                                     "60616263646566676869"
                                     "70717273747576777879"
                                     "80818283848586878889"
                                     "90919293949596979899";

static size_t decimal_digits(uint64_t value)
{
    size_t digits = 1;
    for (uint64_t power = 10; value >= power; power *= 10) {
        digits++;
        if (digits == 20) /* 10^20 would overflow power */
            break;
    }
    return digits;
}

/* Writes the digits in place from the last one back, so no copy follows. */
void output_uint64(output *out, uint64_t value)
{
    size_t length = decimal_digits(value);
    char *end = out->buffer + out->used + length;
    while (value >= 100) {
        unsigned pair = (unsigned)(value % 100);
        value /= 100;
        end -= 2;
        memcpy(end, digit_pairs + 2 * pair, 2);
    }
    if (value >= 10)
        memcpy(end - 2, digit_pairs + 2 * value, 2);
    else
        end[-1] = (char)('0' + value);
    out->used += length;
}

void output_int64(output *out, int64_t value)
{
    if (value < 0)
        out->buffer[out->used++] = '-';
    output_uint64(out, square_magnitude(value));
}

void output_uint128(output *out, unsigned __int128 value)
{
    /* Print in base 10^19, the largest power of ten below 2^64: the high part
     * first, then each lower part padded to 19 digits. */
    const uint64_t ten_to_19 = UINT64_C(10000000000000000000);
    if (value <= UINT64_MAX) {
        output_uint64(out, (uint64_t)value);
        return;
    }
    uint64_t parts[3]; /* 2^128 < 10^57: at most three parts */
    size_t part_count = 0;
    while (value > UINT64_MAX) {
        parts[part_count++] = (uint64_t)(value % ten_to_19);
        value /= ten_to_19;
    }
    output_uint64(out, (uint64_t)value);
    while (part_count > 0) {
        uint64_t part = parts[--part_count];
        for (int digit = 18; digit >= 0; digit--) {
            out->buffer[out->used + (size_t)digit] = (char)('0' + part % 10);
            part /= 10;
        }
        out->used += 19;
    }
}
