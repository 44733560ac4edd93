/* run_merge.c: the ranks' sorted runs merged through a heap, and the root's hpool_pairs result. */
#include "keyed_private.h"

#include <stdlib.h>
#include <string.h>

/* ---- Merging the ranks' runs into one sorted list ----------------------- */

typedef struct run_cursor {
    const unsigned char *data;
    size_t size, at;
    hpool_pair head;
} run_cursor;

/* Finds the runs packed in each buffer and checks that every pair in them
 * is whole; HPOOL_EPEER if not. */
static int open_runs(void *const *buffers, const size_t *sizes, size_t count, run_cursor **cursors,
                     size_t *cursor_count, uint64_t *pairs)
{
    size_t total_runs = 0;
    for (size_t b = 0; b < count; b++) {
        uint64_t runs;
        if (sizes[b] < sizeof runs)
            return HPOOL_EPEER;
        memcpy(&runs, buffers[b], sizeof runs);
        if (runs > (sizes[b] - sizeof runs) / sizeof runs)
            return HPOOL_EPEER;
        total_runs += runs;
    }
    run_cursor *all = hpool__calloc(total_runs + 1, sizeof *all);
    if (all == NULL)
        return HPOOL_ENOMEM;
    size_t n = 0;
    *pairs = 0;
    for (size_t b = 0; b < count; b++) {
        const unsigned char *data = buffers[b];
        uint64_t runs;
        memcpy(&runs, data, sizeof runs);
        size_t at = (1 + runs) * sizeof runs, left = sizes[b] - at;
        for (uint64_t r = 0; r < runs; r++) {
            uint64_t size;
            memcpy(&size, data + (1 + r) * sizeof size, sizeof size);
            if (size > left) {
                free(all);
                return HPOOL_EPEER;
            }
            all[n] = (run_cursor){.data = data + at, .size = size};
            size_t position = 0;
            hpool_pair pair;
            int step;
            while ((step = hpool__pair_decode_next(all[n].data, size, &position, &pair)) == 1)
                (*pairs)++;
            if (step < 0) {
                free(all);
                return step;
            }
            at += size;
            left -= size;
            n++;
        }
    }
    *cursors = all;
    *cursor_count = n;
    return 0;
}

static bool cursor_before(const run_cursor *a, const run_cursor *b, const hpool_keyed_reducer *spec)
{
    return hpool__compare_pairs(&a->head, &b->head, spec) < 0;
}

/* Moves heap[at] down to its place in a binary min-heap of size entries. */
static void sift_down(run_cursor **heap, size_t size, size_t at, const hpool_keyed_reducer *spec)
{
    run_cursor *moving = heap[at];
    for (;;) {
        size_t child = 2 * at + 1;
        if (child >= size)
            break;
        if (child + 1 < size && cursor_before(heap[child + 1], heap[child], spec))
            child++;
        if (!cursor_before(heap[child], moving, spec))
            break;
        heap[at] = heap[child];
        at = child;
    }
    heap[at] = moving;
}

int hpool__merge_packed_runs(void *const *buffers, const size_t *sizes, size_t count,
                             const hpool_keyed_reducer *spec, hpool_pair **pairs, uint64_t *pair_count)
{
    run_cursor *cursors = NULL;
    size_t cursor_count = 0;
    uint64_t total = 0;
    int rc = open_runs(buffers, sizes, count, &cursors, &cursor_count, &total);
    if (rc != 0)
        return rc;
    hpool_pair *merged = hpool__malloc((total + 1) * sizeof *merged);
    run_cursor **heap = hpool__malloc((cursor_count + 1) * sizeof *heap);
    if (merged == NULL || heap == NULL) {
        free(merged);
        free(heap);
        free(cursors);
        return HPOOL_ENOMEM;
    }
    size_t size = 0;
    for (size_t c = 0; c < cursor_count; c++)
        if (hpool__pair_decode_next(cursors[c].data, cursors[c].size, &cursors[c].at, &cursors[c].head) == 1)
            heap[size++] = &cursors[c];
    for (size_t at = size / 2; at-- > 0;)
        sift_down(heap, size, at, spec);
    uint64_t n = 0;
    while (size > 0) {
        run_cursor *least = heap[0];
        merged[n++] = least->head;
        if (hpool__pair_decode_next(least->data, least->size, &least->at, &least->head) != 1)
            heap[0] = heap[--size];
        if (size > 0)
            sift_down(heap, size, 0, spec);
    }
    free(heap);
    free(cursors);
    *pairs = merged;
    *pair_count = n;
    return 0;
}

/* ---- The root's result: the ranks' sorted runs merged ------------------- */

struct hpool_pairs {
    uint64_t count;
    hpool_pair *pairs;
    void **runs; /* the ranks' buffers the pairs point into */
    size_t run_count;
};

uint64_t hpool_pairs_count(const hpool_pairs *pairs)
{
    return pairs ? pairs->count : 0;
}

int hpool_pairs_get(const hpool_pairs *pairs, uint64_t i, hpool_pair *pair)
{
    if (pairs == NULL || pair == NULL)
        return hpool__fail(HPOOL_EINVAL, "hpool_pairs_get: pairs or pair is NULL");
    if (i >= pairs->count)
        return hpool__fail(HPOOL_EINVAL, "hpool_pairs_get: pair %llu of %llu", (unsigned long long)i,
                           (unsigned long long)pairs->count);
    *pair = pairs->pairs[i];
    return 0;
}

void hpool_pairs_free(hpool_pairs *pairs)
{
    if (pairs == NULL)
        return;
    for (size_t r = 0; r < pairs->run_count; r++)
        free(pairs->runs[r]);
    free(pairs->runs);
    free(pairs->pairs);
    free(pairs);
}

/* Merges the runs packed in buffer_count buffers (a rank's each); takes
 * ownership of the buffers. */
int hpool__merge_runs(void **buffers, const size_t *sizes, size_t buffer_count, const hpool_keyed_reducer *spec,
                      hpool_pairs **out)
{
    hpool_pairs *pairs = hpool__calloc(1, sizeof *pairs);
    void **owned = hpool__malloc((buffer_count + 1) * sizeof *owned);
    int rc = pairs != NULL && owned != NULL ? 0 : HPOOL_ENOMEM;
    if (rc == 0)
        rc = hpool__merge_packed_runs(buffers, sizes, buffer_count, spec, &pairs->pairs, &pairs->count);
    if (rc != 0) {
        for (size_t b = 0; b < buffer_count; b++)
            free(buffers[b]);
        free(owned);
        free(pairs);
        return rc;
    }
    memcpy(owned, buffers, buffer_count * sizeof *buffers);
    pairs->runs = owned;
    pairs->run_count = buffer_count;
    *out = pairs;
    return 0;
}
