/* util.c: the framework's small tools (util.h): allocation, buffers, hashing, clocks and deadlines. */
#define _DEFAULT_SOURCE /* madvise, MADV_HUGEPAGE and strdup under -std=c11 */
#include "internal.h"

#include <sys/mman.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef HPOOL_TESTING
#include <stdatomic.h>

/* The allocation-failure hook of test builds: allocations count down from
 * fail_after; at zero one fails, and with persistent every later one. */
static atomic_long fail_after = -1;
static atomic_bool fail_persistent;
static atomic_ulong allocations;

void hpool__test_fail_allocation(long skip, bool persistent)
{
    atomic_store(&fail_persistent, persistent);
    atomic_store(&fail_after, skip);
}

unsigned long hpool__test_allocations(void)
{
    return atomic_load(&allocations);
}

static bool allocation_fails(void)
{
    atomic_fetch_add(&allocations, 1);
    long left = atomic_load(&fail_after);
    while (left >= 0) {
        long next = left > 0 ? left - 1 : atomic_load(&fail_persistent) ? 0 : -1;
        if (atomic_compare_exchange_weak(&fail_after, &left, next))
            return left == 0;
    }
    return false;
}

/* One armed fault at a time is all the tests need. */
static _Atomic(const char *) armed_fault;

void hpool__test_arm(const char *name)
{
    atomic_store(&armed_fault, name);
}

bool hpool__test_fault(const char *name)
{
    const char *armed = atomic_load(&armed_fault);
    return armed != NULL && strcmp(armed, name) == 0 && atomic_compare_exchange_strong(&armed_fault, &armed, NULL);
}

void *hpool__malloc(size_t size)
{
    return allocation_fails() ? NULL : malloc(size);
}

void *hpool__calloc(size_t count, size_t size)
{
    return allocation_fails() ? NULL : calloc(count, size);
}

void *hpool__realloc(void *data, size_t size)
{
    return allocation_fails() ? NULL : realloc(data, size);
}
#endif

char *hpool__strdup(const char *text)
{
    size_t size = strlen(text) + 1;
    char *copy = hpool__malloc(size);
    if (copy != NULL)
        memcpy(copy, text, size);
    return copy;
}

int hpool__compare_bytes(const void *a, size_t a_size, const void *b, size_t b_size)
{
    int order = memcmp(a, b, a_size < b_size ? a_size : b_size);
    if (order != 0)
        return order;
    return a_size < b_size ? -1 : a_size > b_size;
}

static const uint64_t hash_prime = UINT64_C(0x100000001b3); /* FNV's 64-bit prime */

static uint64_t hash_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    return h;
}

void hpool__hasher_start(hpool__hasher *hasher, uint64_t seed)
{
    *hasher = (hpool__hasher){.lanes = {seed ^ UINT64_C(0xcbf29ce484222325), seed + 1, seed + 2, seed + 3}};
}

static void hash_block(hpool__hasher *hasher, const unsigned char *block)
{
    for (int l = 0; l < 4; l++) {
        uint64_t word;
        memcpy(&word, block + 8 * l, 8);
        hasher->lanes[l] = (hasher->lanes[l] ^ word) * hash_prime;
        hasher->lanes[l] ^= hasher->lanes[l] >> 29;
    }
}

void hpool__hasher_add(hpool__hasher *hasher, const void *data, size_t size)
{
    const unsigned char *bytes = data;
    if (size == 0)
        return; /* data may be NULL */
    hasher->length += size;
    if (hasher->tail_size > 0) {
        size_t take = size < 32 - hasher->tail_size ? size : 32 - hasher->tail_size;
        memcpy(hasher->tail + hasher->tail_size, bytes, take);
        hasher->tail_size += take;
        bytes += take;
        size -= take;
        if (hasher->tail_size < 32)
            return;
        hash_block(hasher, hasher->tail);
        hasher->tail_size = 0;
    }
    for (; size >= 32; bytes += 32, size -= 32)
        hash_block(hasher, bytes);
    memcpy(hasher->tail, bytes, size);
    hasher->tail_size = size;
}

uint64_t hpool__hasher_end(const hpool__hasher *hasher)
{
    uint64_t x = hash_mix(hasher->lanes[0]) ^ hash_mix(hasher->lanes[1] * 3) ^ hash_mix(hasher->lanes[2] * 5)
                 ^ hash_mix(hasher->lanes[3] * 7);
    for (size_t i = 0; i < hasher->tail_size; i++)
        x = (x ^ hasher->tail[i]) * hash_prime;
    return hash_mix(x ^ hasher->length);
}

uint64_t hpool__hash64(uint64_t seed, const void *data, size_t size)
{
    hpool__hasher hasher;
    hpool__hasher_start(&hasher, seed);
    hpool__hasher_add(&hasher, data, size);
    return hpool__hasher_end(&hasher);
}

int hpool__buffer_reserve(hpool__buffer *buffer, size_t extra)
{
    if (buffer->capacity - buffer->size >= extra)
        return 0;
    size_t capacity = buffer->capacity ? buffer->capacity : 64;
    while (capacity - buffer->size < extra)
        capacity *= 2;
    unsigned char *grown = hpool__realloc(buffer->data, capacity);
    if (grown == NULL)
        return HPOOL_ENOMEM;
    buffer->data = grown;
    buffer->capacity = capacity;
    hpool__advise_huge_pages(grown, capacity);
    return 0;
}

int hpool__buffer_append(hpool__buffer *buffer, const void *data, size_t size)
{
    if (hpool__buffer_reserve(buffer, size) != 0)
        return HPOOL_ENOMEM;
    if (size > 0)
        memcpy(buffer->data + buffer->size, data, size);
    buffer->size += size;
    return 0;
}

void hpool__buffer_release(hpool__buffer *buffer)
{
    free(buffer->data);
    buffer->data = NULL;
    buffer->size = buffer->capacity = 0;
}

void *hpool__grow_array(void *array, size_t *capacity, size_t count, size_t element_size)
{
    if (count < *capacity)
        return array;
    size_t grown_capacity = *capacity ? 2 * *capacity : 8;
    void *grown = hpool__realloc(array, grown_capacity * element_size);
    if (grown != NULL)
        *capacity = grown_capacity;
    return grown;
}

void hpool__advise_huge_pages(void *data, size_t size)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    uintptr_t start = ((uintptr_t)data + huge - 1) & ~(huge - 1), end = ((uintptr_t)data + size) & ~(huge - 1);
    if (end > start)
        (void)madvise((void *)start, end - start, MADV_HUGEPAGE); /* advice: refused is fine */
#else
    (void)data;
    (void)size;
#endif
}

static _Thread_local const void *thread_owner;

void hpool__set_thread_owner(const void *pool)
{
    thread_owner = pool;
}

bool hpool__thread_owned_by(const void *pool)
{
    return pool != NULL && thread_owner == pool;
}

uint64_t hpool__now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

hpool__deadline hpool__deadline_in_ns(uint64_t ns)
{
    hpool__deadline deadline = {.never = ns == UINT64_MAX};
    clock_gettime(CLOCK_MONOTONIC, &deadline.at);
    if (deadline.never)
        return deadline;
    uint64_t nanoseconds = (uint64_t)deadline.at.tv_nsec + ns % 1000000000u;
    deadline.at.tv_sec += (time_t)(ns / 1000000000u + nanoseconds / 1000000000u);
    deadline.at.tv_nsec = (long)(nanoseconds % 1000000000u);
    return deadline;
}

hpool__deadline hpool__deadline_in_seconds(double seconds)
{
    if (seconds < 0 || isnan(seconds) || seconds > 1e9)
        return hpool__deadline_in_ns(UINT64_MAX);
    return hpool__deadline_in_ns((uint64_t)(seconds * 1e9));
}

int hpool__cond_init_monotonic(pthread_cond_t *cond)
{
    pthread_condattr_t monotonic;
    if (pthread_condattr_init(&monotonic) != 0)
        return HPOOL_ETHREAD;
    int rc = pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC) == 0 && pthread_cond_init(cond, &monotonic) == 0
                 ? 0
                 : HPOOL_ETHREAD;
    pthread_condattr_destroy(&monotonic);
    return rc;
}

bool hpool__cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, const hpool__deadline *deadline)
{
    if (deadline->never) {
        pthread_cond_wait(cond, lock);
        return true;
    }
    return pthread_cond_timedwait(cond, lock, &deadline->at) != ETIMEDOUT;
}
