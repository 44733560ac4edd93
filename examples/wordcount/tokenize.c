/* tokenize.c: finds the words of a buffer (bytes.split()'s), a byte at a time or 64 bytes a step with AVX2. */
#include "tokenize.h"

#include <string.h>

/* The scalar way looks bytes up in a table: faster than tokenize_is_space's
 * compares in this loop (600-730 against 730-940 ms a GB of HTML, one
 * thread, on a shared machine). */
static const bool space_table[256] = {[' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\v'] = 1, ['\f'] = 1, ['\r'] = 1};

size_t tokenize_words_scalar(const uint8_t *text, size_t size, size_t from, size_t *bounds, size_t capacity,
                             size_t *next)
{
    size_t count = 0, i = from;
    while (count < capacity) {
        while (i < size && space_table[text[i]])
            i++;
        if (i == size)
            break;
        size_t start = i;
        while (i < size && !space_table[text[i]])
            i++;
        bounds[2 * count] = start;
        bounds[2 * count + 1] = i;
        count++;
    }
    *next = i;
    return count;
}

#if defined(__x86_64__) && !defined(TOKENIZE_NO_AVX2)
#include <immintrin.h>

bool tokenize_have_avx2(void)
{
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt") && __builtin_cpu_supports("bmi");
}

/* Bit k set when byte k of the 64 at block is whitespace. One shuffle and
 * one compare per 32 bytes: the shuffle looks the low nibble up in a table
 * that holds, for each nibble, the one whitespace byte with that nibble (0
 * where there is none, which no byte with that nibble equals); bytes >=
 * 0x80 look up 0, which they are not. */
__attribute__((target("avx2"))) static inline uint64_t space_bits(const uint8_t *block)
{
    const __m256i table = _mm256_setr_epi8(' ', 0, 0, 0, 0, 0, 0, 0, 0, '\t', '\n', '\v', '\f', '\r', 0, 0, ' ', 0,
                                           0, 0, 0, 0, 0, 0, 0, '\t', '\n', '\v', '\f', '\r', 0, 0);
    __m256i low = _mm256_loadu_si256((const __m256i *)block);
    __m256i high = _mm256_loadu_si256((const __m256i *)(block + 32));
    uint32_t low_bits = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_shuffle_epi8(table, low), low));
    uint32_t high_bits = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_shuffle_epi8(table, high), high));
    return (uint64_t)high_bits << 32 | low_bits;
}

/*
 * A word boundary is a byte whose kind (whitespace or not) differs from the
 * byte before it: the bits of space ^ (space << 1). They alternate, start
 * then end, from the first start on, since the scan begins as if after a
 * space. Each 64-byte step writes the offsets of all its boundaries to
 * bounds, eight at a time with no test per boundary (HTML has about nine a
 * step, so mostly one branch), into room that is always there: a step runs
 * only while 64 offsets still fit. Offsets written past the step's last
 * boundary are overwritten by the next step or lie beyond the count
 * returned. One thread over the wordcount corpus's HTML in memory, reading
 * each word's bounds back: 145-165 ms a GB, against about 600 for the
 * scalar way and for the byte loop that wordcount.c had before.
 */
__attribute__((target("avx2,popcnt,bmi"))) size_t tokenize_words_avx2(const uint8_t *text, size_t size, size_t from,
                                                                   size_t *bounds, size_t capacity, size_t *next)
{
    size_t room = 2 * capacity, written = 0, i = from;
    uint64_t before = 1; /* the byte before from counts as whitespace */
    bool last_step = false;
    while (!last_step && written + 64 <= room) {
        uint8_t padded[64];
        const uint8_t *block = text + i;
        if (size - i < 64) {
            /* The last bytes, padded with spaces: the last word ends at
             * size, and the padding makes no boundary after it. */
            memset(padded, ' ', sizeof padded);
            if (size > i)
                memcpy(padded, text + i, size - i);
            block = padded;
            last_step = true;
        }
        /* wordcount reads 4 MiB at a time, more than L2 holds, so most of
         * a range comes from L3 or memory, and the hardware's own prefetch
         * does not run far enough ahead of this loop: prefetching 1 KiB
         * ahead took a quarter to a third off its samples in wordcount
         * (512 bytes did less; 2 and 4 KiB no better). */
        if (size - i > 1024)
            _mm_prefetch((const char *)(text + i + 1024), _MM_HINT_T0);
        uint64_t space = space_bits(block);
        uint64_t boundaries = space ^ (space << 1 | before);
        before = space >> 63;
        size_t found = (size_t)__builtin_popcountll(boundaries);
        size_t *out = bounds + written;
        /* _tzcnt_u64 of 0 is 64: what it gives past the last boundary is
         * defined, and never counted. */
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            out[j] = i + (size_t)_tzcnt_u64(boundaries);
            boundaries = _blsr_u64(boundaries);
        }
        for (size_t k = 8; k < found; k += 8) {
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                out[k + (size_t)j] = i + (size_t)_tzcnt_u64(boundaries);
                boundaries = _blsr_u64(boundaries);
            }
        }
        written += found;
        i += 64;
    }
    if (last_step) {
        *next = size;
    } else if (written % 2 != 0) {
        /* Stopped for room inside a word: the next call starts it again. */
        written--;
        *next = bounds[written];
    } else {
        *next = i;
    }
    return written / 2;
}
#else
bool tokenize_have_avx2(void)
{
    return false;
}

size_t tokenize_words_avx2(const uint8_t *text, size_t size, size_t from, size_t *bounds, size_t capacity,
                           size_t *next)
{
    return tokenize_words_scalar(text, size, from, bounds, capacity, next);
}
#endif

size_t tokenize_words(const uint8_t *text, size_t size, size_t from, size_t *bounds, size_t capacity, size_t *next)
{
    if (tokenize_have_avx2())
        return tokenize_words_avx2(text, size, from, bounds, capacity, next);
    return tokenize_words_scalar(text, size, from, bounds, capacity, next);
}
