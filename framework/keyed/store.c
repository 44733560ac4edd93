/* store.c: a rank's store for each keyed call, and the map phase's side of the seam (keyed.h). */
#include "keyed_private.h"

#include <stdlib.h>
#include <string.h>

hpool__keyed_store *hpool__keyed_store_get(hpool_pool *pool, uint32_t call_id, int keyed)
{
    pthread_mutex_lock(&pool->stores_lock);
    hpool__keyed_store *store = pool->keyed_stores;
    while (store != NULL && store->call_id != call_id)
        store = store->next;
    if (store == NULL && (store = hpool__calloc(1, sizeof *store)) != NULL) {
        store->call_id = call_id;
        store->keyed = keyed;
        store->ranks = pool->transport.size;
        store->budget = pool->memory_budget;
        store->temp_dir = pool->temp_dir;
        store->temp_dir_origin = pool->temp_dir_origin;
        pthread_mutex_init(&store->lock, NULL);
        store->thread_count = pool->thread_count;
        store->mapped = hpool__calloc((size_t)store->thread_count, sizeof *store->mapped);
        store->owned = hpool__calloc((size_t)store->thread_count, sizeof *store->owned);
        store->emitters = hpool__calloc((size_t)store->thread_count, sizeof *store->emitters);
        if (store->mapped == NULL || store->owned == NULL || store->emitters == NULL) {
            free(store->mapped);
            free(store->owned);
            free(store->emitters);
            pthread_mutex_destroy(&store->lock);
            free(store);
            pthread_mutex_unlock(&pool->stores_lock);
            return NULL;
        }
        for (int t = 0; t < store->thread_count; t++) {
            hpool__pair_table_init(&store->mapped[t], &pool->keyed_reducers[keyed]);
            hpool__pair_table_init(&store->owned[t], &pool->keyed_reducers[keyed]);
            store->emitters[t].table = &store->mapped[t];
        }
        store->next = pool->keyed_stores;
        pool->keyed_stores = store;
    }
    pthread_mutex_unlock(&pool->stores_lock);
    return store;
}

int hpool__keyed_store_set_argument(hpool__keyed_store *store, const void *data, size_t size)
{
    if (store->has_argument)
        return 0; /* every batch and the SHUFFLE carry the same bytes */
    if (size > 0) {
        store->argument_copy = hpool__malloc(size);
        if (store->argument_copy == NULL)
            return HPOOL_ENOMEM;
        memcpy(store->argument_copy, data, size);
    }
    store->argument = (hpool__argument){store->argument_copy, size};
    store->has_argument = true;
    for (int t = 0; t < store->thread_count; t++)
        store->emitters[t].argument = store->argument;
    return 0;
}

int hpool__keyed_store_fail(hpool__keyed_store *store, int code)
{
    if (code < 0 && store->error == 0) {
        store->error = code;
        snprintf(store->error_detail, sizeof store->error_detail, "%s", hpool__detail_text(code));
    }
    return code;
}

int hpool_emitter_argument(const hpool_emitter *emitter, const void **data, size_t *size)
{
    if (emitter == NULL || data == NULL || size == NULL)
        return hpool__fail(HPOOL_EINVAL, "hpool_emitter_argument: emitter, data or size is NULL");
    *data = emitter->argument.data;
    *size = emitter->argument.size;
    return 0;
}

void hpool__keyed_store_free(hpool__keyed_store *store)
{
    hpool__spill_close(store);
    free(store->argument_copy);
    for (int t = 0; t < store->thread_count; t++) {
        hpool__pair_table_release(&store->mapped[t]);
        hpool__pair_table_release(&store->owned[t]);
    }
    free(store->mapped);
    free(store->owned);
    free(store->emitters);
    pthread_mutex_destroy(&store->lock);
    free(store);
}

int hpool__keyed_attach(hpool_pool *pool, hpool__batch *batch)
{
    batch->store = hpool__keyed_store_get(pool, batch->call_id, batch->reducer);
    if (batch->store == NULL)
        return HPOOL_ENOMEM;
    /* Before the batch runs: the team's threads read it through their emitters. */
    return hpool__keyed_store_set_argument(batch->store, batch->argument, batch->argument_size);
}

hpool_emitter *hpool__keyed_emitter(hpool__keyed_store *store, int thread)
{
    HPOOL__ASSERT(thread >= 0 && thread < store->thread_count);
    return &store->emitters[thread];
}

int hpool__keyed_chunk_done(hpool__keyed_store *store, int thread, int code)
{
    hpool_emitter *emitter = &store->emitters[thread];
    hpool__emitter_flush(emitter);
    if (code == 0 && emitter->error != 0)
        code = emitter->error;
    /* A merge that failed fails the chunk with its own code, whatever the
     * map function made of the HPOOL_EFAILED that hpool_emit gave it: the
     * merge's is the cause. */
    if (emitter->table->merge_code != 0)
        code = emitter->table->merge_code;
    emitter->error = emitter->table->merge_code = 0; /* the error is the chunk's: the next chunk starts clean */
    /* The threads' tables share half the budget; the other half is for
     * what the shuffle reads back and sends. A spill that fails is the
     * call's error, not the chunk's (its items were mapped): the call fails
     * with it, and from then on the thread's pairs are dropped at each
     * spill, so memory stays within the budget. */
    size_t share = store->budget / 2 / (size_t)store->thread_count;
    if (code == 0 && store->budget > 0 && hpool__pair_table_bytes(emitter->table) > share) {
        pthread_mutex_lock(&store->lock);
        if (store->error == 0) {
            hpool__keyed_store_fail(store, hpool__spill_mapped(store, emitter->table));
        } else {
            const hpool_keyed_reducer *spec = emitter->table->spec;
            hpool__pair_table_release(emitter->table);
            hpool__pair_table_init(emitter->table, spec);
        }
        pthread_mutex_unlock(&store->lock);
    }
    return code;
}

void hpool__keyed_free_all(hpool_pool *pool)
{
    while (pool->keyed_stores != NULL) {
        hpool__keyed_store *store = pool->keyed_stores;
        pool->keyed_stores = store->next;
        hpool__keyed_store_free(store);
    }
}
