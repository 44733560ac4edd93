/* keyed.h: the seam between keyed map-reduce (framework/keyed/) and the rest of the framework. */
#ifndef HPOOL_KEYED_H
#define HPOOL_KEYED_H

/* A keyed call runs in three phases. Map: each team thread's chunks emit
 * pairs into that thread's table of the rank's store for the call.
 * Shuffle: once the root has collected every map batch, it sends SHUFFLE
 * and every rank partitions its pairs by key to their owners (PAIRS).
 * Reduce: a rank with its partition from every rank reduces and sorts its
 * keys and sends them to the root (KEYED_RESULT), which merges the runs.
 *
 * The scheduler, the team and the engines use only these calls; tables,
 * stores, memory budgets and spill files are the keyed files' own. Unless
 * said otherwise, call them with pool->lock not held. */

typedef struct hpool__keyed_store hpool__keyed_store; /* one rank's share of one keyed call */
struct hpool__batch;
struct hpool__message;
struct hpool__team;

/* Map phase. */

/* Before a KEYED batch runs on this rank: points batch->store at the
 * rank's store for its call, made on first use. 0 or HPOOL_ENOMEM. */
int hpool__keyed_attach(hpool_pool *pool, struct hpool__batch *batch);
/* The emitter a team thread's chunk of the store's call emits through. */
hpool_emitter *hpool__keyed_emitter(hpool__keyed_store *store, int thread);
/* After a chunk: adds what is staged, and spills the thread's table to
 * disk past its share of the memory budget. Returns code if not 0, else
 * the emitter's error; a spill's error is the call's (kept in the store,
 * reported with the rank's run), not the chunk's. */
int hpool__keyed_chunk_done(hpool__keyed_store *store, int thread, int code);

/* Shuffle and reduce phases, driven by the engines. */

/* SHUFFLE arrived (or, on the root, the map phase ended), with the call's
 * argument (size bytes at argument). */
int hpool__keyed_shuffle_start(hpool_pool *pool, uint32_t call_id, int keyed, const void *argument, size_t size);
/* PAIRS arrived; takes the message's data. */
int hpool__keyed_pairs_received(hpool_pool *pool, struct hpool__message *message);
/* Root: KEYED_RESULT arrived; takes the message's data. */
int hpool__keyed_run_received(hpool_pool *pool, struct hpool__message *message);
/* Sends more of the spilled partitions, as far as the send budget allows;
 * *busy when it sent. */
int hpool__keyed_progress(hpool_pool *pool, bool *busy);
/* Frees the stores a failed exchange left. */
void hpool__keyed_free_all(hpool_pool *pool);

/* The root's side (collection.c). */

/* Rank rank's run arrived (pool->lock held); completes the call at the
 * last. detail: what went wrong on that rank when code is an error, or "". */
void hpool__keyed_run_arrived(hpool_pool *pool, uint32_t call_id, int rank, int code, const char *detail,
                              uint64_t spilled_bytes, void *run, size_t size);
/* Merges the ranks' packed sorted runs into an hpool_pairs, which takes
 * ownership of the buffers. 0 or HPOOL_ENOMEM. */
int hpool__merge_runs(void **buffers, const size_t *sizes, size_t buffer_count, const hpool_keyed_reducer *spec,
                      hpool_pairs **out);

#endif
