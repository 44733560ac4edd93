/* watchdog.c: the root's stall watchdog: when each rank was last heard from, the batches it holds, and the rank that went silent, named. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hpool__watchdog_start(hpool_pool *pool)
{
    uint64_t now = hpool__now_ns();
    for (int rank = 0; rank < pool->transport.size; rank++)
        pool->loads[rank].last_heard_ns = now;
    pool->last_round_ns = now;
}

void hpool__watchdog_heard(hpool_pool *pool, int rank)
{
    if (rank >= 0 && rank < pool->transport.size)
        pool->loads[rank].last_heard_ns = hpool__now_ns();
}

int hpool__watchdog_sent(hpool_pool *pool, int rank, uint32_t call_id, uint64_t first, uint64_t count)
{
    hpool__rank_load *load = &pool->loads[rank];
    if (load->outstanding_count == load->outstanding_capacity) {
        hpool__outstanding *grown = hpool__grow_array(load->outstanding, &load->outstanding_capacity,
                                                      load->outstanding_count, sizeof *grown);
        if (grown == NULL)
            return hpool__fail(HPOOL_ENOMEM, "no memory to track the batches sent to rank %d", rank);
        load->outstanding = grown;
    }
    load->outstanding[load->outstanding_count++] = (hpool__outstanding){call_id, first, count};
    return 0;
}

void hpool__watchdog_returned(hpool_pool *pool, int rank, uint32_t call_id, uint64_t first)
{
    hpool__rank_load *load = &pool->loads[rank];
    for (size_t i = 0; i < load->outstanding_count; i++)
        if (load->outstanding[i].call_id == call_id && load->outstanding[i].first == first) {
            load->outstanding[i] = load->outstanding[--load->outstanding_count];
            return;
        }
}

void hpool__watchdog_describe_held(const hpool__rank_load *load, char *text, size_t size)
{
    if (load->outstanding_count == 0) {
        snprintf(text, size, "no batch of a call");
        return;
    }
    size_t used = 0;
    size_t shown = load->outstanding_count < 3 ? load->outstanding_count : 3;
    for (size_t i = 0; i < shown && used < size; i++) {
        const hpool__outstanding *batch = &load->outstanding[i];
        int n = batch->count == 1
                    ? snprintf(text + used, size - used, "%sitem %llu of call %u", i ? ", " : "",
                               (unsigned long long)batch->first, batch->call_id)
                    : snprintf(text + used, size - used, "%sitems %llu-%llu of call %u", i ? ", " : "",
                               (unsigned long long)batch->first,
                               (unsigned long long)(batch->first + batch->count - 1), batch->call_id);
        used += n > 0 ? (size_t)n : 0;
    }
    if (load->outstanding_count > shown && used < size)
        snprintf(text + used, size - used, " and %zu more batches", load->outstanding_count - shown);
}

int hpool__watchdog_check(hpool_pool *pool)
{
    if (pool->stall_timeout_ns == 0)
        return 0;
    uint64_t now = hpool__now_ns();
    /* If the root's own engine did not run for a while (the machine was
     * suspended, the root stopped), the silence was the root's: count anew. */
    if (now - pool->last_round_ns > pool->stall_timeout_ns / 2)
        for (int rank = 0; rank < pool->transport.size; rank++)
            pool->loads[rank].last_heard_ns = now;
    pool->last_round_ns = now;
    for (int rank = 0; rank < pool->transport.size; rank++) {
        hpool__rank_load *load = &pool->loads[rank];
        if (rank == pool->root || load->engine_ended || now - load->last_heard_ns <= pool->stall_timeout_ns)
            continue;
        /* Nothing more is expected from it, nor waited for. */
        load->engine_ended = true;
        hpool__transport_abandon_sends_to(&pool->transport, rank);
        char held[256];
        hpool__watchdog_describe_held(load, held, sizeof held);
        return hpool__fail(HPOOL_ESTALLED,
                           "rank %d (host %s) has not answered for %.0f s (the stall timeout, "
                           "HPOOL_STALL_TIMEOUT, is %.0f s): it is stopped, hung or cut off; it held %s",
                           rank, load->host[0] ? load->host : "?", (double)(now - load->last_heard_ns) / 1e9,
                           (double)pool->stall_timeout_ns / 1e9, held);
    }
    return 0;
}

void hpool__watchdog_free(hpool_pool *pool)
{
    for (int rank = 0; pool->loads != NULL && rank < pool->transport.size; rank++)
        free(pool->loads[rank].outstanding);
}
