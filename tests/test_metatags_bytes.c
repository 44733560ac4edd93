/* test_metatags_bytes.c: metatags' vector byte scans and the one-pass survey against plain loops, on random and hostile pages (built once per code path). */
#include "../apps/metatags/metatags.h"

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

/* Bytes mostly ASCII, with what the scans look for sprinkled in. */
static void fill(uint8_t *page, size_t size, const uint8_t *literal, size_t literal_size)
{
    static const char *const pieces[] = {"\xc2\xb6", "\xe2\x80\x9c", "\xf0\x9f\x98\x80", "\xe9", "\xed\xa0\x80",
                                         "\xc0\xaf", "\xf4\x90\x80\x80", "\x80", "\0", "<META ", "<meta", "<mEta "};
    for (size_t i = 0; i < size; i++)
        page[i] = (uint8_t)(' ' + next_random() % 90);
    size_t events = next_random() % 8;
    for (size_t e = 0; e < events && size > 0; e++) {
        const char *piece = pieces[next_random() % (sizeof pieces / sizeof pieces[0])];
        size_t length = piece[0] == '\0' ? 1 : strlen(piece);
        size_t at = next_random() % size;
        for (size_t k = 0; k < length && at + k < size; k++)
            page[at + k] = (uint8_t)piece[k];
    }
    if (next_random() % 2 && size >= literal_size) {
        size_t at = next_random() % (size - literal_size + 1);
        memcpy(page + at, literal, literal_size);
    }
}

static void plain_check(const uint8_t *page, size_t size, page_text_check *check)
{
    check->first_nul = check->first_invalid_utf8 = -1;
    for (size_t i = 0; i < size; i++)
        if (page[i] == 0) {
            check->first_nul = (int64_t)i;
            break;
        }
    for (size_t i = 0; i < size;) {
        size_t length = bytes_utf8_sequence(page + i, size - i);
        if (length == 0) {
            check->first_invalid_utf8 = (int64_t)i;
            break;
        }
        i += length;
    }
}

static uint8_t fold(uint8_t byte, bool caseless)
{
    return caseless && (byte | 0x20) >= 'a' && (byte | 0x20) <= 'z' ? (byte | 0x20) : byte;
}

static size_t plain_find(const uint8_t *page, size_t size, size_t from, const char *literal, bool caseless)
{
    size_t length = strlen(literal);
    for (size_t i = from; i + length <= size; i++) {
        size_t k = 0;
        while (k < length && fold(page[i + k], caseless) == fold((uint8_t)literal[k], caseless))
            k++;
        if (k == length)
            return i;
    }
    return size;
}

/* The survey of page against the plain loops: its text check, and every
 * hit bytes_find_surveyed gives in turn (from as scan.c moves it: past a
 * hit, or further). The page is copied to a buffer of its exact size, so
 * that ASan sees any read past it. */
static void check_survey(const uint8_t *page, size_t size, const char *literal, bool caseless, size_t jump)
{
    uint8_t *copy = malloc(size > 0 ? size : 1);
    CHECK(copy != NULL);
    if (size > 0)
        memcpy(copy, page, size);
    page_text_check expected;
    plain_check(copy, size, &expected);
    static page_survey survey;
    bytes_survey(NULL, copy, size, &survey);
    CHECK(survey.text.first_nul == expected.first_nul);
    CHECK(survey.text.first_invalid_utf8 == expected.first_invalid_utf8);

    literal_finder finder;
    bytes_finder_init(&finder, (const uint8_t *)literal, strlen(literal), caseless);
    bytes_survey(&finder, copy, size, &survey);
    CHECK(survey.text.first_nul == expected.first_nul);
    CHECK(survey.text.first_invalid_utf8 == expected.first_invalid_utf8);
    for (size_t at = 0; at <= size;) {
        size_t hit = bytes_find_surveyed(&finder, &survey, copy, size, at);
        size_t expected_hit = plain_find(copy, size, at, literal, caseless);
        CHECK(hit == expected_hit);
        if (hit != expected_hit || hit >= size)
            break;
        at = hit + 1 + (jump > 0 ? next_random() % jump : 0);
    }
    free(copy);
}

/* Pages of every size up to 200 bytes with one thing each at every place:
 * the literal, a NUL, a good or bad sequence, or one cut by the page's
 * end, across the vector loops' 32- and 64-byte edges. */
static void check_hostile_pages(uint8_t *page)
{
    static const char *const pieces[] = {"<meta ", "<META ", "\xc2\xb6", "\xe2\x80\x9c", "\xf0\x9f\x98\x80",
                                         "\xe9", "\xed\xa0\x80", "\xc0\xaf", "\xf4\x90\x80\x80", "\x80",
                                         "\xe2\x80", "\xf0\x9f\x98", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf",
                                         "\xe0\x9f\xbf", "\xf0\x8f\xbf\xbf", "\xf8\x88\x80\x80\x80", ""};
    size_t piece_count = sizeof pieces / sizeof pieces[0];
    for (size_t size = 0; size <= 200; size++)
        for (size_t p = 0; p < piece_count; p++)
            for (size_t at = 0; at < size || (at == 0 && size == 0); at++) {
                memset(page, 'a', size);
                size_t length = pieces[p][0] == '\0' ? 1 : strlen(pieces[p]);
                for (size_t k = 0; k < length && at + k < size; k++)
                    page[at + k] = pieces[p][0] == '\0' ? 0 : (uint8_t)pieces[p][k];
                check_survey(page, size, "<meta ", p % 2 == 1, 0);
            }
    /* Longer pages, a sequence cut or the literal near 16 kB: the
     * survey's 128-byte steps there, then its 64-byte ones and the tail. */
    for (size_t size = 16380; size <= 16520; size += 35)
        for (size_t p = 0; p < piece_count; p++)
            for (size_t at = 16360; at < 16400 && at < size; at++) {
                memset(page, 'a', size);
                size_t length = pieces[p][0] == '\0' ? 1 : strlen(pieces[p]);
                for (size_t k = 0; k < length && at + k < size; k++)
                    page[at + k] = pieces[p][0] == '\0' ? 0 : (uint8_t)pieces[p][k];
                check_survey(page, size, "<meta ", p % 2 == 1, 0);
            }
    /* More candidates ("<m") than a survey lists, then real ones after. */
    for (size_t size = 500; size < 5000; size += 377) {
        for (size_t i = 0; i < size; i++)
            page[i] = i % 2 == 0 ? '<' : 'm';
        for (size_t at = size / 3; at + 6 <= size; at += size / 5)
            memcpy(page + at, "<meta ", 6);
        check_survey(page, size, "<meta ", false, 0);
        check_survey(page, size, "<meta ", true, 7);
    }
}

int main(void)
{
    static const char *const literals[] = {"<meta ", "<m", "content=\"", "x", "\xc2\xb6<"};
    uint8_t *page = malloc(4096);
    CHECK(page != NULL);
    for (int round = 0; round < 20000; round++) {
        const char *literal = literals[round % 5];
        bool caseless = (round / 5) % 2;
        size_t size = next_random() % (round % 3 == 0 ? 4096 : 200);
        fill(page, size, (const uint8_t *)literal, strlen(literal));

        page_text_check got, expected;
        bytes_check_text(page, size, &got);
        plain_check(page, size, &expected);
        CHECK(got.first_nul == expected.first_nul);
        CHECK(got.first_invalid_utf8 == expected.first_invalid_utf8);

        literal_finder finder;
        bytes_finder_init(&finder, (const uint8_t *)literal, strlen(literal), caseless);
        size_t from = size > 0 ? next_random() % (size + 1) : 0;
        CHECK(bytes_find(&finder, page, size, from) == plain_find(page, size, from, literal, caseless));
        /* Every hit in turn, as scan.c asks for them: the vector loops
         * start again at any offset, and stop near the page's end. */
        for (size_t at = 0; at < size;) {
            size_t hit = bytes_find(&finder, page, size, at);
            size_t expected_hit = plain_find(page, size, at, literal, caseless);
            CHECK(hit == expected_hit);
            if (hit != expected_hit || hit >= size)
                break;
            at = hit + 1;
        }
        check_survey(page, size, literal, caseless, round % 2 == 0 ? 0 : 300);
    }
    uint8_t *hostile = malloc(20000);
    CHECK(hostile != NULL);
    check_hostile_pages(hostile);
    free(hostile);
    free(page);
    return check_failures ? 1 : 0;
}
