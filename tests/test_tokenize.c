/* test_tokenize.c: wordcount's tokenizer, its AVX2 and scalar ways, against a plain bytes.split(). */
#include "../examples/wordcount/tokenize.h"

#include "check.h"

#include <stdlib.h>
#include <string.h>

static uint64_t state = 88172645463325252ull;
static uint32_t next_random(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (uint32_t)state;
}

/* Python's bytes.split() whitespace, written out rather than taken from
 * tokenize.h: b" \t\n\x0b\x0c\r". */
static bool python_space(uint8_t byte)
{
    return byte != 0 && memchr(" \t\n\v\f\r", byte, 6) != NULL;
}

/* The words of text[from, size) the plain way, as start, end pairs. */
static size_t plain_words(const uint8_t *text, size_t size, size_t from, size_t *bounds)
{
    size_t count = 0;
    for (size_t i = from; i < size;) {
        if (python_space(text[i])) {
            i++;
            continue;
        }
        bounds[2 * count] = i;
        while (i < size && !python_space(text[i]))
            i++;
        bounds[2 * count + 1] = i;
        count++;
    }
    return count;
}

typedef size_t tokenize_fn(const uint8_t *, size_t, size_t, size_t *, size_t, size_t *);

static size_t restarts_inside_words; /* calls that stopped for room in a word */

/* The words by the header's loop, capacity at a time, gathered into all. */
static size_t gathered_words(tokenize_fn *tokenize, const uint8_t *text, size_t size, size_t from, size_t capacity,
                             size_t *all)
{
    size_t *bounds = malloc(2 * capacity * sizeof *bounds);
    CHECK(bounds != NULL);
    size_t total = 0;
    for (size_t at = from; at < size;) {
        size_t was = at;
        size_t count = tokenize(text, size, at, bounds, capacity, &at);
        CHECK(count <= capacity);
        CHECK(at > was || count > 0); /* progress */
        CHECK(at <= size);
        if (at > was && at < size) {
            /* Stopped early: only for room, and with most of it used. */
            CHECK(count + 32 >= capacity);
            if (!python_space(text[at]))
                restarts_inside_words++;
        }
        if (at <= was && count == 0)
            break;
        memcpy(all + 2 * total, bounds, 2 * count * sizeof *bounds);
        total += count;
    }
    free(bounds);
    return total;
}

/* Every way, at several capacities, gives the plain words. */
static void check_buffer(const uint8_t *text, size_t size, size_t from)
{
    size_t *expected = malloc((size + 1) * sizeof *expected), *got = malloc((size + 1) * sizeof *got);
    CHECK(expected != NULL && got != NULL);
    size_t want = plain_words(text, size, from, expected);
    static const size_t capacities[] = {TOKENIZE_MIN_WORDS, TOKENIZE_MIN_WORDS + 1, 100, 4096};
    tokenize_fn *ways[] = {tokenize_words_scalar, tokenize_words, tokenize_have_avx2() ? tokenize_words_avx2 : NULL};
    for (size_t w = 0; w < sizeof ways / sizeof ways[0]; w++) {
        if (ways[w] == NULL)
            continue;
        for (size_t c = 0; c < sizeof capacities / sizeof capacities[0]; c++) {
            size_t count = gathered_words(ways[w], text, size, from, capacities[c], got);
            CHECK(count == want);
            if (count == want && memcmp(got, expected, 2 * want * sizeof *got) != 0) {
                fprintf(stderr, "way %zu, capacity %zu, size %zu, from %zu: other words\n", w, capacities[c], size,
                        from);
                check_failures++;
            }
        }
    }
    free(expected);
    free(got);
}

/* A buffer of exactly size bytes, so that ASan sees any read past it. */
static uint8_t *exact_copy(const uint8_t *bytes, size_t size)
{
    uint8_t *copy = malloc(size > 0 ? size : 1);
    CHECK(copy != NULL);
    if (size > 0)
        memcpy(copy, bytes, size);
    return copy;
}

/* Random bytes: every whitespace byte, the bytes that share a low nibble
 * with one (the AVX2 way looks nibbles up), NUL, high bytes, letters. */
static void fill_random(uint8_t *text, size_t size, unsigned space_percent, unsigned word_scale)
{
    static const uint8_t spaces[] = {' ', '\t', '\n', '\v', '\f', '\r'};
    static const uint8_t others[] = {'a', 'Z', 0, 0x08, 0x0E, 0x1F, 0x10, 0x19, 0x1A, 0x2D, 0x30, 0x7F,
                                     0x80, 0x89, 0x8D, 0xA0, 0xAC, 0xC3, 0xE9, 0xFF, '!', '<'};
    size_t i = 0;
    while (i < size) {
        bool space = next_random() % 100 < space_percent;
        size_t run = 1 + next_random() % word_scale;
        for (size_t k = 0; k < run && i < size; k++, i++)
            text[i] = space ? spaces[next_random() % sizeof spaces] : others[next_random() % sizeof others];
    }
}

int main(void)
{
    /* Every byte value alone and between words: whitespace is exactly
     * Python's six bytes. */
    for (int value = 0; value < 256; value++) {
        uint8_t byte = (uint8_t)value;
        CHECK(tokenize_is_space(byte) == python_space(byte));
        uint8_t between[] = {'a', byte, 'b'};
        for (size_t size = 1; size <= 3; size++) {
            uint8_t *text = exact_copy(between + 3 - size, size);
            check_buffer(text, size, 0);
            free(text);
        }
        uint8_t block[100];
        memset(block, 'x', sizeof block);
        for (size_t at = 0; at < sizeof block; at += 7)
            block[at] = byte;
        check_buffer(block, sizeof block, 0);
    }

    /* Every length 0..100, dense and sparse words, from every offset. */
    uint8_t scratch[4096];
    for (int round = 0; round < 200; round++) {
        for (size_t size = 0; size <= 100; size++) {
            fill_random(scratch, size, 30 + (unsigned)round % 50, 1 + (unsigned)round % 9);
            uint8_t *text = exact_copy(scratch, size);
            check_buffer(text, size, 0);
            check_buffer(text, size, size > 0 ? next_random() % (size + 1) : 0);
            free(text);
        }
    }

    /* Words that cross the 32- and 64-byte steps, and words at both ends:
     * each word [start, end) around each boundary, alone in spaces or in
     * a buffer of words. */
    static const size_t edges[] = {0, 1, 31, 32, 33, 63, 64, 65, 95, 96, 127, 128, 129};
    for (size_t s = 0; s < sizeof edges / sizeof edges[0]; s++)
        for (size_t e = 0; e < sizeof edges / sizeof edges[0]; e++)
            for (size_t size = 130; size <= 200; size += 35)
                for (int background = 0; background < 3; background++) {
                    size_t start = edges[s], end = edges[e] + 1;
                    if (end <= start)
                        continue;
                    if (background == 2)
                        fill_random(scratch, size, 40, 5);
                    else
                        memset(scratch, background ? '\n' : ' ', size);
                    memset(scratch + start, 'w', end - start);
                    if (start > 0)
                        scratch[start - 1] = '\t';
                    if (end < size)
                        scratch[end] = '\r';
                    for (size_t cut = end; cut <= end + 1 && cut <= size; cut++) {
                        /* cut == end: the word ends the buffer */
                        uint8_t *text = exact_copy(scratch, cut);
                        check_buffer(text, cut, 0);
                        check_buffer(text, cut, start);
                        free(text);
                    }
                }

    /* Long buffers of short words: many calls per buffer, some stopping
     * for room inside a word, which the next call starts again. */
    for (int round = 0; round < 300; round++) {
        size_t size = 200 + next_random() % (sizeof scratch - 200);
        fill_random(scratch, size, 20 + next_random() % 60, 1 + next_random() % 70);
        uint8_t *text = exact_copy(scratch, size);
        check_buffer(text, size, 0);
        free(text);
    }
    memset(scratch, 'q', sizeof scratch); /* one word of 4 kB, and none */
    check_buffer(scratch, sizeof scratch, 0);
    memset(scratch, '\f', sizeof scratch);
    check_buffer(scratch, sizeof scratch, 0);
    for (size_t i = 0; i < sizeof scratch; i++) /* a boundary at every byte */
        scratch[i] = i % 2 ? ' ' : 'a';
    check_buffer(scratch, sizeof scratch, 0);
    if (tokenize_have_avx2())
        CHECK(restarts_inside_words > 0); /* the AVX2 way's restart was tried */

    printf("tokenize: the scalar way%s agree%s with bytes.split() (%zu calls stopped inside a word)\n",
           tokenize_have_avx2() ? " and the AVX2 way" : " (no AVX2 here or in this build)",
           tokenize_have_avx2() ? "" : "s", restarts_inside_words);
    return check_failures ? 1 : 0;
}
