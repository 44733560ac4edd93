/* bytes.c: fast byte scans over a page: is it UTF-8 text, where is a literal, and both in one pass (the survey). */
#include "metatags.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

size_t bytes_utf8_sequence(const uint8_t *data, size_t size)
{
    uint8_t lead = data[0];
    if (lead < 0x80)
        return 1;
    size_t length;
    uint8_t low = 0x80, high = 0xBF; /* the second byte's range, per RFC 3629 */
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        if (lead == 0xE0)
            low = 0xA0; /* overlong */
        else if (lead == 0xED)
            high = 0x9F; /* surrogates */
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        if (lead == 0xF0)
            low = 0x90; /* overlong */
        else if (lead == 0xF4)
            high = 0x8F; /* beyond U+10FFFF */
    } else {
        return 0;
    }
    if (size < length || data[1] < low || data[1] > high)
        return 0;
    for (size_t i = 2; i < length; i++)
        if ((data[i] & 0xC0) != 0x80)
            return 0;
    return length;
}

/* The scans below have an AVX2 version for the CPUs that have it (32 bytes
 * a step) and an SSE2 one (16 bytes, every x86-64). */
#if defined(__x86_64__) && !defined(METATAGS_NO_AVX2) /* the tests build both */
#include <immintrin.h>
#define BYTES_HAVE_AVX2 1
static bool cpu_has_avx2(void)
{
    return __builtin_cpu_supports("avx2");
}
#endif

/* Where the next byte is at or after i that is >= 0x80 (when high) or NUL
 * (when nul), or size. */
#if defined(BYTES_HAVE_AVX2)
__attribute__((target("avx2"))) static size_t next_notable_avx2(const uint8_t *data, size_t size, size_t i,
                                                                 bool high, bool nul)
{
    const __m256i zero = _mm256_setzero_si256(), one = _mm256_set1_epi8(1);
    /* A NUL or a byte >= 0x80 is one test: read as signed, it is below 1.
     * When both are wanted (until a page has shown one), four vectors folded
     * by their minimum take one test per 128 bytes; the 32 bytes that hold
     * the hit are found by the loop after. */
    while (high && nul && i + 128 <= size) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(data + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(data + i + 32));
        __m256i c = _mm256_loadu_si256((const __m256i *)(data + i + 64));
        __m256i d = _mm256_loadu_si256((const __m256i *)(data + i + 96));
        __m256i lowest = _mm256_min_epi8(_mm256_min_epi8(a, b), _mm256_min_epi8(c, d));
        if (_mm256_movemask_epi8(_mm256_cmpgt_epi8(one, lowest)) != 0)
            break;
        i += 128;
    }
    while (i + 32 <= size) {
        __m256i block = _mm256_loadu_si256((const __m256i *)(data + i));
        uint32_t bits = high && nul ? (uint32_t)_mm256_movemask_epi8(_mm256_cmpgt_epi8(one, block))
                        : high      ? (uint32_t)_mm256_movemask_epi8(block)
                                    : (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(block, zero));
        if (bits != 0)
            return i + (size_t)__builtin_ctz(bits);
        i += 32;
    }
    for (; i < size; i++)
        if ((high && data[i] >= 0x80) || (nul && data[i] == 0))
            return i;
    return size;
}
#endif

static size_t next_notable(const uint8_t *data, size_t size, size_t i, bool high, bool nul)
{
#if defined(BYTES_HAVE_AVX2)
    if (cpu_has_avx2())
        return next_notable_avx2(data, size, i, high, nul);
#endif
#if defined(__SSE2__)
    const __m128i zero = _mm_setzero_si128(), one = _mm_set1_epi8(1);
    while (i + 16 <= size) {
        __m128i block = _mm_loadu_si128((const __m128i *)(data + i));
        /* as in the AVX2 version: both wanted is "below 1 as a signed byte" */
        unsigned bits = high && nul ? (unsigned)_mm_movemask_epi8(_mm_cmpgt_epi8(one, block))
                        : high      ? (unsigned)_mm_movemask_epi8(block)
                                    : (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(block, zero));
        if (bits != 0)
            return i + (size_t)__builtin_ctz(bits);
        i += 16;
    }
#endif
    for (; i < size; i++)
        if ((high && data[i] >= 0x80) || (nul && data[i] == 0))
            return i;
    return size;
}

void bytes_check_text(const uint8_t *data, size_t size, page_text_check *check)
{
    check->first_nul = -1;
    check->first_invalid_utf8 = -1;
    /* Most of a page is ASCII without NULs: jump from one other byte to the
     * next, validating the UTF-8 sequence each starts. */
    size_t i = 0;
    for (;;) {
        bool want_high = check->first_invalid_utf8 < 0, want_nul = check->first_nul < 0;
        if (!want_high && !want_nul)
            return;
        i = next_notable(data, size, i, want_high, want_nul);
        if (i >= size)
            return;
        if (data[i] == 0) {
            check->first_nul = (int64_t)i++;
            continue;
        }
        if (!want_high) {
            i++;
            continue;
        }
        size_t length = bytes_utf8_sequence(data + i, size - i);
        if (length == 0) {
            check->first_invalid_utf8 = (int64_t)i;
            length = 1;
        }
        i += length;
    }
}

/* How common a byte is in HTML, roughly: the finder tests the two rarest
 * bytes of the literal, so fewer false hits reach the full compare. */
static int commonness(uint8_t byte)
{
    if (byte == ' ' || byte == '\n')
        return 100;
    if (strchr("etaoinsr", byte | 0x20) != NULL && byte != 0)
        return 80;
    if (byte == '"' || byte == '=' || byte == '/' || byte == '\t')
        return 60;
    if (byte >= 'a' && byte <= 'z')
        return 50;
    if (byte == '<' || byte == '>' || byte == '.' || byte == '-' || byte == '_')
        return 40;
    if (byte >= 'A' && byte <= 'Z')
        return 20;
    return 10;
}

static bool is_ascii_letter(uint8_t byte)
{
    return (byte | 0x20) >= 'a' && (byte | 0x20) <= 'z';
}

void bytes_finder_init(literal_finder *finder, const uint8_t *literal, size_t size, bool caseless)
{
    if (size > sizeof finder->bytes)
        size = sizeof finder->bytes;
    memcpy(finder->bytes, literal, size);
    finder->size = size;
    finder->caseless = caseless;
    if (caseless)
        for (size_t i = 0; i < size; i++)
            if (is_ascii_letter(finder->bytes[i]))
                finder->bytes[i] |= 0x20;
    size_t rarest = 0;
    for (size_t i = 1; i < size; i++)
        if (commonness(finder->bytes[i]) < commonness(finder->bytes[rarest]))
            rarest = i;
    size_t second = rarest == 0 ? (size > 1 ? 1 : 0) : 0;
    for (size_t i = 0; i < size; i++)
        if (i != rarest && commonness(finder->bytes[i]) < commonness(finder->bytes[second]))
            second = i;
    finder->rare_offset[0] = rarest;
    finder->rare_offset[1] = second;
    for (size_t k = 0; k < 2; k++)
        finder->rare_fold[k] = caseless && is_ascii_letter(finder->bytes[finder->rare_offset[k]]) ? 0x20 : 0;
}

static bool literal_at(const literal_finder *finder, const uint8_t *data)
{
    if (!finder->caseless)
        return memcmp(data, finder->bytes, finder->size) == 0;
    for (size_t i = 0; i < finder->size; i++) {
        uint8_t byte = data[i];
        if (is_ascii_letter(byte))
            byte |= 0x20;
        if (byte != finder->bytes[i])
            return false;
    }
    return true;
}

#if defined(__SSE2__)
/* The 16 bytes at data compared with one literal byte: 0xFF where equal. */
static __m128i equal_to(const literal_finder *finder, const uint8_t *data, size_t offset)
{
    uint8_t wanted = finder->bytes[offset];
    __m128i block = _mm_loadu_si128((const __m128i *)(data + offset));
    if (finder->caseless && is_ascii_letter(wanted))
        block = _mm_or_si128(block, _mm_set1_epi8(0x20));
    return _mm_cmpeq_epi8(block, _mm_set1_epi8((char)wanted));
}
#endif

#if defined(BYTES_HAVE_AVX2)
/* The test of the rare pair, set up once per call: where the two rare bytes
 * are, what they must be, and what is ORed into each first (its fold). */
typedef struct pair_test {
    const uint8_t *first, *second;
    __m256i wanted_first, wanted_second, fold_first, fold_second;
} pair_test;

__attribute__((target("avx2"), always_inline)) static inline void pair_test_init(pair_test *test,
                                                                                 const literal_finder *finder,
                                                                                 const uint8_t *data)
{
    test->first = data + finder->rare_offset[0];
    test->second = data + finder->rare_offset[1];
    test->wanted_first = _mm256_set1_epi8((char)finder->bytes[finder->rare_offset[0]]);
    test->wanted_second = _mm256_set1_epi8((char)finder->bytes[finder->rare_offset[1]]);
    test->fold_first = _mm256_set1_epi8((char)finder->rare_fold[0]);
    test->fold_second = _mm256_set1_epi8((char)finder->rare_fold[1]);
}

/* 0xFF in each of the 32 bytes from i whose two rare bytes are the
 * literal's; the folds are ORed in only when caseless. */
__attribute__((target("avx2"), always_inline)) static inline __m256i pair_at(const pair_test *test, size_t i,
                                                                            bool caseless)
{
    __m256i first = _mm256_loadu_si256((const __m256i *)(test->first + i));
    __m256i second = _mm256_loadu_si256((const __m256i *)(test->second + i));
    if (caseless) {
        first = _mm256_or_si256(first, test->fold_first);
        second = _mm256_or_si256(second, test->fold_second);
    }
    return _mm256_and_si256(_mm256_cmpeq_epi8(first, test->wanted_first),
                            _mm256_cmpeq_epi8(second, test->wanted_second));
}

/* The first i, in steps of 128 bytes up to limit, whose 128 bytes may hold
 * the rare pair; or where the steps ended. Hits are rare (HTML has "<m"
 * once in 24 kB), so this loop is where the time goes, and it holds nothing
 * but the test: two compares and an AND per 32 bytes, ORed into one branch
 * per 128. The pages' bytes are loaded twice, at the two rare offsets (one
 * byte apart for "<meta "), and those loads bound it: alone, they take
 * 10.5-12.7 ms a GB here, this loop 13.3 (one thread, the corpus's pages
 * copied into a buffer first, as read() does; the loop of one test per 32
 * bytes before it took 16.6). A call to literal_at in the same loop made
 * GCC keep the constants on the stack, hence the function of its own; and
 * caseless is a constant in each caller, so the exact loop has no OR. */
__attribute__((target("avx2"), always_inline)) static inline size_t skip_to_pair_avx2(const literal_finder *finder,
                                                                                     const uint8_t *data, size_t i,
                                                                                     size_t limit, bool caseless)
{
    pair_test test;
    pair_test_init(&test, finder, data);
    for (; i + 128 <= limit; i += 128) {
        __m256i any = _mm256_or_si256(_mm256_or_si256(pair_at(&test, i, caseless), pair_at(&test, i + 32, caseless)),
                                      _mm256_or_si256(pair_at(&test, i + 64, caseless),
                                                      pair_at(&test, i + 96, caseless)));
        if (!_mm256_testz_si256(any, any))
            break;
    }
    return i;
}

__attribute__((target("avx2"), noinline)) static size_t skip_exact_avx2(const literal_finder *finder,
                                                                         const uint8_t *data, size_t i, size_t limit)
{
    return skip_to_pair_avx2(finder, data, i, limit, false);
}

__attribute__((target("avx2"), noinline)) static size_t skip_caseless_avx2(const literal_finder *finder,
                                                                            const uint8_t *data, size_t i,
                                                                            size_t limit)
{
    return skip_to_pair_avx2(finder, data, i, limit, true);
}

/* The rare-pair bits of the 32 bytes at i (bit k for byte i + k). */
__attribute__((target("avx2"))) static uint32_t pair_bits_avx2(const literal_finder *finder, const uint8_t *data,
                                                                size_t i)
{
    pair_test test;
    pair_test_init(&test, finder, data);
    return (uint32_t)_mm256_movemask_epi8(pair_at(&test, i, true)); /* the folds are 0 when not caseless */
}

/* The AVX2 loop of bytes_find: returns the first hit, or where it stopped
 * (fewer than 32 + reach bytes left) as *resume with size meaning none yet. */
__attribute__((target("avx2"))) static size_t find_avx2(const literal_finder *finder, const uint8_t *data,
                                                         size_t size, size_t i, size_t reach, size_t *resume)
{
    size_t last_start = size - finder->size;
    bool caseless = (finder->rare_fold[0] | finder->rare_fold[1]) != 0;
    while (i + reach + 32 <= size) {
        i = caseless ? skip_caseless_avx2(finder, data, i, size - reach)
                     : skip_exact_avx2(finder, data, i, size - reach);
        /* The 128 bytes with a hit, or the last few dozen, 32 at a time. */
        for (size_t end = i + 128; i < end && i + reach + 32 <= size; i += 32) {
            uint32_t mask = pair_bits_avx2(finder, data, i);
            while (mask != 0) {
                size_t candidate = i + (size_t)__builtin_ctz(mask);
                if (candidate > last_start) {
                    *resume = size;
                    return size;
                }
                if (literal_at(finder, data + candidate))
                    return candidate;
                mask &= mask - 1;
            }
        }
    }
    *resume = i;
    return size;
}
#endif

size_t bytes_find(const literal_finder *finder, const uint8_t *data, size_t size, size_t from)
{
    size_t length = finder->size;
    if (length == 0 || size < length)
        return size;
    size_t last_start = size - length;
    size_t i = from;
    size_t reach = finder->rare_offset[0] > finder->rare_offset[1] ? finder->rare_offset[0] : finder->rare_offset[1];
#if defined(BYTES_HAVE_AVX2)
    if (cpu_has_avx2()) {
        size_t resume;
        size_t hit = find_avx2(finder, data, size, i, reach, &resume);
        if (hit < size || resume >= size)
            return hit;
        i = resume;
    }
#endif
#if defined(__SSE2__)
    while (i + reach + 16 <= size) {
        __m128i both = _mm_and_si128(equal_to(finder, data + i, finder->rare_offset[0]),
                                     equal_to(finder, data + i, finder->rare_offset[1]));
        unsigned mask = (unsigned)_mm_movemask_epi8(both);
        while (mask != 0) {
            size_t candidate = i + (size_t)__builtin_ctz(mask);
            if (candidate > last_start)
                return size;
            if (literal_at(finder, data + candidate))
                return candidate;
            mask &= mask - 1;
        }
        i += 16;
    }
#endif
    for (; i <= last_start; i++)
        if (literal_at(finder, data + i))
            return i;
    return size;
}

/* ---- The survey: the text check and the literal's candidates in one pass */

#if defined(BYTES_HAVE_AVX2)
/* UTF-8 checked 64 bytes at a time, the way simdjson and simdutf do it
 * (Keiser and Lemire, "Validating UTF-8 in less than one instruction per
 * byte", 2021): three table look-ups on the nibbles of each byte and of the
 * one before it flag every bad pair of bytes, and the bytes two and three
 * after a 3- or 4-byte lead must be continuations. Strict, as
 * bytes_utf8_sequence is: no overlongs, surrogates or code points beyond
 * U+10FFFF. It says only whether a page is valid; where it is not, the
 * exact offset comes from bytes_check_text, as for a page with a NUL. */
enum {
    UTF8_TOO_SHORT = 1 << 0,  /* a lead not followed by a continuation */
    UTF8_TOO_LONG = 1 << 1,   /* a continuation after ASCII */
    UTF8_OVERLONG_3 = 1 << 2, /* E0 80..9F */
    UTF8_TOO_LARGE = 1 << 3,  /* F4 90.., F5.. */
    UTF8_SURROGATE = 1 << 4,  /* ED A0..BF */
    UTF8_OVERLONG_2 = 1 << 5, /* C0, C1 */
    UTF8_TOO_LARGE_1000 = 1 << 6,
    UTF8_OVERLONG_4 = 1 << 6, /* F0 80..8F */
    UTF8_TWO_CONTINUATIONS = 1 << 7,
    UTF8_CARRY = UTF8_TOO_SHORT | UTF8_TOO_LONG | UTF8_TWO_CONTINUATIONS,
};

/* input's bytes moved up by count, the first count from previous's end. */
#define UTF8_PREVIOUS(input, previous, count)                                                                        \
    _mm256_alignr_epi8((input), _mm256_permute2x128_si256((previous), (input), 0x21), 16 - (count))

#define UTF8_TABLE(b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15)                              \
    _mm256_setr_epi8(UTF8_BYTE(b0), UTF8_BYTE(b1), UTF8_BYTE(b2), UTF8_BYTE(b3), UTF8_BYTE(b4), UTF8_BYTE(b5),       \
                     UTF8_BYTE(b6), UTF8_BYTE(b7), UTF8_BYTE(b8), UTF8_BYTE(b9), UTF8_BYTE(b10), UTF8_BYTE(b11),       \
                     UTF8_BYTE(b12), UTF8_BYTE(b13), UTF8_BYTE(b14), UTF8_BYTE(b15), UTF8_BYTE(b0), UTF8_BYTE(b1),     \
                     UTF8_BYTE(b2), UTF8_BYTE(b3), UTF8_BYTE(b4), UTF8_BYTE(b5), UTF8_BYTE(b6), UTF8_BYTE(b7),         \
                     UTF8_BYTE(b8), UTF8_BYTE(b9), UTF8_BYTE(b10), UTF8_BYTE(b11), UTF8_BYTE(b12), UTF8_BYTE(b13),     \
                     UTF8_BYTE(b14), UTF8_BYTE(b15))
#define UTF8_BYTE(value) ((char)(uint8_t)(value))

/* Non-zero bytes where the 32 bytes of input, after those of previous, are
 * not UTF-8 (a sequence cut at input's end is left to the next block). */
__attribute__((target("avx2"), always_inline)) static inline __m256i utf8_errors(__m256i input, __m256i previous)
{
    const __m256i low_nibble = _mm256_set1_epi8(0x0F);
    __m256i previous1 = UTF8_PREVIOUS(input, previous, 1);
    __m256i byte_1_high = _mm256_shuffle_epi8(
        UTF8_TABLE(UTF8_TOO_LONG, UTF8_TOO_LONG, UTF8_TOO_LONG, UTF8_TOO_LONG, UTF8_TOO_LONG, UTF8_TOO_LONG,
                   UTF8_TOO_LONG, UTF8_TOO_LONG, UTF8_TWO_CONTINUATIONS, UTF8_TWO_CONTINUATIONS,
                   UTF8_TWO_CONTINUATIONS, UTF8_TWO_CONTINUATIONS, UTF8_TOO_SHORT | UTF8_OVERLONG_2, UTF8_TOO_SHORT,
                   UTF8_TOO_SHORT | UTF8_OVERLONG_3 | UTF8_SURROGATE,
                   UTF8_TOO_SHORT | UTF8_TOO_LARGE | UTF8_TOO_LARGE_1000 | UTF8_OVERLONG_4),
        _mm256_and_si256(_mm256_srli_epi16(previous1, 4), low_nibble));
    __m256i byte_1_low = _mm256_shuffle_epi8(
        UTF8_TABLE(UTF8_CARRY | UTF8_OVERLONG_3 | UTF8_OVERLONG_2 | UTF8_OVERLONG_4, UTF8_CARRY | UTF8_OVERLONG_2,
                   UTF8_CARRY, UTF8_CARRY, UTF8_CARRY | UTF8_TOO_LARGE, UTF8_CARRY | UTF8_TOO_LARGE | UTF8_TOO_LARGE_1000,
                   UTF8_CARRY | UTF8_TOO_LARGE | UTF8_TOO_LARGE_1000, UTF8_CARRY | UTF8_TOO_LARGE | UTF8_TOO_LARGE_1000,
                   UTF8_CARRY | UTF8_TOO_LARGE | UTF8_TOO_LARGE_1000, UTF8_CARRY | UTF8_TOO_LARGE | UTF8_TOO_LARGE_1000,
                   UTF8_CARRY | UTF8_TOO_LARGE | UTF8_TOO_LARGE_1000, UTF8_CARRY | UTF8_TOO_LARGE | UTF8_TOO_LARGE_1000,
                   UTF8_CARRY | UTF8_TOO_LARGE | UTF8_TOO_LARGE_1000,
                   UTF8_CARRY | UTF8_TOO_LARGE | UTF8_TOO_LARGE_1000 | UTF8_SURROGATE,
                   UTF8_CARRY | UTF8_TOO_LARGE | UTF8_TOO_LARGE_1000, UTF8_CARRY | UTF8_TOO_LARGE | UTF8_TOO_LARGE_1000),
        _mm256_and_si256(previous1, low_nibble));
    __m256i byte_2_high = _mm256_shuffle_epi8(
        UTF8_TABLE(UTF8_TOO_SHORT, UTF8_TOO_SHORT, UTF8_TOO_SHORT, UTF8_TOO_SHORT, UTF8_TOO_SHORT, UTF8_TOO_SHORT,
                   UTF8_TOO_SHORT, UTF8_TOO_SHORT,
                   UTF8_TOO_LONG | UTF8_OVERLONG_2 | UTF8_TWO_CONTINUATIONS | UTF8_OVERLONG_3 | UTF8_TOO_LARGE_1000
                       | UTF8_OVERLONG_4,
                   UTF8_TOO_LONG | UTF8_OVERLONG_2 | UTF8_TWO_CONTINUATIONS | UTF8_OVERLONG_3 | UTF8_TOO_LARGE,
                   UTF8_TOO_LONG | UTF8_OVERLONG_2 | UTF8_TWO_CONTINUATIONS | UTF8_SURROGATE | UTF8_TOO_LARGE,
                   UTF8_TOO_LONG | UTF8_OVERLONG_2 | UTF8_TWO_CONTINUATIONS | UTF8_SURROGATE | UTF8_TOO_LARGE,
                   UTF8_TOO_SHORT, UTF8_TOO_SHORT, UTF8_TOO_SHORT, UTF8_TOO_SHORT),
        _mm256_and_si256(_mm256_srli_epi16(input, 4), low_nibble));
    __m256i special = _mm256_and_si256(_mm256_and_si256(byte_1_high, byte_1_low), byte_2_high);
    /* The third and fourth bytes of a sequence: 111_____ two back, or
     * 1111____ three back, reach 0x80 after the subtraction. */
    __m256i third = _mm256_subs_epu8(UTF8_PREVIOUS(input, previous, 2), _mm256_set1_epi8((char)(0xE0 - 0x80)));
    __m256i fourth = _mm256_subs_epu8(UTF8_PREVIOUS(input, previous, 3), _mm256_set1_epi8((char)(0xF0 - 0x80)));
    __m256i continued = _mm256_and_si256(_mm256_or_si256(third, fourth), _mm256_set1_epi8((char)0x80));
    return _mm256_xor_si256(continued, special);
}

/* Non-zero when the last bytes of input start a sequence they do not end. */
__attribute__((target("avx2"), always_inline)) static inline __m256i utf8_incomplete(__m256i input)
{
    const __m256i longest = _mm256_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                             -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, (char)(0xF0 - 1),
                                             (char)(0xE0 - 1), (char)(0xC0 - 1));
    return _mm256_subs_epu8(input, longest);
}

/* What the survey carries from one 64-byte block to the next. The pair's
 * constants live here, in registers: read from the finder inside the loop,
 * they were loaded and broadcast again at every block, since the stores to
 * the candidates might have changed them. */
typedef struct survey_state {
    __m256i previous;   /* the last 32 bytes checked */
    __m256i incomplete; /* non-zero: previous ends inside a sequence */
    __m256i errors;     /* non-zero once a bad sequence or a NUL was seen */
    __m256i wanted_first, wanted_second, fold_first, fold_second;
    size_t first_offset, second_offset; /* the finder's two rare bytes */
    bool finding;       /* still listing candidates */
} survey_state;

/* Lists the candidates of bits (bit k: the pair at at + k), or stops
 * listing when they do not fit: the search goes on from at as bytes_find. */
static inline void survey_list(survey_state *state, page_survey *survey, size_t at, uint64_t bits)
{
    if (survey->candidate_count + (size_t)__builtin_popcountll(bits) > PAGE_SURVEY_CANDIDATES) {
        state->finding = false;
        survey->complete_below = at;
        return;
    }
    for (; bits != 0; bits &= bits - 1)
        survey->candidates[survey->candidate_count++] = at + (size_t)__builtin_ctzll(bits);
}

/* The 128 bytes at block (offset at in the page): their text check, and
 * their candidates when listing (the pair is read from block + each rare
 * offset, up to 128 bytes on). caseless and first_at_block are constants
 * in each caller. Most blocks are plain ASCII without a NUL or a pair,
 * after a block that ended a sequence: one test for 128 bytes halves the
 * branches and the loop's upkeep of a 64-byte step (14.8 ms a GB against
 * 20.6, one thread, a page hot in the cache). The others (one in 12 here:
 * a "¶" in every heading) are checked in full, without a branch per 32
 * bytes, and without loading or testing anything twice. */
__attribute__((target("avx2"), always_inline)) static inline void survey_block_128(survey_state *state,
                                                                                  const uint8_t *block, size_t at,
                                                                                  page_survey *survey,
                                                                                  bool caseless, bool first_at_block)
{
    __m256i v0 = _mm256_loadu_si256((const __m256i *)block), v1 = _mm256_loadu_si256((const __m256i *)(block + 32));
    __m256i v2 = _mm256_loadu_si256((const __m256i *)(block + 64)), v3 = _mm256_loadu_si256((const __m256i *)(block + 96));
    __m256i lowest = _mm256_min_epi8(_mm256_min_epi8(v0, v1), _mm256_min_epi8(v2, v3));
    __m256i notable_bytes = _mm256_cmpgt_epi8(_mm256_set1_epi8(1), lowest);
    __m256i p0 = _mm256_setzero_si256(), p1 = p0, p2 = p0, p3 = p0, any = p0;
    if (state->finding) {
        /* Written out: as a loop over an array, GCC kept the vectors on
         * the stack, and the loop ran 4x slower. */
#define SURVEY_PAIR(v, k)                                                                                              \
    __extension__({                                                                                                  \
        __m256i first = first_at_block ? (v) : _mm256_loadu_si256((const __m256i *)(block + state->first_offset + (k)));\
        __m256i second = _mm256_loadu_si256((const __m256i *)(block + state->second_offset + (k)));                    \
        if (caseless) {                                                                                              \
            first = _mm256_or_si256(first, state->fold_first);                                                       \
            second = _mm256_or_si256(second, state->fold_second);                                                    \
        }                                                                                                            \
        _mm256_and_si256(_mm256_cmpeq_epi8(first, state->wanted_first), _mm256_cmpeq_epi8(second, state->wanted_second)); \
    })
        p0 = SURVEY_PAIR(v0, 0);
        p1 = SURVEY_PAIR(v1, 32);
        p2 = SURVEY_PAIR(v2, 64);
        p3 = SURVEY_PAIR(v3, 96);
#undef SURVEY_PAIR
        any = _mm256_or_si256(_mm256_or_si256(p0, p1), _mm256_or_si256(p2, p3));
    }
    __m256i text = _mm256_or_si256(notable_bytes, state->incomplete);
    __m256i notable = _mm256_or_si256(text, any);
    if (__builtin_expect(_mm256_testz_si256(notable, notable), 1)) {
        state->previous = v3;
        return;
    }
    if (!_mm256_testz_si256(text, text)) {
        if (_mm256_testz_si256(notable_bytes, notable_bytes)) { /* ASCII after a cut sequence */
            state->errors = _mm256_or_si256(state->errors, state->incomplete);
        } else {
            __m256i nul = _mm256_cmpeq_epi8(_mm256_min_epu8(_mm256_min_epu8(v0, v1), _mm256_min_epu8(v2, v3)),
                                            _mm256_setzero_si256());
            __m256i bad = _mm256_or_si256(_mm256_or_si256(utf8_errors(v0, state->previous), utf8_errors(v1, v0)),
                                          _mm256_or_si256(utf8_errors(v2, v1), utf8_errors(v3, v2)));
            state->errors = _mm256_or_si256(state->errors, _mm256_or_si256(nul, bad));
        }
        state->incomplete = utf8_incomplete(v3);
    }
    state->previous = v3;
    if (!_mm256_testz_si256(any, any)) {
        uint64_t low = (uint32_t)_mm256_movemask_epi8(p0) | (uint64_t)(uint32_t)_mm256_movemask_epi8(p1) << 32;
        uint64_t high = (uint32_t)_mm256_movemask_epi8(p2) | (uint64_t)(uint32_t)_mm256_movemask_epi8(p3) << 32;
        /* Both halves or neither: a half listed alone would leave
         * complete_below inside the block. */
        if (survey->candidate_count + (size_t)__builtin_popcountll(low) + (size_t)__builtin_popcountll(high)
            > PAGE_SURVEY_CANDIDATES) {
            state->finding = false;
            survey->complete_below = at;
            return;
        }
        survey_list(state, survey, at, low);
        survey_list(state, survey, at + 64, high);
    }
}

/* Whether the page is not plain UTF-8 text; candidates into survey. */
__attribute__((target("avx2"), always_inline)) static inline bool survey_pages_avx2(const literal_finder *finder,
                                                                                   const uint8_t *data, size_t size,
                                                                                   page_survey *survey,
                                                                                   bool caseless, bool first_at_block)
{
    survey_state state = {.previous = _mm256_setzero_si256(), .incomplete = _mm256_setzero_si256(),
                          .errors = _mm256_setzero_si256(), .finding = finder != NULL};
    size_t reach = 0;
    if (finder != NULL) {
        /* The pair's test is the same either way round: the one at offset
         * 0, if either is, goes first. */
        size_t first = finder->rare_offset[1] == 0 ? 1 : 0, second = 1 - first;
        state.first_offset = finder->rare_offset[first];
        state.second_offset = finder->rare_offset[second];
        state.wanted_first = _mm256_set1_epi8((char)finder->bytes[state.first_offset]);
        state.wanted_second = _mm256_set1_epi8((char)finder->bytes[state.second_offset]);
        state.fold_first = _mm256_set1_epi8((char)finder->rare_fold[first]);
        state.fold_second = _mm256_set1_epi8((char)finder->rare_fold[second]);
        reach = state.first_offset > state.second_offset ? state.first_offset : state.second_offset;
    }
    size_t at = 0;
    for (; at + 128 + reach <= size; at += 128)
        survey_block_128(&state, data + at, at, survey, caseless, first_at_block);
    /* The last bytes, fewer than 128 + reach, from a copy padded with
     * spaces: ASCII, so the check ends as the page does, and a candidate
     * that runs into the padding lies past the last place the literal
     * fits, where bytes_find_surveyed looks no more. */
    uint8_t tail[128 + 128 + sizeof finder->bytes];
    memset(tail, ' ', sizeof tail);
    memcpy(tail, data + at, size - at);
    for (size_t from = 0; at + from < size; from += 128)
        survey_block_128(&state, tail + from, at + from, survey, caseless, first_at_block);
    if (state.finding)
        survey->complete_below = size;
    __m256i errors = _mm256_or_si256(state.errors, state.incomplete);
    return !_mm256_testz_si256(errors, errors);
}

/* One loop per kind of finder, each with its constants folded in. */
#define SURVEY_VARIANT(name, caseless, first_at_block)                                                               \
    __attribute__((target("avx2"), noinline)) static bool name(const literal_finder *finder, const uint8_t *data,   \
                                                                size_t size, page_survey *survey)                   \
    {                                                                                                              \
        return survey_pages_avx2(finder, data, size, survey, caseless, first_at_block);                            \
    }
SURVEY_VARIANT(survey_exact_avx2, false, false)
SURVEY_VARIANT(survey_exact_from_start_avx2, false, true)
SURVEY_VARIANT(survey_caseless_avx2, true, false)
SURVEY_VARIANT(survey_caseless_from_start_avx2, true, true)
#undef SURVEY_VARIANT

static bool survey_avx2(const literal_finder *finder, const uint8_t *data, size_t size, page_survey *survey)
{
    if (finder == NULL)
        return survey_exact_avx2(finder, data, size, survey);
    bool caseless = (finder->rare_fold[0] | finder->rare_fold[1]) != 0;
    bool from_start = finder->rare_offset[0] == 0 || finder->rare_offset[1] == 0;
    if (caseless)
        return from_start ? survey_caseless_from_start_avx2(finder, data, size, survey)
                          : survey_caseless_avx2(finder, data, size, survey);
    return from_start ? survey_exact_from_start_avx2(finder, data, size, survey)
                      : survey_exact_avx2(finder, data, size, survey);
}
#endif

void bytes_survey(const literal_finder *finder, const uint8_t *data, size_t size, page_survey *survey)
{
    survey->candidate_count = 0;
    survey->complete_below = 0;
    survey->next_candidate = 0;
    if (finder != NULL && (finder->size == 0 || finder->size > size))
        finder = NULL; /* bytes_find finds nothing there */
#if defined(BYTES_HAVE_AVX2)
    if (cpu_has_avx2()) {
        if (!survey_avx2(finder, data, size, survey)) {
            survey->text.first_nul = -1;
            survey->text.first_invalid_utf8 = -1;
            return;
        }
        /* Rare: where, exactly, from the byte-by-byte check. */
        bytes_check_text(data, size, &survey->text);
        return;
    }
#endif
    (void)finder;
    bytes_check_text(data, size, &survey->text);
}

size_t bytes_find_surveyed(const literal_finder *finder, page_survey *survey, const uint8_t *data, size_t size,
                           size_t from)
{
    if (finder->size == 0 || size < finder->size)
        return size;
    size_t last_start = size - finder->size;
    while (survey->next_candidate < survey->candidate_count) {
        size_t candidate = survey->candidates[survey->next_candidate];
        if (candidate < from) {
            survey->next_candidate++;
            continue;
        }
        if (candidate > last_start)
            return size;
        if (literal_at(finder, data + candidate))
            return candidate;
        survey->next_candidate++;
    }
    return bytes_find(finder, data, size, from > survey->complete_below ? from : survey->complete_below);
}
