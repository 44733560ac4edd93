/* omp_wordcount.c: the hand-written OpenMP limit for examples/wordcount: an AVX2 tokenizer, per-thread tables with short words inline, merged by hash partition. */
#define _GNU_SOURCE /* pread, madvise(MADV_HUGEPAGE), clock_gettime under -std=c11 */
#include <errno.h>
#include <fcntl.h>
#include <immintrin.h>
#include <omp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The same job as examples/wordcount, with nothing a framework needs: a
 * word is a maximal run of bytes other than space, \t, \n, \v, \f and \r
 * (Python's bytes.split()), words never span two files, and the output is
 * COUNT<TAB>WORD, count descending, then the word's bytes. */

#define PARTITION_BITS 4
#define PARTITIONS (1u << PARTITION_BITS)
#define INLINE_BYTES 44
/* Text is tokenized in segments this long: the word positions of one
 * segment, then their hashes, then the inserts, so that every slot is
 * prefetched a few hundred words before it is touched. */
#define SEGMENT_BYTES 4096
#ifndef PREFETCH_DISTANCE
#define PREFETCH_DISTANCE 16
#endif
/* Room after the text for 64-byte block loads and 8-byte key loads. */
#define PADDING 128

/* One key per cache line: the hash, the count, the length and, for words
 * up to INLINE_BYTES, the bytes themselves, zero-padded; a longer word
 * keeps a pointer to its copy in the thread's arena in key[0..7]. */
typedef struct slot {
    uint64_t hash;
    uint64_t count;
    uint32_t length;
    uint8_t key[INLINE_BYTES];
} __attribute__((aligned(64))) slot;

_Static_assert(sizeof(slot) == 64, "a slot is one cache line");

/* tags[i] is 0 while slots[i] is empty, else 7 bits of its hash plus 1:
 * probes step through the tags (1 byte a slot, 32 KiB for 32,768 slots,
 * which stay in L2) and touch a slot's line only when its tag matches. */
typedef struct partition {
    uint8_t *tags;
    slot *slots;
    uint64_t mask, used, grow_at;
} partition;

typedef struct arena_block {
    struct arena_block *next;
    size_t used, size;
    uint8_t bytes[];
} arena_block;

/* A thread's table: one open-addressing table per partition of the hash
 * space (its top bits), so that the merge hands each partition to one
 * thread, which needs no lock. */
typedef struct table {
    partition parts[PARTITIONS];
    arena_block *arena;
    bool out_of_memory;
} table;

typedef struct file_range {
    int file;
    uint64_t offset, length;
} file_range;

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t value;
    memcpy(&value, p, sizeof value);
    return value;
}

static inline uint64_t fold_multiply(uint64_t a, uint64_t b)
{
    unsigned __int128 product = (unsigned __int128)a * b;
    return (uint64_t)product ^ (uint64_t)(product >> 64);
}

/* masks[n][k]: the bytes of word k (8 bytes each) that lie within the
 * first n bytes, so that words up to 32 bytes (90% of this text) are
 * hashed and compared without a branch on their length. */
static uint64_t masks[33][4];

static void masks_init(void)
{
    for (size_t n = 0; n <= 32; n++)
        for (size_t k = 0; k < 4; k++) {
            size_t bytes = n > 8 * k ? n - 8 * k : 0;
            masks[n][k] = bytes >= 8 ? ~UINT64_C(0) : (UINT64_C(1) << (8 * bytes)) - 1;
        }
}

/* Two independent 128-bit multiplies per 32 bytes; reads up to 31 bytes
 * past the word (the buffers have PADDING), masked off. */
static inline uint64_t hash_word(const uint8_t *p, size_t n)
{
    size_t head = n < 32 ? n : 32;
    const uint64_t *m = masks[head];
    uint64_t h = fold_multiply((load64(p) & m[0]) ^ UINT64_C(0xa0761d6478bd642f),
                               (load64(p + 8) & m[1]) ^ UINT64_C(0xe7037ed1a0b428db) ^ n) +
                 fold_multiply((load64(p + 16) & m[2]) ^ UINT64_C(0x8ebc6af09c88c6e3),
                               (load64(p + 24) & m[3]) ^ UINT64_C(0x589965cc75374cc3));
    for (size_t at = 32; at < n; at += 32) {
        m = masks[n - at < 32 ? n - at : 32];
        h = fold_multiply((load64(p + at) & m[0]) ^ h, (load64(p + at + 8) & m[1]) ^ UINT64_C(0x1d8e4e27c47d124f)) +
            fold_multiply((load64(p + at + 16) & m[2]) ^ UINT64_C(0x8ebc6af09c88c6e3),
                          (load64(p + at + 24) & m[3]) ^ UINT64_C(0x589965cc75374cc3));
    }
    return h;
}

static inline const uint8_t *slot_key(const slot *s)
{
    if (s->length <= INLINE_BYTES)
        return s->key;
    const uint8_t *pointer;
    memcpy(&pointer, s->key, sizeof pointer);
    return pointer;
}

/* Inline keys: the first 32 bytes at once with masks (loads within the
 * slot: key + 32 is byte 52 of 64), then the rest up to 44. Longer keys
 * 8 bytes at a time, the last load ending at the last byte, so that no
 * load reads past the key (nor past the word, which may be another slot's
 * key when partitions merge). */
static inline bool same_key(const slot *s, const uint8_t *word, size_t n)
{
    const uint8_t *key = s->key;
    if (n <= INLINE_BYTES) {
        const uint64_t *m = masks[n < 32 ? n : 32];
        uint64_t diff = ((load64(key) ^ load64(word)) & m[0]) | ((load64(key + 8) ^ load64(word + 8)) & m[1]) |
                        ((load64(key + 16) ^ load64(word + 16)) & m[2]) |
                        ((load64(key + 24) ^ load64(word + 24)) & m[3]);
        if (n > 32)
            diff |= ((load64(key + 32) ^ load64(word + 32)) & masks[n - 32][0]) |
                    (load64(key + n - 8) ^ load64(word + n - 8));
        return diff == 0;
    }
    key = slot_key(s);
    for (size_t i = 0; i + 8 < n; i += 8)
        if (load64(key + i) != load64(word + i))
            return false;
    return load64(key + n - 8) == load64(word + n - 8);
}

/* Tables are mapped, not malloc'd: zeroed pages, and huge pages where the
 * kernel gives them (2 MiB-aligned, or it cannot), since the probes jump
 * all over tens of MB and a 4 KiB page per probe would miss the TLB. */
static void *map_zeroed(size_t bytes)
{
    enum { HUGE = 2u << 20 };
    if (bytes < HUGE)
        return calloc(1, bytes);
    uint8_t *memory = mmap(NULL, bytes + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED)
        return NULL;
    size_t head = (HUGE - (uintptr_t)memory % HUGE) % HUGE;
    if (head > 0)
        munmap(memory, head);
    munmap(memory + head + bytes, HUGE - head);
    memory += head;
    (void)madvise(memory, bytes, MADV_HUGEPAGE);
    /* Written once now: a probe's read of an untouched page maps the
     * shared zero page, and the first insert there then copies it and
     * flushes the other threads' TLBs (an IPI per page: 12% of the run). */
    for (size_t offset = 0; offset < bytes; offset += 4096)
        ((volatile uint8_t *)memory)[offset] = 0;
    return memory;
}

static void unmap_zeroed(void *memory, size_t bytes)
{
    if (bytes < (2u << 20))
        free(memory);
    else if (memory != NULL)
        munmap(memory, bytes);
}

static void partition_free(partition *part)
{
    unmap_zeroed(part->slots, (part->mask + 1) * sizeof(slot));
    unmap_zeroed(part->tags, part->mask + 1);
    part->slots = NULL;
    part->tags = NULL;
}

/* At most 5/8 full: linear probing stays short, and doubling keeps it so. */
static int partition_init(partition *part, uint64_t capacity)
{
    part->slots = map_zeroed(capacity * sizeof(slot));
    part->tags = map_zeroed(capacity);
    part->mask = capacity - 1;
    part->used = 0;
    part->grow_at = capacity / 8 * 5;
    if (part->slots == NULL || part->tags == NULL) {
        partition_free(part);
        return -1;
    }
    return 0;
}

static inline uint8_t tag_of(uint64_t hash)
{
    return (uint8_t)(((hash >> 52) & 0x7f) + 1);
}

/* The slot holding the word, or the empty one where it goes. */
static inline uint64_t probe(const partition *part, uint64_t hash, const uint8_t *word, size_t n)
{
    uint8_t tag = tag_of(hash);
    for (uint64_t i = hash & part->mask;; i = (i + 1) & part->mask) {
        uint8_t here = part->tags[i];
        if (here == 0)
            return i;
        if (here == tag) {
            const slot *s = &part->slots[i];
            if (s->hash == hash && s->length == n && same_key(s, word, n))
                return i;
        }
    }
}

static int partition_grow(partition *part)
{
    partition grown;
    if (partition_init(&grown, 2 * (part->mask + 1)) != 0)
        return -1;
    for (uint64_t i = 0; i <= part->mask; i++) {
        if (part->tags[i] == 0)
            continue;
        uint64_t j = part->slots[i].hash & grown.mask;
        while (grown.tags[j] != 0)
            j = (j + 1) & grown.mask;
        grown.tags[j] = part->tags[i];
        grown.slots[j] = part->slots[i];
    }
    grown.used = part->used;
    partition_free(part);
    *part = grown;
    return 0;
}

static const uint8_t *arena_copy(table *t, const uint8_t *word, size_t n)
{
    if (t->arena == NULL || t->arena->size - t->arena->used < n) {
        size_t size = n > (1u << 20) ? n : (1u << 20);
        arena_block *block = malloc(sizeof *block + size);
        if (block == NULL)
            return NULL;
        block->next = t->arena;
        block->used = 0;
        block->size = size;
        t->arena = block;
    }
    uint8_t *copy = t->arena->bytes + t->arena->used;
    memcpy(copy, word, n);
    t->arena->used += n;
    return copy;
}

/* Fills the empty slot i with the word; its key bytes are still zero. */
static inline void claim(table *t, partition *part, uint64_t i, uint64_t hash, const uint8_t *word, size_t n,
                         uint64_t count)
{
    slot *s = &part->slots[i];
    if (n <= INLINE_BYTES) {
        memcpy(s->key, word, n);
    } else {
        const uint8_t *copy = arena_copy(t, word, n);
        if (copy == NULL) {
            t->out_of_memory = true;
            return;
        }
        memcpy(s->key, &copy, sizeof copy);
    }
    s->hash = hash;
    s->count = count;
    s->length = (uint32_t)n;
    part->tags[i] = tag_of(hash);
    if (++part->used > part->grow_at && partition_grow(part) != 0)
        t->out_of_memory = true;
}

static inline partition *partition_of(table *t, uint64_t hash)
{
    return &t->parts[hash >> (64 - PARTITION_BITS)];
}

static inline void add_word(table *t, const uint8_t *word, size_t n, uint64_t hash)
{
    partition *part = partition_of(t, hash);
    uint64_t i = probe(part, hash, word, n);
    if (part->tags[i] != 0)
        part->slots[i].count++;
    else
        claim(t, part, i, hash, word, n, 1);
}

/* ---- The tokenizer ---------------------------------------------------- */

/* Bit i set when p[i] is ASCII whitespace, for the 64 bytes at p. */
static inline uint64_t space_mask_scalar(const uint8_t *p)
{
    uint64_t mask = 0;
    for (int i = 0; i < 64; i++) {
        unsigned c = p[i];
        mask |= (uint64_t)(c == ' ' || (c - 9u) <= 4u) << i;
    }
    return mask;
}

__attribute__((target("avx2"))) static inline uint64_t space_mask_avx2(const uint8_t *p)
{
    const __m256i space = _mm256_set1_epi8(' '), tab = _mm256_set1_epi8('\t'), four = _mm256_set1_epi8(4);
    __m256i low = _mm256_loadu_si256((const __m256i *)p), high = _mm256_loadu_si256((const __m256i *)(p + 32));
    /* \t, \n, \v, \f, \r are 9..13: c - 9 is at most 4, unsigned. */
    __m256i low_controls = _mm256_sub_epi8(low, tab), high_controls = _mm256_sub_epi8(high, tab);
    __m256i low_spaces = _mm256_or_si256(_mm256_cmpeq_epi8(low, space),
                                         _mm256_cmpeq_epi8(_mm256_min_epu8(low_controls, four), low_controls));
    __m256i high_spaces = _mm256_or_si256(_mm256_cmpeq_epi8(high, space),
                                          _mm256_cmpeq_epi8(_mm256_min_epu8(high_controls, four), high_controls));
    return (uint32_t)_mm256_movemask_epi8(low_spaces) | (uint64_t)(uint32_t)_mm256_movemask_epi8(high_spaces) << 32;
}

/* Appends base + the position of every set bit of bits to out; returns
 * the new end. Eight at a time without a branch per bit: most blocks of
 * this text hold at most eight word starts. */
static inline uint32_t *positions(uint32_t *out, uint32_t base, uint64_t bits)
{
    int count = __builtin_popcountll(bits);
    uint32_t *end = out + count;
    for (;;) {
        for (int i = 0; i < 8; i++) {
            /* The high bit keeps ctz defined once bits runs out. */
            out[i] = base + (uint32_t)__builtin_ctzll(bits | (UINT64_C(1) << 63));
            bits &= bits - 1;
        }
        out += 8;
        if (out >= end)
            return end;
    }
}

typedef struct tokenizer {
    const uint8_t *text;
    uint32_t end;          /* the words end here at the latest */
    uint64_t carry;        /* 1 when the byte before the next block is not a space */
    bool skip_first_end;   /* the range starts inside a word of the previous range */
    bool open;             /* a word has started and not yet ended */
    uint32_t open_start;
    uint32_t starts[SEGMENT_BYTES + 64], ends[SEGMENT_BYTES + 64];
    uint64_t hashes[SEGMENT_BYTES / 2 + 64];
} tokenizer;

/* Counts the words of text[from, tokens->end) that start there; the mask
 * function is a constant after inlining, so each caller below gets its own
 * loop. */
static inline __attribute__((always_inline)) void count_words(table *t, tokenizer *tokens, uint32_t from,
                                                               uint64_t (*space_mask)(const uint8_t *))
{
    const uint8_t *text = tokens->text;
    uint32_t end = tokens->end;
    for (uint32_t segment = from; segment < end; segment += SEGMENT_BYTES) {
        uint32_t segment_end = end - segment < SEGMENT_BYTES ? end : segment + SEGMENT_BYTES;
        uint32_t *starts = tokens->starts, *ends = tokens->ends;
        if (tokens->open)
            *starts++ = tokens->open_start;
        for (uint32_t block = segment; block < segment_end; block += 64) {
            uint64_t spaces = space_mask(text + block);
            if (segment_end - block < 64)
                spaces |= ~UINT64_C(0) << (segment_end - block);
            uint64_t words = ~spaces;
            uint64_t after_word = words << 1 | tokens->carry;
            tokens->carry = words >> 63;
            starts = positions(starts, block, words & ~after_word);
            ends = positions(ends, block, spaces & after_word);
        }
        uint32_t *first_end = tokens->ends;
        if (tokens->skip_first_end && ends > first_end) {
            first_end++;
            tokens->skip_first_end = false;
        }
        size_t count = (size_t)(ends - first_end);
        size_t started = (size_t)(starts - tokens->starts);
        tokens->open = started > count;
        if (tokens->open)
            tokens->open_start = tokens->starts[count];
        for (size_t i = 0; i < count; i++)
            tokens->hashes[i] = hash_word(text + tokens->starts[i], first_end[i] - tokens->starts[i]);
        /* Each slot is prefetched PREFETCH_DISTANCE words ahead: far enough
         * to hide a miss, near enough that the core's few miss buffers
         * are not all taken (prefetching a whole segment at once stalled
         * on them). */
        for (size_t i = 0; i < count; i++) {
            if (i + PREFETCH_DISTANCE < count) {
                uint64_t ahead = tokens->hashes[i + PREFETCH_DISTANCE];
                partition *part = partition_of(t, ahead);
                __builtin_prefetch(&part->tags[ahead & part->mask]);
                __builtin_prefetch(&part->slots[ahead & part->mask]);
            }
            add_word(t, text + tokens->starts[i], first_end[i] - tokens->starts[i], tokens->hashes[i]);
        }
    }
}

static uint64_t space_mask_scalar_call(const uint8_t *p)
{
    return space_mask_scalar(p);
}

__attribute__((target("avx2"))) static void count_words_avx2(table *t, tokenizer *tokens, uint32_t from)
{
    count_words(t, tokens, from, space_mask_avx2);
}

static void count_words_scalar(table *t, tokenizer *tokens, uint32_t from)
{
    count_words(t, tokens, from, space_mask_scalar_call);
}

static void (*count_words_best)(table *, tokenizer *, uint32_t);

/* ---- Reading ranges ---------------------------------------------------- */

static inline bool is_space(uint8_t c)
{
    return c == ' ' || (unsigned)(c - 9) <= 4u;
}

typedef struct reader {
    uint8_t *buffer;
    size_t capacity;
} reader;

static int reserve(reader *r, size_t have, size_t need)
{
    if (need + PADDING <= r->capacity)
        return 0;
    size_t capacity = r->capacity ? r->capacity : (1u << 16);
    while (capacity < need + PADDING)
        capacity *= 2;
    /* Page-aligned: the kernel's copy out of the page cache is several
     * times slower into a buffer that is not 64-byte aligned (AMD Zen). */
    uint8_t *grown = aligned_alloc(4096, capacity);
    if (grown == NULL)
        return -1;
    if (have > 0)
        memcpy(grown, r->buffer, have);
    free(r->buffer);
    r->buffer = grown;
    r->capacity = capacity;
    return 0;
}

static int read_fully(int fd, uint8_t *into, size_t size, uint64_t offset, size_t *got)
{
    *got = 0;
    while (*got < size) {
        ssize_t n = pread(fd, into + *got, size - *got, (off_t)(offset + *got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        if (n == 0)
            break;
        *got += (size_t)n;
    }
    return 0;
}

/* Reads the range from 64 bytes before it (so the file offset and the
 * buffer share their alignment), to the end of the last word that starts
 * in it, and counts the words that start in it. */
static int count_range(table *t, tokenizer *tokens, reader *r, int fd, const file_range *range)
{
    uint64_t start = range->offset >= 64 ? range->offset - 64 : 0;
    size_t begin = (size_t)(range->offset - start);
    size_t limit = begin + (size_t)range->length;
    size_t want = limit + 4096, have;
    int code;
    if (reserve(r, 0, want) != 0)
        return ENOMEM;
    if ((code = read_fully(fd, r->buffer, want, start, &have)) != 0)
        return code;
    if (have < limit)
        limit = have; /* the file shrank since it was cut into ranges */
    size_t end = limit;
    if (end > begin && !is_space(r->buffer[end - 1])) {
        for (;;) {
            while (end < have && !is_space(r->buffer[end]))
                end++;
            if (end < have || have < want)
                break; /* the word ended, or the file did */
            size_t got;
            want = have + (1u << 16);
            if (reserve(r, have, want) != 0)
                return ENOMEM;
            if ((code = read_fully(fd, r->buffer + have, want - have, start + have, &got)) != 0)
                return code;
            have += got;
        }
    }
    if (end > UINT32_MAX - SEGMENT_BYTES)
        return EFBIG;
    tokens->text = r->buffer;
    tokens->end = (uint32_t)end;
    tokens->open = false;
    tokens->carry = begin > 0 && !is_space(r->buffer[begin - 1]);
    tokens->skip_first_end = tokens->carry != 0;
    count_words_best(t, tokens, (uint32_t)begin);
    if (tokens->open) /* the last word runs to the end of the text */
        add_word(t, r->buffer + tokens->open_start, end - tokens->open_start,
                 hash_word(r->buffer + tokens->open_start, end - tokens->open_start));
    return 0;
}

/* ---- Merging, sorting, printing ---------------------------------------- */

/* The sort's keys inline: the count and the word's first 24 bytes as
 * big-endian words, zero-padded. Eight bytes were not enough: this text's
 * words share long beginnings (href="../library/...), and every tie went
 * to memcmp through the slot pointer, 0.14 s of sorting for 262,500
 * words. */
#define PREFIX_WORDS 3

typedef struct entry {
    uint64_t count;
    uint64_t prefix[PREFIX_WORDS];
    const slot *s;
} entry;

/* Folds every other thread's partition p into thread 0's. */
static int merge_partition(table *tables, int threads, unsigned p)
{
    partition *base = &tables[0].parts[p];
    for (int t = 1; t < threads; t++) {
        partition *other = &tables[t].parts[p];
        for (uint64_t i = 0; i <= other->mask; i++) {
            if (other->tags[i] == 0)
                continue;
            const slot *s = &other->slots[i];
            uint64_t j = probe(base, s->hash, slot_key(s), s->length);
            if (base->tags[j] != 0) {
                base->slots[j].count += s->count;
                continue;
            }
            /* The copy keeps pointing into thread t's arena, which lives on. */
            base->slots[j] = *s;
            base->tags[j] = other->tags[i];
            if (++base->used > base->grow_at && partition_grow(base) != 0)
                return -1;
        }
        partition_free(other);
    }
    return 0;
}

static inline bool before(const entry *a, const entry *b)
{
    if (a->count != b->count)
        return a->count > b->count;
    for (int k = 0; k < PREFIX_WORDS; k++)
        if (a->prefix[k] != b->prefix[k])
            return a->prefix[k] < b->prefix[k];
    size_t n = a->s->length < b->s->length ? a->s->length : b->s->length;
    int order = n > 8 * PREFIX_WORDS ? memcmp(slot_key(a->s) + 8 * PREFIX_WORDS, slot_key(b->s) + 8 * PREFIX_WORDS,
                                              n - 8 * PREFIX_WORDS)
                                     : 0;
    return order != 0 ? order < 0 : a->s->length < b->s->length;
}

static void sort_entries(entry *e, size_t n)
{
    while (n > 16) {
        /* Median of three, moved to the middle, then Hoare's partition:
         * with the pivot short of the last place, 0 <= j < n - 1. */
        entry *a = &e[0], *b = &e[n / 2], *c = &e[n - 1], tmp;
        entry *m = before(a, b) ? (before(b, c) ? b : before(a, c) ? c : a) : (before(a, c) ? a : before(b, c) ? c : b);
        tmp = *m;
        *m = *b;
        *b = tmp;
        entry pivot = *b;
        ptrdiff_t i = -1, j = (ptrdiff_t)n;
        for (;;) {
            do
                i++;
            while (before(&e[i], &pivot));
            do
                j--;
            while (before(&pivot, &e[j]));
            if (i >= j)
                break;
            tmp = e[i];
            e[i] = e[j];
            e[j] = tmp;
        }
        /* Recurse into the smaller side, loop on the larger. */
        size_t left = (size_t)j + 1;
        if (left < n - left) {
            sort_entries(e, left);
            e += left;
            n -= left;
        } else {
            sort_entries(e + left, n - left);
            n = left;
        }
    }
    for (size_t i = 1; i < n; i++) {
        entry x = e[i];
        size_t j = i;
        for (; j > 0 && before(&x, &e[j - 1]); j--)
            e[j] = e[j - 1];
        e[j] = x;
    }
}

static void merge_runs(const entry *a, size_t na, const entry *b, size_t nb, entry *out)
{
    size_t i = 0, j = 0, k = 0;
    while (i < na && j < nb)
        out[k++] = before(&b[j], &a[i]) ? b[j++] : a[i++];
    while (i < na)
        out[k++] = a[i++];
    while (j < nb)
        out[k++] = b[j++];
}

static int write_all(int fd, const char *data, size_t size)
{
    while (size > 0) {
        ssize_t n = write(fd, data, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        size -= (size_t)n;
    }
    return 0;
}

static int print_entries(const entry *e, size_t n)
{
    enum { OUTPUT_BYTES = 1 << 20 };
    char *out = malloc(OUTPUT_BYTES);
    if (out == NULL)
        return -1;
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        size_t length = e[i].s->length;
        if (OUTPUT_BYTES - used < length + 24) {
            if (write_all(STDOUT_FILENO, out, used) != 0) {
                free(out);
                return -1;
            }
            used = 0;
        }
        if (length + 24 > OUTPUT_BYTES) { /* a word longer than the buffer */
            char digits[24];
            int size = snprintf(digits, sizeof digits, "%llu\t", (unsigned long long)e[i].count);
            if (write_all(STDOUT_FILENO, digits, (size_t)size) != 0 ||
                write_all(STDOUT_FILENO, (const char *)slot_key(e[i].s), length) != 0 ||
                write_all(STDOUT_FILENO, "\n", 1) != 0) {
                free(out);
                return -1;
            }
            continue;
        }
        char digits[20];
        int size = 0;
        uint64_t count = e[i].count;
        do {
            digits[size++] = (char)('0' + count % 10);
            count /= 10;
        } while (count > 0);
        while (size > 0)
            out[used++] = digits[--size];
        out[used++] = '\t';
        memcpy(out + used, slot_key(e[i].s), length);
        used += length;
        out[used++] = '\n';
    }
    int rc = write_all(STDOUT_FILENO, out, used);
    free(out);
    return rc;
}

/* ---- main -------------------------------------------------------------- */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void usage(FILE *to)
{
    fprintf(to, "usage: omp_wordcount [--range-kib K] [--scalar] [--timing] FILE...\n"
                "Counts the words of the files as examples/wordcount does (runs of bytes other than\n"
                "space, \\t, \\n, \\v, \\f, \\r) and prints COUNT<TAB>WORD, most frequent first, ties\n"
                "by the word's bytes. Threads from OMP_NUM_THREADS. Files are cut into ranges of K KiB\n"
                "(default 1024); --scalar uses the byte-at-a-time tokenizer even where AVX2 runs;\n"
                "--timing prints each phase's seconds on stderr.\n");
}

int main(int argc, char **argv)
{
    size_t range_bytes = 1u << 20;
    bool scalar = false, timing = false;
    int first = 1;
    while (first < argc && strncmp(argv[first], "--", 2) == 0) {
        if (strcmp(argv[first], "--scalar") == 0) {
            scalar = true;
            first++;
        } else if (strcmp(argv[first], "--timing") == 0) {
            timing = true;
            first++;
        } else if (strcmp(argv[first], "--range-kib") == 0 && first + 1 < argc && atoi(argv[first + 1]) > 0) {
            range_bytes = (size_t)atoi(argv[first + 1]) << 10;
            first += 2;
        } else if (strcmp(argv[first], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (first >= argc) {
        usage(stderr);
        return 2;
    }
    __builtin_cpu_init();
    masks_init();
    count_words_best = !scalar && __builtin_cpu_supports("avx2") ? count_words_avx2 : count_words_scalar;

    int file_count = argc - first, status = 0;
    int *fds = malloc((size_t)file_count * sizeof *fds);
    size_t range_count = 0, range_capacity = 256;
    file_range *ranges = malloc(range_capacity * sizeof *ranges);
    if (fds == NULL || ranges == NULL) {
        fprintf(stderr, "omp_wordcount: out of memory\n");
        return 1;
    }
    for (int f = 0; f < file_count; f++) {
        const char *path = argv[first + f];
        struct stat info;
        fds[f] = open(path, O_RDONLY);
        if (fds[f] < 0 || fstat(fds[f], &info) != 0 || !S_ISREG(info.st_mode)) {
            fprintf(stderr, "omp_wordcount: %s: %s\n", path, fds[f] < 0 ? strerror(errno) : "not a regular file");
            status = 1;
            continue;
        }
        for (uint64_t offset = 0; offset < (uint64_t)info.st_size; offset += range_bytes) {
            if (range_count == range_capacity) {
                file_range *grown = realloc(ranges, (range_capacity *= 2) * sizeof *ranges);
                if (grown == NULL) {
                    fprintf(stderr, "omp_wordcount: out of memory\n");
                    return 1;
                }
                ranges = grown;
            }
            uint64_t length = (uint64_t)info.st_size - offset < range_bytes ? (uint64_t)info.st_size - offset
                                                                             : range_bytes;
            ranges[range_count++] = (file_range){f, offset, length};
        }
    }

    int threads = omp_get_max_threads();
    table *tables = calloc((size_t)threads, sizeof *tables);
    if (tables == NULL) {
        fprintf(stderr, "omp_wordcount: out of memory\n");
        return 1;
    }
    double started = now_seconds();
    int failed = 0; /* an errno, or -1 for no memory */
#pragma omp parallel num_threads(threads)
    {
        table *t = &tables[omp_get_thread_num()];
        tokenizer *tokens = malloc(sizeof *tokens);
        reader r = {NULL, 0};
        /* 2^12 slots per partition (4 MiB per thread) to begin with: the
         * docs' 148,000 distinct words grow them to 2^15 (32 MiB). */
        bool ready = tokens != NULL;
        for (unsigned p = 0; p < PARTITIONS; p++)
            ready = partition_init(&t->parts[p], 1u << 12) == 0 && ready;
        if (!ready) {
#pragma omp atomic write
            failed = -1;
        }
#pragma omp for schedule(dynamic, 1)
        for (size_t i = 0; i < range_count; i++) {
            if (!ready)
                continue;
            int code = count_range(t, tokens, &r, fds[ranges[i].file], &ranges[i]);
            if (code != 0) {
                fprintf(stderr, "omp_wordcount: %s: %s\n", argv[first + ranges[i].file], strerror(code));
#pragma omp atomic write
                failed = code;
            }
        }
        if (t->out_of_memory) {
#pragma omp atomic write
            failed = -1;
        }
        free(tokens);
        free(r.buffer);
    }
    if (failed != 0) {
        if (failed < 0)
            fprintf(stderr, "omp_wordcount: out of memory\n");
        return 1;
    }

    double counted = now_seconds();
    /* Each partition to one thread: the other threads' entries are folded
     * into thread 0's table, then its entries are sorted. */
    size_t offsets[PARTITIONS + 1];
    entry *entries = NULL, *spare = NULL;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (unsigned p = 0; p < PARTITIONS; p++) {
        if (merge_partition(tables, threads, p) != 0) {
#pragma omp atomic write
            failed = -1;
        }
    }
    double merged = now_seconds();
    offsets[0] = 0;
    for (unsigned p = 0; p < PARTITIONS; p++)
        offsets[p + 1] = offsets[p] + tables[0].parts[p].used;
    size_t total = offsets[PARTITIONS];
    entries = malloc((total + 1) * sizeof *entries);
    spare = malloc((total + 1) * sizeof *spare);
    if (failed != 0 || entries == NULL || spare == NULL) {
        fprintf(stderr, "omp_wordcount: out of memory\n");
        return 1;
    }
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (unsigned p = 0; p < PARTITIONS; p++) {
        const partition *part = &tables[0].parts[p];
        entry *e = entries + offsets[p];
        for (uint64_t i = 0; i <= part->mask; i++) {
            if (part->tags[i] == 0)
                continue;
            const slot *s = &part->slots[i];
            /* Inline keys are zero-padded and longer ones exceed 44
             * bytes, so the 24 bytes can be loaded without a mask. */
            const uint8_t *key = slot_key(s);
            *e++ = (entry){s->count,
                           {__builtin_bswap64(load64(key)), __builtin_bswap64(load64(key + 8)),
                            __builtin_bswap64(load64(key + 16))},
                           s};
        }
        sort_entries(entries + offsets[p], offsets[p + 1] - offsets[p]);
    }
    /* The sorted partitions, merged pairwise until one run is left. */
    size_t runs = PARTITIONS, bounds[PARTITIONS + 1];
    memcpy(bounds, offsets, sizeof bounds);
    while (runs > 1) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
        for (size_t r = 0; r < runs; r += 2) {
            if (r + 1 < runs)
                merge_runs(entries + bounds[r], bounds[r + 1] - bounds[r], entries + bounds[r + 1],
                           bounds[r + 2] - bounds[r + 1], spare + bounds[r]);
            else
                memcpy(spare + bounds[r], entries + bounds[r], (bounds[r + 1] - bounds[r]) * sizeof *spare);
        }
        size_t merged = 0;
        for (size_t r = 0; r < runs; r += 2)
            bounds[++merged] = bounds[r + 2 < runs ? r + 2 : runs];
        runs = merged;
        entry *swap = entries;
        entries = spare;
        spare = swap;
    }
    double sorted = now_seconds();
    if (print_entries(entries, total) != 0) {
        fprintf(stderr, "omp_wordcount: write error: %s\n", strerror(errno));
        status = 1;
    }
    if (timing)
        fprintf(stderr,
                "omp_wordcount: threads %d ranges %zu distinct words %zu: count %.3f s, merge %.3f s, sort %.3f s, "
                "print %.3f s\n",
                threads, range_count, total, counted - started, merged - counted, sorted - merged,
                now_seconds() - sorted);
    /* Tables, arenas and buffers go with the process. */
    return status;
}
