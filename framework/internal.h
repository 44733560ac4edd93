/* internal.h: the structures shared by the framework's files; not installed. */
#ifndef HPOOL_INTERNAL_H
#define HPOOL_INTERNAL_H

#include "hpool.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

/* ---- Sources -------------------------------------------------------- */

enum hpool__input_kind { HPOOL__RANGE, HPOOL__FIXED, HPOOL__RECORDS, HPOOL__COLUMNS };

struct hpool_source {
    enum hpool__input_kind kind;
    bool is_producer;
    uint64_t count;              /* UINT64_MAX for a producer */
    int64_t range_start;
    const unsigned char *items;  /* FIXED */
    size_t item_size;            /* FIXED; COLUMNS: the packed row size */
    const void *const *records;  /* RECORDS */
    const size_t *record_sizes;  /* RECORDS; NULL: NUL-terminated strings */
    size_t column_count;         /* COLUMNS */
    const void **columns;        /* COLUMNS: owned copy of the pointer array */
    size_t *column_sizes;        /* COLUMNS: owned copy */
    hpool_produce_fn *produce;   /* producer */
    void *produce_user;
};

/* How a batch's inputs are laid out, wherever it runs. Fixed items point
 * into the caller's array on the root and into the message elsewhere;
 * records and rows are always packed: every record starts 8-byte aligned,
 * so it may be cast to a struct, and is followed by a NUL, so a path may be
 * used as a string. */
typedef struct hpool__input {
    enum hpool__input_kind kind;
    int64_t range_first;
    const unsigned char *items;  /* FIXED and COLUMNS rows */
    size_t item_size;
    const uint64_t *offsets;     /* RECORDS: where each record starts in data, */
    const uint64_t *sizes;       /* 8-byte aligned; offsets[count] = data size */
    const unsigned char *data;
    size_t column_count;
    const uint64_t *column_sizes;
} hpool__input;

/* A growable byte buffer. */
typedef struct hpool__buffer {
    unsigned char *data;
    size_t size, capacity;
} hpool__buffer;

int hpool__buffer_reserve(hpool__buffer *buffer, size_t extra);
int hpool__buffer_append(hpool__buffer *buffer, const void *data, size_t size);
void hpool__buffer_release(hpool__buffer *buffer);
/* Asks Linux to back the whole 2 MiB pages inside [data, data + size) with
 * huge pages (Debian's default gives them only to memory that asks): a
 * pair table probed at random over megabytes otherwise misses the TLB on
 * most probes. A no-op where the system has no such advice. */
void hpool__advise_huge_pages(void *data, size_t size);

/* Room for one more element when count has reached *capacity: returns the
 * array, perhaps moved, with *capacity doubled; NULL (array untouched) if
 * memory ran out. Grown arrays (failures, sends, runs) all go through it. */
void *hpool__grow_array(void *array, size_t *capacity, size_t count, size_t element_size);

/* ---- Batches: the unit that travels between ranks -------------------- */

enum hpool__result_mode { HPOOL__NO_RESULT, HPOOL__FIXED_RESULT, HPOOL__RECORD_RESULT, HPOOL__REDUCE, HPOOL__KEYED };

/* ---- Keyed pairs (shuffle.c, exchange.c) ----------------------------- */

typedef struct hpool__team hpool__team; /* below */

/* Pairs in an arena: with a combiner one entry per key, found through an
 * open-addressing index; without, every pair in emission order. */
typedef struct hpool__pair_table {
    const hpool_keyed_reducer *spec;
    bool combining;
    hpool__buffer arena;
    uint64_t *slots; /* 0 for empty, else arena offset + 1 and hash bits */
    size_t capacity, count;
} hpool__pair_table;

/* Pairs for a combining table are staged a batch at a time, so their slots
 * and entries can be fetched from memory together rather than one cache
 * miss after another: most of a word count's time is those misses. 128
 * rather than 16 leaves each prefetch longer to land (word count, 2
 * threads: 16 -> 0.68 s, 32 -> 0.63, 64 -> 0.61, 128 -> 0.59, 512 -> 0.60). */
#define HPOOL__STAGED_PAIRS 128
struct hpool_emitter {
    hpool__pair_table *table;
    int error;
    size_t staged_count, staged_bytes;
    /* Each staged pair's hash (taken while its key is hot, and its slot
     * prefetched then), key size, and where its key and value start. */
    uint64_t staged_hashes[HPOOL__STAGED_PAIRS];
    uint32_t staged_key_sizes[HPOOL__STAGED_PAIRS];
    uint32_t staged_at[HPOOL__STAGED_PAIRS];
    unsigned char staged[4096]; /* key, then value, for each pair */
};

/* Adds the staged pairs to the table; call before reading the table. */
void hpool__emitter_flush(hpool_emitter *emitter);

void hpool__pair_table_init(hpool__pair_table *table, const hpool_keyed_reducer *spec);
void hpool__pair_table_release(hpool__pair_table *table);
int hpool__pair_table_add(hpool__pair_table *table, const void *key, size_t key_size, const void *value,
                          size_t value_size);
int hpool__pair_table_merge(hpool__pair_table *into, const hpool__pair_table *from);
/* Appends each pair to out[owner rank], encoded. */
int hpool__pair_table_partition(const hpool__pair_table *table, int partitions, hpool__buffer *out);
/* A rank keeps the pairs it owns in one table per share of their keys (by
 * hash; a share per team thread), so its threads combine, reduce and sort
 * them side by side. Gathering: the threads' tables (as many as shares)
 * send other ranks' pairs to parts[table * ranks + owner], encoded, and
 * the rank's own pairs into the shares' tables, emptying mapped. */
int hpool__pair_tables_gather(hpool__pair_table *mapped, hpool__pair_table *owned, int shares, int ranks, int me,
                              hpool__buffer *parts, hpool__team *team);
/* Adds encoded pairs to the shares' tables. */
int hpool__pair_tables_add_encoded(hpool__pair_table *shares, int count, const void *data, size_t size);
/* Reduces every key of the shares' tables and appends the output pairs to
 * out as packed sorted runs (see hpool__merge_packed_runs), a team thread
 * per share. On a reduce function's failure, *code is its return. */
int hpool__pair_tables_reduce(const hpool__pair_table *shares, int count, hpool__team *team, hpool__buffer *out,
                              int *code);
int hpool__pair_table_reduce_into(hpool__pair_table *table, hpool__pair_table *output, int *code);
/* Appends the table's pairs to out as packed runs in spec's output order,
 * sorted on the team's threads. */
int hpool__pair_table_encode_sorted(const hpool__pair_table *table, const hpool_keyed_reducer *spec,
                                    hpool__team *team, hpool__buffer *out);
int hpool__pair_table_encode_by_key(const hpool__pair_table *table, hpool__buffer *out);
void hpool__decode_pair_at(const unsigned char *data, hpool_pair *pair);
int hpool__compare_pairs(const hpool_pair *a, const hpool_pair *b, const hpool_keyed_reducer *spec);
/* A rank's reduced output travels as sorted runs packed in one buffer (u64
 * run count, u64 size of each, the runs). Merges the runs of count such
 * buffers into *pairs (malloc'd; pointing into the buffers). */
int hpool__merge_packed_runs(void *const *buffers, const size_t *sizes, size_t count,
                             const hpool_keyed_reducer *spec, hpool_pair **pairs, uint64_t *pair_count);
/* The same into an hpool_pairs, which takes ownership of the buffers. */
int hpool__merge_runs(void **buffers, const size_t *sizes, size_t buffer_count, const hpool_keyed_reducer *spec,
                      hpool_pairs **out);

/* What one rank holds of one keyed call: the pairs its map chunks emitted,
 * then the partitions it owns, as they arrive from every rank. */
typedef struct hpool__keyed_store {
    struct hpool__keyed_store *next;
    uint32_t call_id;
    int keyed;
    pthread_mutex_t lock;         /* team threads spilling to the outbox */
    /* One table per worker thread, filled by that thread alone across all
     * its chunks: a word is hashed once per emit, with no lock and no
     * second merge; duplicates across threads combine at their owner. */
    hpool__pair_table *mapped;
    int thread_count;
    hpool__pair_table *owned;     /* a table per share (thread_count of them) */
    int partitions_received;      /* the ones marked last, from each rank */
    bool shuffle_started;
    int ranks;
    size_t budget;                /* bytes a table may hold before it spills */
    const char *temp_dir;
    FILE **outbox;                /* after a map-side spill: per owner rank */
    FILE **runs;                  /* owned pairs spilled, each sorted by key */
    size_t run_count, run_capacity;
    uint64_t spilled_bytes;
    bool sending;                 /* pieces of the outbox still to send */
    int send_rank;
} hpool__keyed_store;

/* Spilling keyed pairs to temporary files (spill.c). */
size_t hpool__pair_table_bytes(const hpool__pair_table *table);
/* Sends a mapped table to the outbox files, one per owner rank, and
 * empties it. With store->lock held if team threads may run. */
int hpool__spill_mapped(hpool__keyed_store *store, hpool__pair_table *table);
int hpool__spill_owned(hpool__keyed_store *store);
int hpool__spill_add_owned(hpool__keyed_store *store, const void *data, size_t size);
/* Spills the owned tables if they hold more than half the budget. */
int hpool__spill_owned_if_over(hpool__keyed_store *store);
/* Reads pairs from file, encoded, up to about max_bytes; *ended at EOF. */
int hpool__spill_read_piece(FILE *file, hpool__buffer *out, size_t max_bytes, bool *ended);
/* hpool__pair_tables_reduce over the owned tables and the store's sorted runs. */
int hpool__spill_reduce(hpool__keyed_store *store, hpool__team *team, hpool__buffer *run, int *code);
void hpool__spill_close(hpool__keyed_store *store);

typedef struct hpool__failure {
    uint64_t index;
    int64_t code;
} hpool__failure;

/* Variable-size results of one chunk while it runs. */
typedef struct hpool__chunk_output {
    hpool__buffer bytes;
    uint64_t *ends;  /* ends[i]: bytes emitted up to and including item i */
    size_t emitted;  /* items whose record is closed */
} hpool__chunk_output;

typedef struct hpool__batch {
    struct hpool__batch *next;
    uint32_t call_id;
    uint32_t batch_id;
    int32_t function;
    int32_t reducer;
    enum hpool__result_mode mode;
    size_t result_size;
    uint64_t first, count, chunksize, chunk_count;
    uint64_t block_size;           /* deterministic reduce: items per partial */
    /* The root's credit rule, carried to the rank that runs the batch: it
     * tells the root as soon as it holds fewer chunks than this. */
    uint64_t report_below;
    /* Result messages: the chunks the sending rank had completed in all,
     * so the root knows how many it still holds. */
    uint64_t sender_chunks_completed;
    hpool__input input;

    /* Execution, inside a rank's team. */
    uint64_t next_chunk;           /* under the team's lock */
    uint64_t chunks_done;          /* under the team's lock */
    atomic_int canceled;
    /* Thread time of the chunks that were timed, and their items: every
     * chunk would cost two clock reads, as much as a tiny item itself. */
    atomic_uint_fast64_t timed_ns;
    atomic_uint_fast64_t timed_items;
    pthread_mutex_t lock;          /* guards failures and accumulator */

    /* Outputs. */
    unsigned char *results;        /* FIXED_RESULT: count × result_size */
    bool results_owned;
    hpool__chunk_output *chunk_outputs; /* RECORD_RESULT, per chunk */
    uint64_t *record_offsets;      /* RECORD_RESULT, after assembly */
    unsigned char *record_data;
    unsigned char *accumulator;    /* REDUCE */
    hpool__failure *failures;
    size_t failure_count, failure_capacity;

    hpool__keyed_store *store;     /* KEYED: where the chunks' pairs go */
    void *storage;                 /* a message the pointers above point into */
    int origin_rank;               /* where it ran, on the root */
} hpool__batch;

hpool__batch *hpool__batch_new(void);
void hpool__batch_free(hpool__batch *batch);
uint64_t hpool__batch_partials(const hpool__batch *batch);
int hpool__batch_add_failure(hpool__batch *batch, uint64_t index, int64_t code);
/* Merges per-chunk record outputs into record_offsets and record_data. */
int hpool__batch_assemble_records(hpool__batch *batch);
/* The input of item i of the batch. */
void hpool__input_get(const hpool__input *input, uint64_t i, const void **data, size_t *size,
                      int64_t *range_value);

/* ---- Team: the OpenMP threads of a rank (team.c) -------------------- */

/* A set of CPUs, as many as the affinity calls know (CPU_SETSIZE), held
 * without <sched.h>'s cpu_set_t so that files need no _GNU_SOURCE. */
typedef struct hpool__cpus {
    uint64_t bits[16];
} hpool__cpus;

typedef void hpool__batch_done_fn(hpool__batch *batch, void *user);
/* The team holds fewer chunks than the root asked it to report below. */
typedef void hpool__credit_fn(void *user);

/* Work split in parts among a team's threads (hpool__team_run). */
typedef void hpool__team_job_fn(void *arg, int part, int parts);
typedef struct hpool__team_job {
    hpool__team_job_fn *fn;
    void *arg;
    int parts, next_part, parts_done;
} hpool__team_job;

struct hpool__team {
    pthread_mutex_t lock;
    pthread_cond_t work_ready;
    hpool__batch *head, *tail;    /* batches with chunks not yet claimed */
    bool stopping;
    int thread_count;
    pthread_t thread;
    bool started;
    const hpool_function *functions;
    size_t function_count;
    const hpool_reducer *reducers;
    size_t reducer_count;
    const hpool_keyed_reducer *keyed_reducers;
    hpool__batch_done_fn *on_batch_done;
    hpool__credit_fn *on_credit;
    void *on_batch_done_user;          /* and on_credit's */
    /* What the team holds, for the root's credit: chunks received and
     * chunks completed in all (both under lock), each completed chunk
     * counted before its batch is reported done. */
    uint64_t chunks_received, chunks_completed;
    uint64_t report_below;             /* from the latest batch */
    bool credit_pending;               /* on_credit ran; the engine has not answered */
    uint64_t completed_at_credit;      /* chunks_completed when on_credit last ran */
    hpool__team_job *job;         /* parts not yet claimed; before any chunk */
    pthread_cond_t job_done;
    uint32_t canceled_calls[64];  /* recent canceled call ids, a ring */
    size_t canceled_next;
    /* Placement: with pin, thread i pins itself to CPU pin_offset + i of
     * cpus (the rank's CPUs, set before the start, wrapping around), unless
     * OpenMP bound it to a place. */
    bool pin;
    int pin_offset;
    hpool__cpus cpus;
    hpool__cpus *thread_cpus;     /* where each thread runs, as it starts */
    int threads_running;          /* the team's size, once known */
    int threads_ready;            /* threads that filled thread_cpus */
    bool openmp_bound;            /* OpenMP bound the threads to places */
    pthread_cond_t threads_started;
};

/* The CPUs this rank was given: its affinity mask, or with OpenMP places
 * (which libgomp makes from that mask) every place's CPUs. */
void hpool__team_rank_cpus(hpool__cpus *cpus);
int hpool__team_start(hpool__team *team);
/* Waits until every thread of a started team has recorded its CPUs. */
void hpool__team_wait_started(hpool__team *team);
void hpool__team_submit(hpool__team *team, hpool__batch *batch);
/* The engine's answer to on_credit: the chunks completed so far, for the
 * root; *pending (if not NULL) says whether on_credit ran since the last
 * call, and is cleared. */
uint64_t hpool__team_take_credit(hpool__team *team, bool *pending);
/* Whether the team holds fewer chunks than the root asked it to report
 * below: it has reported, or will, and a batch is on its way. */
bool hpool__team_is_short(hpool__team *team);
/* Runs fn(arg, part, parts) for every part 0 .. parts-1 on the team's
 * threads, ahead of any queued chunk, and returns when all are done; on the
 * calling thread if parts is 1 or the team has no threads. One caller at a
 * time: the rank's engine. */
void hpool__team_run(hpool__team *team, hpool__team_job_fn *fn, void *arg, int parts);
void hpool__team_cancel(hpool__team *team, uint32_t call_id);
void hpool__team_stop(hpool__team *team);

/* ---- Transport: all of hpool's MPI (transport.c) -------------------- */

enum hpool__message_type {
    HPOOL__MSG_BATCH = 1,
    HPOOL__MSG_RESULT,
    HPOOL__MSG_CANCEL,
    HPOOL__MSG_STOP,
    HPOOL__MSG_SHUFFLE,      /* root → ranks: the map phase of a keyed call is over */
    HPOOL__MSG_PAIRS,        /* rank → rank: the pairs the receiver owns */
    HPOOL__MSG_KEYED_RESULT, /* rank → root: its reduced, sorted run */
    HPOOL__MSG_CREDIT,       /* rank → root: u64 chunks completed; it holds too few */
    HPOOL__MSG_ERROR,        /* rank → root: i32 code; its engine stopped on it */
    /* Inside transport.c: a message too big for one MPI count travels as a
     * LARGE header (type, size, piece size) and then PIECEs, in order. */
    HPOOL__MSG_LARGE,
    HPOOL__MSG_PIECE,
};

typedef struct hpool__pending_send {
    MPI_Request request;
    void *buffer;                  /* freed when done, if not NULL */
    struct shared_buffer *shared;  /* a piece's message, freed after its last piece */
    size_t size;
} hpool__pending_send;

typedef struct hpool__transport {
    bool uses_mpi;
    MPI_Comm comm;
    int rank, size;
    hpool__pending_send *sends;
    size_t send_count, send_capacity;
    size_t pending_bytes;          /* of the sends not yet complete */
} hpool__transport;

/* A message received: type, source and its bytes (owned by the receiver). */
typedef struct hpool__message {
    int type;
    int source;
    void *data;
    size_t size;
} hpool__message;

int hpool__transport_open(hpool__transport *transport, MPI_Comm comm);
int hpool__transport_check_names(hpool__transport *transport, uint64_t names_hash);
/* Takes ownership of buffer (malloc'd), freed once sent, even on error.
 * Any size: one over INT_MAX bytes goes in pieces, and arrives whole. */
int hpool__transport_send(hpool__transport *transport, int dest, int type, void *buffer, size_t size);
/* 1 and *message if one arrived, 0 if none, or a negative error. */
int hpool__transport_receive(hpool__transport *transport, hpool__message *message);
/* Completes sends that are done; 0 or HPOOL_EMPI. */
int hpool__transport_progress(hpool__transport *transport);
int hpool__transport_flush(hpool__transport *transport);
/* Collective: every rank's size bytes of data, on root one after another in
 * *all with their sizes in *sizes (both malloc'd, root only; NULL elsewhere). */
int hpool__transport_gather(hpool__transport *transport, int root, const void *data, size_t size, void **all,
                            size_t **sizes);
void hpool__transport_close(hpool__transport *transport);

/* Cuts up to max_count items (and about max_bytes of a producer's) from
 * first on; sets batch->count and *ended when the source is exhausted. */
int hpool__source_cut(const hpool_source *source, uint64_t first, uint64_t max_count, size_t max_bytes,
                      hpool__batch *batch, bool *ended);
size_t hpool__source_item_bytes(const hpool_source *source);
/* One hpool_records from batches sorted by first that tile [0, total). */
hpool_records *hpool__records_build(hpool__batch **batches, size_t batch_count, uint64_t total);

/* Message encoding (sources.c for batches, collection.c for results). */
int hpool__batch_encode(const hpool__batch *batch, void **buffer, size_t *size);
int hpool__batch_decode(void *buffer, size_t size, hpool__batch **batch);
/* chunks_completed: the sending rank's count, for the root's credit. */
int hpool__result_encode(hpool__batch *batch, uint64_t chunks_completed, void **buffer, size_t *size);
int hpool__result_decode(void *buffer, size_t size, hpool__batch **batch);

/* ---- Placement (placement.c) ----------------------------------------- */

/* Threads per rank: requested, else the environment, else this rank's
 * share of cpus (its CPUs, from hpool__team_rank_cpus). */
int hpool__resolve_threads(int requested, const hpool__cpus *cpus);
bool hpool__launched_by_mpi_launcher(void);
/* Whether hpool pins threads: options.bind, else HPOOL_BIND; never when
 * OMP_PROC_BIND is false, and OpenMP's own binding comes first (team.c). */
bool hpool__resolve_bind(int requested);
/* The CPUs the calling thread may run on (its affinity mask). */
void hpool__cpus_of_this_thread(hpool__cpus *cpus);
int hpool__cpus_count(const hpool__cpus *cpus);
/* The n-th CPU of the set, counting from 0 and wrapping around. */
int hpool__cpus_nth(const hpool__cpus *cpus, int n);
/* Where this rank's pinned threads start among its CPUs: ranks that share
 * a mask (not bound by their launcher) take consecutive runs of it. */
int hpool__pin_offset(int threads);
/* Readies the calling thread to be a rank's engine: a timer slack of 1 µs,
 * so its short polls are not stretched, and the name "hpool-engine". Best
 * effort: where the system refuses, nothing changes. */
void hpool__prepare_engine_thread(void);
/* Pins the calling thread to one CPU; 0 or HPOOL_ETHREAD. */
int hpool__pin_this_thread(int cpu);
/* Collective, before the engine starts: gathers each rank's host, CPUs and
 * threads on the root, which warns if a host has more worker threads than
 * CPUs and prints the placement if asked (options.placement or
 * HPOOL_PLACEMENT). */
int hpool__placement_report(hpool_pool *pool, int requested);

/* ---- Calls and the pool (pool.c, scheduler.c, collection.c, calls.c) - */

enum hpool__call_kind {
    HPOOL__CALL_MAP,
    HPOOL__CALL_REDUCE,
    HPOOL__CALL_IMAP,
    HPOOL__CALL_IMAP_UNORDERED,
    HPOOL__CALL_KEYED
};

typedef struct hpool__call {
    struct hpool__call *next;       /* in pool->calls while active */
    uint32_t id;
    enum hpool__call_kind kind;
    hpool_call spec;
    const hpool_source *source;
    enum hpool__result_mode mode;
    size_t result_size;
    int refcount;                   /* the pool while active, plus one handle */

    uint64_t total;                 /* UINT64_MAX until a producer ends */
    uint64_t cut;                   /* items cut into batches so far */
    uint64_t done;                  /* items collected */
    /* Chunks cut and not yet released: for streams, until the caller has
     * read them. The window bounds it. */
    uint64_t chunks_in_flight;
    size_t batches_uncollected;     /* batches cut and not yet collected */
    uint32_t next_batch_id;
    bool source_ended;
    double ns_per_item;             /* measured thread time per item, 0: unknown */
    uint64_t block_size;            /* deterministic reduce, else 0 */
    bool canceled;
    bool cancel_pending;            /* the engine still has to tell the ranks */
    uint64_t canceled_before_start; /* items never cut, counted at the end */
    bool abandoned;                 /* its handle was freed early */

    hpool_report report;
    unsigned char *reduction;       /* REDUCE: value_size bytes */
    hpool__batch **record_batches;  /* map with records: kept until the end */
    size_t record_batch_count, record_batch_capacity;

    /* Streams: batches ready to read, in delivery order, and for imap the
     * completed ones still waiting for an earlier one. */
    hpool__batch *ready_head, *ready_tail;
    hpool__batch *waiting;          /* sorted by first */
    uint64_t next_to_deliver;
    hpool__batch *reading;          /* the batch hpool_iter_next reads */
    uint64_t reading_position;

    /* Keyed calls, after the map phase: the ranks' sorted runs. */
    bool shuffle_pending;           /* the engine still has to start it */
    bool shuffling;
    bool keyed_done;                /* every run merged, or given up */
    void **runs;
    size_t *run_sizes;
    int runs_received;
    int keyed_code;                 /* a reduce function's failure */
    uint64_t spilled_bytes;

    bool complete;                  /* report final, callbacks run */
} hpool__call;

/* What the root knows of one rank's work: its threads, the chunks sent to
 * it, and the chunks it said it completed (from its results and credit
 * messages; read from the team for the root itself). It holds the
 * difference: running, queued, or done and not yet reported. */
typedef struct hpool__rank_load {
    int threads;
    uint64_t chunks_sent, chunks_completed;
} hpool__rank_load;

struct hpool_pool {
    hpool__transport transport;
    int root;
    int thread_count;
    hpool_function *functions;
    size_t function_count;
    hpool_reducer *reducers;
    size_t reducer_count;
    hpool_keyed_reducer *keyed_reducers;
    size_t keyed_reducer_count;
    size_t window;                  /* chunks per call; 0: automatic */
    hpool__team team;

    pthread_t engine;
    bool engine_started;
    pthread_mutex_t lock;
    pthread_cond_t engine_wake;     /* wakes the engine */
    pthread_cond_t changed;         /* wakes threads waiting on calls */
    bool engine_has_news;

    /* Root only. */
    hpool__call *calls, *calls_tail;
    uint32_t next_call_id;
    bool closed, joining, joined;
    hpool__batch *local_done_head, *local_done_tail; /* from the team */
    hpool__rank_load *loads;        /* per rank: what it holds */
    uint64_t total_threads;         /* worker threads of all ranks */
    int error;                      /* first transport error */

    pthread_mutex_t stores_lock;    /* guards keyed_stores */
    hpool__keyed_store *keyed_stores; /* every rank: keyed calls under way */
    size_t memory_budget;
    char *temp_dir;
};

/* The keyed exchange between ranks (exchange.c). With pool->lock not held. */
hpool__keyed_store *hpool__keyed_store_get(hpool_pool *pool, uint32_t call_id, int keyed);
int hpool__shuffle_start(hpool_pool *pool, uint32_t call_id, int keyed);
int hpool__shuffle_receive(hpool_pool *pool, hpool__message *message);
int hpool__shuffle_run_received(hpool_pool *pool, hpool__message *message);
/* Sends more of the spilled partitions, as far as the send budget allows. */
int hpool__shuffle_progress(hpool_pool *pool, bool *busy);
void hpool__keyed_store_free(hpool__keyed_store *store);
/* Root: a rank's run arrived (pool->lock held); completes the call at the last. */
void hpool__keyed_run_arrived(hpool_pool *pool, uint32_t call_id, int code, uint64_t spilled_bytes, void *run,
                              size_t size);

/* Engine threads (scheduler.c for the root, pool.c for the others). */
void *hpool__root_engine(void *pool);
void *hpool__worker_engine(void *pool);
/* How an engine polls MPI: its wait starts at 16 µs << first_shift after
 * anything happened and doubles, while nothing does, up to 16 µs <<
 * busy_shift (and beyond after long idleness). The root answers a rank's
 * report well within the rank's reserve (3 ms); a serving rank polls
 * closest while it is short of chunks, for the batch that answers its
 * report. A serving rank whose team holds enough still climbs from 16 µs,
 * not straight to the cap: a flat 2 ms wait there cost 100 ms items 0.5%
 * (2 ranks x 8 threads: 0.993 of the bound against 0.997). */
typedef struct hpool__poll {
    unsigned first_shift, busy_shift;
} hpool__poll;
#define HPOOL__POLL_ROOT ((hpool__poll){2, 5})  /* 64 µs to 512 µs */
#define HPOOL__POLL_SHORT ((hpool__poll){0, 4}) /* 16 µs to 256 µs */
#define HPOOL__POLL_FULL ((hpool__poll){0, 6})  /* 16 µs to 1 ms */
/* With pool->lock held: waits for news, or, when polling, as above. */
void hpool__engine_wait(hpool_pool *pool, bool polling, unsigned *idle_rounds, hpool__poll poll);
void hpool__on_local_batch_done(hpool__batch *batch, void *pool);

/* Collection of completed batches on the root (collection.c). Both are
 * called with pool->lock held; collect may drop and retake it to run
 * callbacks. */
void hpool__collect(hpool_pool *pool, hpool__batch *batch);
void hpool__complete_if_done(hpool_pool *pool, hpool__call *call);
void hpool__call_release(hpool_pool *pool, hpool__call *call);
void hpool__cancel_call(hpool_pool *pool, hpool__call *call);

uint64_t hpool__now_ns(void);

#endif
