/* bytes.c: fast byte scans over a page: is it UTF-8 text, and where is a literal. */
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

/* Checks data[from, until) one byte or sequence at a time; a sequence may end
 * beyond until. Returns where it stopped, or size once both are found. */
static size_t check_slowly(const uint8_t *data, size_t size, size_t from, size_t until, page_text_check *check)
{
    size_t i = from;
    while (i < until) {
        if (data[i] == 0 && check->first_nul < 0)
            check->first_nul = (int64_t)i;
        size_t length = bytes_utf8_sequence(data + i, size - i);
        if (length == 0) {
            if (check->first_invalid_utf8 < 0)
                check->first_invalid_utf8 = (int64_t)i;
            length = 1;
        }
        i += length;
        if (check->first_nul >= 0 && check->first_invalid_utf8 >= 0)
            return size;
    }
    return i;
}

void bytes_check_text(const uint8_t *data, size_t size, page_text_check *check)
{
    check->first_nul = -1;
    check->first_invalid_utf8 = -1;
    size_t i = 0;
#if defined(__SSE2__)
    /* Most of a page is ASCII without NULs: 64 bytes per test. */
    const __m128i zero = _mm_setzero_si128();
    while (i + 64 <= size) {
        __m128i a = _mm_loadu_si128((const __m128i *)(data + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(data + i + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(data + i + 32));
        __m128i d = _mm_loadu_si128((const __m128i *)(data + i + 48));
        __m128i any_high = _mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d));
        __m128i smallest = _mm_min_epu8(_mm_min_epu8(a, b), _mm_min_epu8(c, d));
        bool has_nul = check->first_nul < 0 && _mm_movemask_epi8(_mm_cmpeq_epi8(smallest, zero)) != 0;
        bool has_high = _mm_movemask_epi8(any_high) != 0;
        if (!has_nul && !has_high) {
            i += 64;
            continue;
        }
        if (has_high && check->first_invalid_utf8 >= 0 && !has_nul) {
            i += 64; /* only the first invalid byte matters */
            continue;
        }
        i = check_slowly(data, size, i, i + 64, check);
    }
#endif
    check_slowly(data, size, i, size, check);
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

size_t bytes_find(const literal_finder *finder, const uint8_t *data, size_t size, size_t from)
{
    size_t length = finder->size;
    if (length == 0 || size < length)
        return size;
    size_t last_start = size - length;
    size_t i = from;
#if defined(__SSE2__)
    size_t reach = finder->rare_offset[0] > finder->rare_offset[1] ? finder->rare_offset[0] : finder->rare_offset[1];
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
