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

/* Journaled calls: a rank's map-side pairs saved, and folded back in on
 * a rerun (checkpoint.c). */

/* Writes every map-side pair this rank's store for the call holds (each
 * team thread's mapped table, after flushing its emitter's staged pairs,
 * and what the tables spilled to the store's outbox files) to a new file
 * at path: written to "path.tmp", fdatasync'ed, then renamed over path
 * (and the directory synced), so a crash at any moment leaves either the
 * old file or the new one whole. The store is unchanged (the call goes on
 * afterwards). A rank with no store for the call writes a file with no
 * pairs. *bytes and *checksum describe the file as written (its size, and
 * hpool__hash64 of all its bytes), for the journal to record. Call it on
 * the rank's engine thread when no team thread runs a chunk of the call.
 * 0, HPOOL_EIO (detail: the path and strerror), or HPOOL_ENOMEM (detail);
 * a store that has already lost pairs to a failed spill gives its error
 * (HPOOL_EIO or HPOOL_ENOMEM) and writes nothing. */
int hpool__keyed_checkpoint(hpool_pool *pool, uint32_t call_id, int keyed, const char *path, uint64_t *bytes,
                            uint64_t *checksum);
/* Adds the pairs of a checkpoint file to this rank's store for the call
 * (made if needed), as if this rank's map functions had emitted them:
 * into the mapped tables (combined there when the keyed reducer combines
 * or merges), spilling past the memory budget just as chunks do. The file
 * must have exactly bytes bytes and the checksum, else HPOOL_EJOURNAL with
 * a detail naming the path ("changed since it was written", also when it
 * is gone; "not an hpool keyed checkpoint"; or written for another keyed
 * reducer); the store is then untouched, unless the file was replaced
 * between the check and the read-back. Engine thread, before the call's
 * shuffle starts, when no team thread runs a chunk of the call. 0,
 * HPOOL_EJOURNAL, HPOOL_EIO, HPOOL_ENOMEM, or a merge's failure
 * (HPOOL_EFAILED, the merge's code in the detail) as hpool_emit gives it;
 * after an error other than HPOOL_EJOURNAL the store may hold part of the
 * file's pairs, and the call must fail. */
int hpool__keyed_restore(hpool_pool *pool, uint32_t call_id, int keyed, const char *path, uint64_t bytes,
                         uint64_t checksum);

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
