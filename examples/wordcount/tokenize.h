/* tokenize.h: the words of a buffer as Python's bytes.split() finds them, 64 bytes a step where the CPU has AVX2. */
#ifndef WORDCOUNT_TOKENIZE_H
#define WORDCOUNT_TOKENIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ASCII whitespace as bytes.split() sees it: space, \t, \n, \v, \f, \r.
 * A word is a maximal run of other bytes (NUL and bytes >= 0x80 included). */
static inline bool tokenize_is_space(unsigned char byte)
{
    return byte == ' ' || (byte >= '\t' && byte <= '\r');
}

/* The fewest words a call must have room for: the AVX2 way writes a whole
 * 64-byte step's boundaries (up to 64) before it looks at the room left. */
#define TOKENIZE_MIN_WORDS 64

/*
 * Finds the words of text[from, size), in order, and writes up to capacity
 * of them to bounds: word k starts at bounds[2k] and ends before
 * bounds[2k+1] (offsets into text, end > start, end <= size). A word may
 * start at from: the byte before it is not looked at.
 *
 * Returns how many words it wrote; sets *next to where to call again for
 * the rest, size when there is none. A call stops early only when bounds is
 * nearly full, and then returns at least capacity - 32 words, so this loop
 * sees every word once:
 *
 *     for (size_t at = 0; at < size;) {
 *         size_t count = tokenize_words(text, size, at, bounds, capacity, &at);
 *         for (size_t k = 0; k < count; k++)
 *             use(text + bounds[2 * k], bounds[2 * k + 1] - bounds[2 * k]);
 *     }
 *
 * capacity must be at least TOKENIZE_MIN_WORDS; bounds holds 2 * capacity
 * offsets, and all of them may be written. Thread-safe: no state.
 *
 * tokenize_words takes the AVX2 way when this build and CPU have it, else
 * the scalar one. Both give the same words; the tests call each.
 */
size_t tokenize_words(const uint8_t *text, size_t size, size_t from, size_t *bounds, size_t capacity, size_t *next);
size_t tokenize_words_scalar(const uint8_t *text, size_t size, size_t from, size_t *bounds, size_t capacity,
                             size_t *next);
/* true when tokenize_words_avx2 may be called: built for x86-64 (and not
 * with TOKENIZE_NO_AVX2) and the CPU has AVX2 and POPCNT. */
bool tokenize_have_avx2(void);
size_t tokenize_words_avx2(const uint8_t *text, size_t size, size_t from, size_t *bounds, size_t capacity,
                           size_t *next);

#endif
