/* scan_floor.c: read_floor plus a hand-written scan for <meta .*?>, printing what metatags prints (the listing, or --count), on OpenMP threads. */
#define _GNU_SOURCE /* getline, strdup, DT_* under -std=c11 */
#include "page_list.h"

#include <immintrin.h>
#include <inttypes.h>
#include <omp.h>

/* metatags' default pattern, <meta .*?> (PCRE2, not caseless, newline LF,
 * no UTF mode; apps/metatags/scan.c), as re.findall finds it in a page's
 * bytes: "<meta " and then the shortest run of bytes other than \n up to
 * the first '>'. So a match is "<meta " up to the first '>' or '\n' after
 * it: a '>' ends the match and the search goes on after it; a '\n' (or
 * the page's end) first means no match for this "<meta ", nor for any
 * other before that '\n', and the search goes on from there. */

static const uint8_t open_literal[6] = {'<', 'm', 'e', 't', 'a', ' '};

static inline uint32_t load32(const uint8_t *p)
{
    uint32_t value;
    memcpy(&value, p, sizeof value);
    return value;
}

/* ---- The two searches: AVX2, and plain C where AVX2 does not run ------- */

/* The first "<meta " at or after from that fits in size, or size. Three
 * of its bytes are tested 32 positions at a time, the rest only where all
 * three match: '<' and ' ' alone also match every "<span " of a page
 * (Python's docs are full of them), "<m" is rare. */
__attribute__((target("avx2"))) static size_t find_open_avx2(const uint8_t *data, size_t size, size_t from)
{
    const __m256i less = _mm256_set1_epi8('<'), m = _mm256_set1_epi8('m'), space = _mm256_set1_epi8(' ');
    const uint32_t middle = load32(open_literal + 1);
    for (size_t at = from; at + sizeof open_literal <= size; at += 32) {
        __m256i first = _mm256_loadu_si256((const __m256i *)(data + at));
        __m256i second = _mm256_loadu_si256((const __m256i *)(data + at + 1));
        __m256i last = _mm256_loadu_si256((const __m256i *)(data + at + 5));
        __m256i both = _mm256_and_si256(_mm256_cmpeq_epi8(first, less), _mm256_cmpeq_epi8(second, m));
        uint32_t bits = (uint32_t)_mm256_movemask_epi8(_mm256_and_si256(both, _mm256_cmpeq_epi8(last, space)));
        size_t fits = size - sizeof open_literal + 1 - at; /* starts at < size - 5 */
        if (fits < 32)
            bits &= (UINT32_C(1) << fits) - 1;
        for (; bits != 0; bits &= bits - 1) {
            size_t candidate = at + (size_t)__builtin_ctz(bits);
            if (load32(data + candidate + 1) == middle)
                return candidate;
        }
    }
    return size;
}

/* The first '>' or '\n' at or after from, or size. */
__attribute__((target("avx2"))) static size_t find_close_avx2(const uint8_t *data, size_t size, size_t from)
{
    const __m256i greater = _mm256_set1_epi8('>'), newline = _mm256_set1_epi8('\n');
    for (size_t at = from; at < size; at += 32) {
        __m256i bytes = _mm256_loadu_si256((const __m256i *)(data + at));
        uint32_t bits = (uint32_t)_mm256_movemask_epi8(
            _mm256_or_si256(_mm256_cmpeq_epi8(bytes, greater), _mm256_cmpeq_epi8(bytes, newline)));
        if (size - at < 32)
            bits &= (UINT32_C(1) << (size - at)) - 1;
        if (bits != 0)
            return at + (size_t)__builtin_ctz(bits);
    }
    return size;
}

static size_t find_open_plain(const uint8_t *data, size_t size, size_t from)
{
    while (from + sizeof open_literal <= size) {
        const uint8_t *less = memchr(data + from, '<', size - sizeof open_literal + 1 - from);
        if (less == NULL)
            break;
        size_t candidate = (size_t)(less - data);
        if (memcmp(less, open_literal, sizeof open_literal) == 0)
            return candidate;
        from = candidate + 1;
    }
    return size;
}

static size_t find_close_plain(const uint8_t *data, size_t size, size_t from)
{
    for (; from < size; from++)
        if (data[from] == '>' || data[from] == '\n')
            return from;
    return size;
}

static size_t (*find_open)(const uint8_t *, size_t, size_t) = find_open_plain;
static size_t (*find_close)(const uint8_t *, size_t, size_t) = find_close_plain;

/* ---- Counting matches: a table per thread, merged at the end ------------ */

typedef struct counted {
    uint64_t hash, count;
    const uint8_t *bytes; /* in the thread's arena */
    size_t size;
} counted;

typedef struct counter {
    counted *slots;
    size_t mask, used;
    uint8_t *arena;
    size_t arena_used, arena_size;
    bool out_of_memory;
} counter;

static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = UINT64_C(0x9e3779b97f4a7c15) ^ n;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        h = (h ^ word) * UINT64_C(0xff51afd7ed558ccd);
        h ^= h >> 32;
    }
    for (; n > 0; p++, n--)
        h = (h ^ *p) * UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 29;
    return h * UINT64_C(0xbf58476d1ce4e5b9);
}

static int counter_grow(counter *c)
{
    size_t capacity = c->slots != NULL ? 2 * (c->mask + 1) : 4096;
    counted *slots = calloc(capacity, sizeof *slots);
    if (slots == NULL)
        return -1;
    for (size_t i = 0; c->slots != NULL && i <= c->mask; i++) {
        if (c->slots[i].bytes == NULL)
            continue;
        size_t j = c->slots[i].hash & (capacity - 1);
        while (slots[j].bytes != NULL)
            j = (j + 1) & (capacity - 1);
        slots[j] = c->slots[i];
    }
    free(c->slots);
    c->slots = slots;
    c->mask = capacity - 1;
    return 0;
}

/* Adds count to bytes' entry; bytes are copied into the arena unless
 * owned is set (a merge's entries stay in their own thread's arena). */
static void counter_add(counter *c, const uint8_t *bytes, size_t size, uint64_t hash, uint64_t count, bool owned)
{
    if ((c->slots == NULL || 2 * (c->used + 1) > c->mask + 1) && counter_grow(c) != 0) {
        c->out_of_memory = true;
        return;
    }
    size_t i = hash & c->mask;
    for (; c->slots[i].bytes != NULL; i = (i + 1) & c->mask) {
        counted *s = &c->slots[i];
        if (s->hash == hash && s->size == size && memcmp(s->bytes, bytes, size) == 0) {
            s->count += count;
            return;
        }
    }
    if (!owned) {
        if (c->arena == NULL || c->arena_size - c->arena_used < size) {
            /* Old arenas are never freed: their bytes are still counted. */
            c->arena_size = size > (1u << 20) ? size : (1u << 20);
            c->arena = malloc(c->arena_size);
            c->arena_used = 0;
            if (c->arena == NULL) {
                c->out_of_memory = true;
                return;
            }
        }
        memcpy(c->arena + c->arena_used, bytes, size);
        bytes = c->arena + c->arena_used;
        c->arena_used += size;
    }
    c->slots[i] = (counted){hash, count, bytes, size};
    c->used++;
}

static int by_count_then_bytes(const void *pa, const void *pb)
{
    const counted *a = pa, *b = pb;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    int order = memcmp(a->bytes, b->bytes, a->size < b->size ? a->size : b->size);
    return order != 0 ? order : (a->size > b->size) - (a->size < b->size);
}

/* ---- The listing: each block of pages prints into a buffer of its own --- */

#define BLOCK_PAGES 16

typedef struct text {
    char *data;
    size_t size, capacity;
} text;

static int text_append(text *t, const void *a, size_t na, const void *b, size_t nb)
{
    size_t need = t->size + na + nb + 2;
    if (need > t->capacity) {
        size_t capacity = t->capacity ? t->capacity : 16384;
        while (capacity < need)
            capacity *= 2;
        char *grown = realloc(t->data, capacity);
        if (grown == NULL)
            return -1;
        t->data = grown;
        t->capacity = capacity;
    }
    memcpy(t->data + t->size, a, na);
    t->data[t->size + na] = '\t';
    memcpy(t->data + t->size + na + 1, b, nb);
    t->data[t->size + na + 1 + nb] = '\n';
    t->size = need;
    return 0;
}

/* ---- main ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    bool count_mode = argc > 1 && strcmp(argv[1], "--count") == 0;
    int first = count_mode ? 2 : 1;
    if (first >= argc || strcmp(argv[1], "--help") == 0) {
        fprintf(first >= argc ? stderr : stdout,
                "usage: scan_floor [--count] INPUT...\n"
                "Finds <meta .*?> in every page of the INPUTs (FILE, DIRECTORY, @LIST, as metatags\n"
                "takes them) and prints what metatags prints: PATH<TAB>MATCH per match, pages in\n"
                "input order; with --count, COUNT<TAB>MATCH per distinct match, most frequent\n"
                "first, ties by bytes. Threads from OMP_NUM_THREADS; SCAN_FLOOR_PLAIN=1 uses the\n"
                "plain C search even where AVX2 runs.\n");
        return first >= argc ? 2 : 0;
    }
    __builtin_cpu_init();
    const char *plain = getenv("SCAN_FLOOR_PLAIN");
    if (!(plain != NULL && strcmp(plain, "1") == 0) && __builtin_cpu_supports("avx2")) {
        find_open = find_open_avx2;
        find_close = find_close_avx2;
    }
    static char output_buffer[1 << 20];
    setvbuf(stdout, output_buffer, _IOFBF, sizeof output_buffer);

    page_list list = {0};
    if (page_list_expand(&list, argv + first, argc - first) != 0) {
        fprintf(stderr, "scan_floor: out of memory\n");
        return 1;
    }
    int threads = omp_get_max_threads();
    size_t blocks = (list.count + BLOCK_PAGES - 1) / BLOCK_PAGES;
    text *listing = count_mode ? NULL : calloc(blocks + 1, sizeof *listing);
    counter *counters = count_mode ? calloc((size_t)threads, sizeof *counters) : NULL;
    if (count_mode ? counters == NULL : listing == NULL) {
        fprintf(stderr, "scan_floor: out of memory\n");
        return 1;
    }
    int failures = list.failures;
    bool out_of_memory = false;
#pragma omp parallel num_threads(threads) reduction(+ : failures) reduction(|| : out_of_memory)
    {
        page_buffer buffer = {NULL, 0};
        counter *mine = count_mode ? &counters[omp_get_thread_num()] : NULL;
#pragma omp for schedule(dynamic, 1)
        for (size_t block = 0; block < blocks; block++) {
            size_t end = (block + 1) * BLOCK_PAGES < list.count ? (block + 1) * BLOCK_PAGES : list.count;
            for (size_t page = block * BLOCK_PAGES; page < end; page++) {
                int64_t got = page_read(list.names[page], &buffer);
                if (got < 0) {
                    fprintf(stderr, "scan_floor: %s: %s\n", list.names[page], strerror(errno));
                    failures++;
                    continue;
                }
                const uint8_t *data = buffer.data;
                size_t size = (size_t)got, at = 0;
                while (at < size) {
                    size_t start = find_open(data, size, at);
                    if (start >= size)
                        break;
                    size_t close = find_close(data, size, start + sizeof open_literal);
                    if (close >= size || data[close] != '>') {
                        at = close; /* a '\n' or the end before any '>' */
                        continue;
                    }
                    size_t match_size = close + 1 - start;
                    if (count_mode)
                        counter_add(mine, data + start, match_size, hash_bytes(data + start, match_size), 1, false);
                    else if (text_append(&listing[block], list.names[page], list.lengths[page], data + start,
                                         match_size) != 0)
                        out_of_memory = true;
                    at = close + 1;
                }
            }
        }
        if (mine != NULL && mine->out_of_memory)
            out_of_memory = true;
        free(buffer.data);
    }
    if (out_of_memory) {
        fprintf(stderr, "scan_floor: out of memory\n");
        return 1;
    }
    if (!count_mode) {
        for (size_t block = 0; block < blocks; block++)
            fwrite(listing[block].data, 1, listing[block].size, stdout);
    } else {
        /* Few distinct matches (thousands): one thread merges and sorts. */
        counter *all = &counters[0];
        for (int t = 1; t < threads; t++)
            for (size_t i = 0; counters[t].slots != NULL && i <= counters[t].mask; i++) {
                const counted *s = &counters[t].slots[i];
                if (s->bytes != NULL)
                    counter_add(all, s->bytes, s->size, s->hash, s->count, true);
            }
        if (all->out_of_memory) {
            fprintf(stderr, "scan_floor: out of memory\n");
            return 1;
        }
        counted *sorted = malloc((all->used + 1) * sizeof *sorted);
        if (sorted == NULL) {
            fprintf(stderr, "scan_floor: out of memory\n");
            return 1;
        }
        size_t n = 0;
        for (size_t i = 0; all->slots != NULL && i <= all->mask; i++)
            if (all->slots[i].bytes != NULL)
                sorted[n++] = all->slots[i];
        qsort(sorted, n, sizeof *sorted, by_count_then_bytes);
        for (size_t i = 0; i < n; i++) {
            printf("%" PRIu64 "\t", sorted[i].count);
            fwrite(sorted[i].bytes, 1, sorted[i].size, stdout);
            putchar('\n');
        }
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "scan_floor: write error: %s\n", strerror(errno));
        return 1;
    }
    return failures > 0 ? 1 : 0;
}
