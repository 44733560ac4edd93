/* util.h: the framework's small tools: allocation, buffers, hashing, queues, rounding, clocks and deadlines. */
#ifndef HPOOL_UTIL_H
#define HPOOL_UTIL_H

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Internal invariants: checked in Debug builds, compiled out in Release
 * (NDEBUG). A broken invariant is a bug in hpool, never the caller's. */
#ifdef NDEBUG
#define HPOOL__ASSERT(condition) ((void)sizeof(condition)) /* names its variables, evaluates nothing */
#else
#define HPOOL__ASSERT(condition) assert(condition)
#endif

/* ---- Allocation ----------------------------------------------------------
 * Every allocation of the framework goes through these, so a test build
 * (HPOOL_TESTING) can make the n-th one fail and prove HPOOL_ENOMEM comes
 * back instead of a crash. Elsewhere they are the C library's. */
#ifdef HPOOL_TESTING
void *hpool__malloc(size_t size);
void *hpool__calloc(size_t count, size_t size);
void *hpool__realloc(void *data, size_t size);
/* From the next allocation on, fail the one after skip more have
 * succeeded, and every later one if persistent; -1 disarms. */
void hpool__test_fail_allocation(long skip, bool persistent);
/* Allocations made since the process started, to size a test's loop. */
unsigned long hpool__test_allocations(void);
/* Named faults a test arms: the next hpool__test_fault(name) is true, once.
 * "team_start": the team's threads cannot start; "protocol_version": this
 * rank speaks the next protocol version; "corrupt_send": the next message
 * this rank sends has a wrong magic. */
void hpool__test_arm(const char *name);
bool hpool__test_fault(const char *name);
#else
#define hpool__test_fault(name) false
#include <stdlib.h>
#define hpool__malloc malloc
#define hpool__calloc calloc
#define hpool__realloc realloc
#endif
char *hpool__strdup(const char *text);

/* ---- Rounding ------------------------------------------------------------ */

static inline uint64_t hpool__ceil_div(uint64_t a, uint64_t b)
{
    return a / b + (a % b != 0);
}

/* a rounded up to a multiple of b (b > 0). */
static inline uint64_t hpool__round_up(uint64_t a, uint64_t b)
{
    return hpool__ceil_div(a, b) * b;
}

static inline uint64_t hpool__min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* Byte strings in memcmp order, a shorter prefix first: how keys sort. */
int hpool__compare_bytes(const void *a, size_t a_size, const void *b, size_t b_size);

/* ---- Hashing bytes ------------------------------------------------------- */

/* A 64-bit hash for integrity against torn or changed files (journal
 * records, keyed checkpoints), not security: anyone can make a collision.
 * Multiply-xor over 8-byte words in four independent lanes, so it runs
 * near memory speed (one lane's chain of multiplies ran at a fifth of it).
 * Streamed: the value does not depend on how the bytes are cut into the
 * pieces added, so a file written pair by pair and read back in MiB
 * pieces, or a record written from several buffers and read into one,
 * hashes the same. */
typedef struct hpool__hasher {
    uint64_t lanes[4];
    unsigned char tail[32]; /* bytes short of a whole block */
    size_t tail_size;
    uint64_t length;
} hpool__hasher;
void hpool__hasher_start(hpool__hasher *hasher, uint64_t seed);
void hpool__hasher_add(hpool__hasher *hasher, const void *data, size_t size);
uint64_t hpool__hasher_end(const hpool__hasher *hasher);
/* All at once: start with seed, add the bytes, end. */
#define HPOOL__HASH64_START UINT64_C(0)
uint64_t hpool__hash64(uint64_t seed, const void *data, size_t size);

/* ---- Growable memory ------------------------------------------------------ */

typedef struct hpool__buffer {
    unsigned char *data;
    size_t size, capacity;
} hpool__buffer;

int hpool__buffer_reserve(hpool__buffer *buffer, size_t extra);
int hpool__buffer_append(hpool__buffer *buffer, const void *data, size_t size);
void hpool__buffer_release(hpool__buffer *buffer);

/* Room for one more element when count has reached *capacity: returns the
 * array, perhaps moved, with *capacity doubled; NULL (array untouched) if
 * memory ran out. */
void *hpool__grow_array(void *array, size_t *capacity, size_t count, size_t element_size);

/* Asks Linux to back the whole 2 MiB pages inside [data, data + size) with
 * huge pages (Debian's default gives them only to memory that asks): a
 * pair table probed at random over megabytes otherwise misses the TLB on
 * most probes. A no-op where the system has no such advice. */
void hpool__advise_huge_pages(void *data, size_t size);

/* ---- Queues ----------------------------------------------------------------
 * An intrusive FIFO: any struct with head and tail pointers to nodes that
 * have a `next` pointer (batches queued for a team, finished on a rank,
 * ready for a stream; calls under way). */
#define HPOOL__QUEUE_PUSH(queue, node)                                                                           \
    do {                                                                                                         \
        (node)->next = NULL;                                                                                     \
        if ((queue)->tail != NULL)                                                                               \
            (queue)->tail->next = (node);                                                                        \
        else                                                                                                     \
            (queue)->head = (node);                                                                              \
        (queue)->tail = (node);                                                                                  \
    } while (0)

/* Takes the head, which must exist, into out. */
#define HPOOL__QUEUE_POP(queue, out)                                                                             \
    do {                                                                                                         \
        HPOOL__ASSERT((queue)->head != NULL);                                                                    \
        (out) = (queue)->head;                                                                                   \
        (queue)->head = (out)->next;                                                                             \
        if ((queue)->head == NULL)                                                                               \
            (queue)->tail = NULL;                                                                                \
    } while (0)

/* ---- Whose thread is this ----------------------------------------------------
 * A pool's own threads (team workers and its engine) are marked, so a call
 * that would wait on that pool from one of them returns HPOOL_EDEADLK
 * instead of waiting for itself. */
void hpool__set_thread_owner(const void *pool);
bool hpool__thread_owned_by(const void *pool);

/* ---- Clocks and deadlines ---------------------------------------------------
 * Every wait with a time limit runs on CLOCK_MONOTONIC, so a step of the
 * wall clock (NTP, a suspended VM) neither fires nor stretches a timeout. */

/* Nanoseconds on CLOCK_MONOTONIC. */
uint64_t hpool__now_ns(void);

typedef struct hpool__deadline {
    struct timespec at; /* CLOCK_MONOTONIC */
    bool never;         /* wait for as long as it takes */
} hpool__deadline;

/* The deadline ns (or seconds) from now. A negative, NaN or huge (over
 * 1e9 s) number of seconds means never, as the public calls document. */
hpool__deadline hpool__deadline_in_ns(uint64_t ns);
hpool__deadline hpool__deadline_in_seconds(double seconds);
/* 0 for a condition variable whose timed waits use CLOCK_MONOTONIC. */
int hpool__cond_init_monotonic(pthread_cond_t *cond);
/* One wait on a monotonic condition (spurious wake-ups included, as any
 * condition wait): false once the deadline has passed, true otherwise. */
bool hpool__cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, const hpool__deadline *deadline);

#endif
