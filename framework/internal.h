/* internal.h: the structures shared by the framework's files; not installed. */
#ifndef HPOOL_INTERNAL_H
#define HPOOL_INTERNAL_H

#include "hpool.h"
#include "protocol.h"
#include "util.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

/* ---- Error details (errors.c) ---------------------------------------- */

/* Records the detail of an error this thread is about to return, for
 * hpool_error_detail(), and returns code, so a check reads
 *     return hpool__fail(HPOOL_EINVAL, "call.source is NULL");
 * The text names the field, rank or function, and says what to do. */
int hpool__fail(int code, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* Forgets this thread's detail: each public entry that can fail starts so,
 * so a detail never outlives the call that made it. */
void hpool__detail_clear(void);
/* This thread's detail, or "" (for copying it into a call's state). */
const char *hpool__detail_text(int code);
/* Sets this thread's detail from saved text, e.g. a call's, when its
 * status reaches the caller's thread. */
void hpool__detail_restore(int code, const char *text);

/* A caller's hpool_options or hpool_call (their_size = its struct_size)
 * into ours, which holds the defaults: fields the caller's older header
 * lacks keep them; fields of a newer header must be zero. oldest_size is
 * the size of the first layout (0.1). name is "options" or "call". */
int hpool__accept_struct(void *ours, size_t our_size, size_t oldest_size, const void *theirs, size_t their_size,
                         const char *name, const char *init_macro);
/* The sizes of the 0.1 layouts, which later versions still accept: they
 * ended at slow_item and at argument_size. */
#define HPOOL__OPTIONS_SIZE_0_1 (offsetof(hpool_options, slow_item) + sizeof(double))
#define HPOOL__CALL_SIZE_0_1 (offsetof(hpool_call, argument_size) + sizeof(size_t))

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

/* ---- Batches: the unit that travels between ranks -------------------- */

enum hpool__result_mode { HPOOL__NO_RESULT, HPOOL__FIXED_RESULT, HPOOL__RECORD_RESULT, HPOOL__REDUCE, HPOOL__KEYED };

typedef struct hpool__team hpool__team; /* below */

#include "keyed.h"

/* A run of failed items: index .. index + count - 1, all with code. The
 * items a stop or a cancel leaves unrun are one run per chunk, not one
 * entry per item: a chunk of a range may hold billions of items. */
typedef struct hpool__failure {
    uint64_t index;
    uint64_t count;
    int64_t code;
} hpool__failure;

/* Appends a run to the array, joined to the last run when it continues
 * it with the same code: 0, or HPOOL_ENOMEM (the array is unchanged). */
int hpool__failures_add(hpool__failure **failures, size_t *count, size_t *capacity, uint64_t index, uint64_t run,
                        int64_t code);
/* Whether a failure's code says the items did not run (canceled or
 * stopped): a rerun from the journal runs them. */
static inline bool hpool__failure_not_run(int64_t code)
{
    return code == HPOOL_ECANCELED || code == HPOOL_ESTOPPED;
}
/* Whether a failed run read from a peer or a journal is well formed and
 * lies wholly inside items first .. first + count - 1. */
static inline bool hpool__failure_inside(const hpool__failure *failure, uint64_t first, uint64_t count)
{
    return failure->code != 0 && failure->count != 0 && failure->index >= first && failure->index - first < count
           && failure->count <= count - (failure->index - first);
}
/* The part of a failed run inside items first .. first + count - 1, into
 * *part; false if none of it is. */
static inline bool hpool__failure_clip(const hpool__failure *failure, uint64_t first, uint64_t count,
                                       hpool__failure *part)
{
    uint64_t start = failure->index > first ? failure->index : first;
    uint64_t end = failure->index + failure->count < first + count ? failure->index + failure->count : first + count;
    if (start >= end)
        return false;
    *part = (hpool__failure){.index = start, .count = end - start, .code = failure->code};
    return true;
}
/* Sorts runs by their first item, so that hpool__failures_find works. */
void hpool__failures_sort(hpool__failure *failures, size_t count);
/* The code of the run holding item index among runs sorted by
 * hpool__failures_sort, or 0 if none does. */
int64_t hpool__failures_find(const hpool__failure *failures, size_t count, uint64_t index);

/* Variable-size results of one chunk while it runs. */
typedef struct hpool__chunk_output {
    hpool__buffer bytes;
    uint64_t *ends;  /* ends[i]: bytes emitted up to and including item i */
    size_t emitted;  /* items whose record is closed */
} hpool__chunk_output;

typedef struct hpool__batch {
    struct hpool__batch *next;     /* in one hpool__batch_queue at a time */
    uint32_t call_id;
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
    /* The call's argument: on the root the call's copy, elsewhere in the
     * message (8-byte aligned in both). */
    const void *argument;
    size_t argument_size;

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
    /* Not 0: every item of the batch failed with this code, when failures
     * could not be listed one by one (no memory). Its outputs and failure
     * list are then not read. */
    int whole_failed;

    hpool__keyed_store *store;     /* KEYED: where the chunks' pairs go (keyed.h) */
    void *storage;                 /* a message the pointers above point into */
    int origin_rank;               /* where it ran, on the root */
} hpool__batch;

/* Batches waiting for a team's threads, a rank's engine, or a reader. */
typedef struct hpool__batch_queue {
    hpool__batch *head, *tail;
} hpool__batch_queue;

hpool__batch *hpool__batch_new(void);
void hpool__batch_free(hpool__batch *batch);
uint64_t hpool__batch_partials(const hpool__batch *batch);
/* Items index .. index + count - 1 of the batch failed with code. */
int hpool__batch_add_failures(hpool__batch *batch, uint64_t index, uint64_t count, int64_t code);
/* Calls visit on each run of the batch's items that ran (failed ones
 * included), between the runs that did not (hpool__failure_not_run), in
 * item order: the failed runs must be sorted (hpool__collect sorts them).
 * Stops at visit's first nonzero return and returns it, or 0. */
int hpool__batch_each_run_that_ran(const hpool__batch *batch, int (*visit)(void *user, uint64_t first, uint64_t count),
                                   void *user);
/* The items of chunk c of batch: chunksize, or fewer for its last. */
static inline uint64_t hpool__chunk_items(const hpool__batch *batch, uint64_t c)
{
    uint64_t offset = c * batch->chunksize;
    return offset < batch->count ? hpool__min_u64(batch->count - offset, batch->chunksize) : 0;
}
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

/* Work split in parts among a team's threads (hpool__team_parallel). */
typedef void hpool__team_job_fn(void *arg, int part, int parts);
typedef struct hpool__team_job {
    hpool__team_job_fn *fn;
    void *arg;
    int parts, next_part, parts_done;
} hpool__team_job;

/* What one worker thread is running, for the crash report (read by the
 * thread's own signal handler) and the slow-item report (read by the
 * engine): relaxed atomics, plain stores on the hot path. */
enum hpool__work_kind { HPOOL__WORK_IDLE, HPOOL__WORK_MAP, HPOOL__WORK_SPAN, HPOOL__WORK_INIT };
typedef struct hpool__worker_status {
    /* A cache line of its own: each thread writes its item on every item,
     * and a line shared with a neighbour's would bounce between cores
     * (tiny items: a third of the status's cost). */
    _Alignas(64) _Atomic int kind;   /* an hpool__work_kind */
    _Atomic int function;            /* index in the team's functions */
    _Atomic uint64_t item;           /* the chunk's first item */
    _Atomic uint64_t count;          /* and its items */
    _Atomic uint64_t sequence;       /* changes with every chunk */
    /* The engine's own, for the slow-item report: the sequence as last
     * seen, and since when. */
    uint64_t seen_sequence, seen_since_ns;
    bool reported;
} hpool__worker_status;

/* A team's threads, kept from one pool to the next (team.c). */
typedef struct hpool__crew hpool__crew;

/* A chunk a team thread runs, open to the team's idle threads, which
 * claim its items as that thread does (share.c), so that a chunk whose
 * last items are slow does not run them one after another while other
 * threads wait. All but next and started are under the team's lock. */
typedef struct hpool__chunk_share {
    _Alignas(64) _Atomic uint64_t next; /* the next item to claim, from the chunk's first */
    atomic_int started;             /* its thread's function init succeeded: helpers may claim */
    hpool__batch *batch;
    uint64_t chunk, count;          /* the chunk's index in the batch, and its items */
    int participants;               /* threads taking part, its own included; 0: free */
    bool open;                      /* its own thread still claims: helpers may join */
} hpool__chunk_share;

struct hpool__team {
    pthread_mutex_t lock;
    pthread_cond_t work_ready;
    hpool__batch_queue queued;    /* batches with chunks not yet claimed */
    bool stopping;
    int thread_count;
    hpool__crew *crew;            /* its threads (team.c), reserved or serving */
    struct hpool__thread_probe *probe; /* a new crew's: ended before OpenMP starts */
    bool started;
    const hpool_function *functions;
    size_t function_count;
    const hpool_reducer *reducers;
    size_t reducer_count;
    const hpool_keyed_reducer *keyed_reducers;
    const void *owner;            /* the pool: its threads are marked with it */
    hpool__batch_done_fn *on_batch_done;
    hpool__credit_fn *on_credit;
    /* Runs on the thread in hpool__team_parallel every quarter second it
     * waits: a rank's engine still says it is alive while its team reduces. */
    hpool__credit_fn *while_waiting;
    void *on_batch_done_user;          /* and on_credit's and while_waiting's */
    /* What the team holds, for the root's credit: chunks received and
     * chunks completed in all (both under lock), each completed chunk
     * counted before its batch is reported done. */
    uint64_t chunks_received, chunks_completed;
    uint64_t report_below;             /* from the latest batch */
    bool credit_pending;               /* on_credit ran; the engine has not answered */
    uint64_t completed_at_credit;      /* chunks_completed when on_credit last ran */
    hpool__team_job *job;         /* parts not yet claimed; before any chunk */
    hpool__chunk_share *shares;   /* one per thread (share.c) */
    atomic_int idle_threads;      /* threads asleep for want of work (changed under lock) */
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
    int threads_finished;         /* threads done with the team, its memory included */
    bool openmp_bound;            /* OpenMP bound the threads to places */
    pthread_cond_t threads_started;
    int rank;                     /* for the reports: the pool's rank */
    hpool__worker_status *statuses; /* one per thread */
};

/* ---- Crash and slow-item reports (crash.c) --------------------------- */

/* Installs the process's crash handler, once: SIGSEGV, SIGBUS, SIGFPE,
 * SIGILL, SIGABRT. 0 or HPOOL_EINVAL (sigaction failed). */
int hpool__crash_handler_install(void);
/* A worker thread starts (thread -1: the engine thread, which runs keyed
 * reduce functions too): its status, rank and host, for its handler. */
void hpool__crash_worker_started(const hpool__team *team, int thread);
/* The worker is done with its team, whose memory may go: no report names it. */
void hpool__crash_worker_finished(void);
/* The task an item function runs on this thread, or NULL: its index is the
 * item a crash report names. Initial-exec TLS, so that the handler's read
 * never allocates, and a plain store here, not a call. */
extern __thread const hpool_task *hpool__running_task __attribute__((tls_model("initial-exec")));
static inline void hpool__crash_set_task(const hpool_task *task)
{
    hpool__running_task = task;
}
/* The keyed reduce function running on this thread and its key, or NULL. */
typedef struct hpool__running_reduce {
    const char *reducer;
    const void *key;
    size_t key_size;
} hpool__running_reduce;
extern __thread hpool__running_reduce hpool__reducing __attribute__((tls_model("initial-exec")));
/* The engine, every round: at most four times a second, notes since when
 * each worker thread runs its item, and reports (once each) the items
 * running longer than options.slow_item. */
void hpool__track_workers(hpool_pool *pool);
/* The thread whose item has run longest, and for how long (ns); -1 if all
 * are idle. Its line ("hpool: rank 0 (host) thread 2: ... at item 17")
 * goes into text. */
int hpool__longest_running(const hpool_pool *pool, uint64_t *age_ns, char *text, size_t size);

/* What hpool_span_emit and hpool_span_fail need while a chunk runs. */
typedef struct hpool__chunk_context {
    hpool__batch *batch;
    uint64_t offset;            /* the chunk's first item, within the batch */
    hpool__chunk_output *output;
    hpool__failure *failures;   /* this chunk's, merged into the batch after */
    size_t failure_count, failure_capacity;
    int error;                  /* an allocation failed */
    hpool__worker_status *status; /* the running thread's, or NULL */
    /* Items are claimed from share (its own thread's chunk or another's),
     * or with share NULL all of them run here; ran counts those that did. */
    hpool__team *team;
    hpool__chunk_share *share;
    bool owns_share;            /* the chunk is this thread's: it starts the share */
    uint64_t ran;
} hpool__chunk_context;

/* Records failed items index .. index + count - 1 of the chunk (span.c);
 * on no memory, chunk->error. */
void hpool__chunk_fail(hpool__chunk_context *chunk, uint64_t index, uint64_t count, int64_t code);
/* Closes the records of items before i, which emitted nothing more. Inline:
 * it runs after every item of a map with records. */
static inline void hpool__close_records_before(hpool__chunk_output *output, size_t i)
{
    while (output->emitted < i) {
        output->ends[output->emitted] = output->bytes.size;
        output->emitted++;
    }
}

/* Running chunks (chunk.c). A team thread's state: each function's init
 * state and scratch room for reduce values. NULL if memory ran out. */
typedef struct hpool__thread_state hpool__thread_state;
hpool__thread_state *hpool__thread_state_new(const hpool__team *team);
/* Runs each function's fini for the states init made. */
void hpool__thread_state_free(const hpool__team *team, hpool__thread_state *thread);
/* Runs chunk c of batch on team thread thread_index; with thread NULL,
 * fails its items with HPOOL_ENOMEM. Its outputs and failures go into the
 * batch. */
void hpool__execute_chunk(hpool__team *team, hpool__batch *batch, uint64_t c, int thread_index,
                          hpool__thread_state *thread, hpool__chunk_share *share);
/* Claims and runs items of the chunk another thread runs (its share), as
 * that thread does; what they produce goes into the chunk's batch. */
void hpool__help_chunk(hpool__team *team, hpool__chunk_share *share, int thread_index, hpool__thread_state *thread);

/* Sharing a running chunk's items (share.c). With the team's lock held: a
 * share for chunk c of batch, or NULL when its items must run on one thread
 * (spans, record results, the fixed blocks of a deterministic reduce). */
hpool__chunk_share *hpool__share_begin(hpool__team *team, hpool__batch *batch, uint64_t c);
/* Its thread's function init succeeded: helpers may claim; wakes idle threads. */
void hpool__share_started(hpool__team *team, hpool__chunk_share *share);
/* The items [*from, *to) of the chunk to run next, claimed from share, or
 * false when none are left. */
bool hpool__share_claim(const hpool__team *team, hpool__chunk_share *share, uint64_t *from, uint64_t *to);
/* With the team's lock held: a share with items left to claim, joined, or NULL. */
hpool__chunk_share *hpool__share_find(hpool__team *team);
/* With the team's lock held: leaves share; true for the last to leave,
 * who counts the chunk done. */
bool hpool__share_leave(hpool__chunk_share *share, bool its_thread);

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
/* Whether the team holds no chunk and runs no job. */
bool hpool__team_is_idle(hpool__team *team);
/* Runs fn(arg, part, parts) for every part 0 .. parts-1 on the team's
 * threads, ahead of any queued chunk, and returns when all are done; on the
 * calling thread if parts is 1 or the team has no threads. One caller at a
 * time: the rank's engine. */
void hpool__team_parallel(hpool__team *team, hpool__team_job_fn *fn, void *arg, int parts);
void hpool__team_cancel(hpool__team *team, uint32_t call_id);
/* Lets the threads finish every queued chunk and leave the team, whose
 * memory may then go; the threads are kept, asleep, for the next pool
 * (team.c, crews). */
void hpool__team_stop(hpool__team *team);
/* As stop, without waiting: for a team one of whose threads never returns.
 * Its memory is left to the threads. */
void hpool__team_abandon(hpool__team *team);
/* Takes the threads an earlier pool left, if they fit the team's
 * thread_count and cpus: true, and hpool__team_start will not start new
 * ones (no probe needed). If they do not fit they are ended. */
bool hpool__team_reserve_crew(hpool__team *team);
/* Joins the threads of earlier pools that were ended, so that a thread
 * probe does not count them. */
void hpool__team_join_ended(void);

/* ---- Transport: all of hpool's MPI (transport.c) -------------------- */

typedef struct hpool__pending_send {
    MPI_Request request;
    void *buffer;                  /* freed when done, if not NULL */
    struct shared_buffer *shared;  /* a piece's message, freed after its last piece */
    size_t size;
    int dest;
} hpool__pending_send;

typedef struct hpool__transport {
    bool uses_mpi;
    MPI_Comm comm;
    int rank, size;
    hpool__pending_send *sends;
    size_t send_count, send_capacity;
    size_t pending_bytes;          /* of the sends not yet complete */
} hpool__transport;

int hpool__transport_open(hpool__transport *transport, MPI_Comm comm);
/* Takes ownership of buffer (malloc'd), freed once sent, even on error.
 * Any size: one over INT_MAX bytes goes in pieces, and arrives whole. */
int hpool__transport_send(hpool__transport *transport, int dest, int type, void *buffer, size_t size);
/* The same message to every rank but except, from one buffer. */
int hpool__transport_send_to_all(hpool__transport *transport, int except, int type, void *buffer, size_t size);
/* Collective: the lowest and highest of every rank's value, everywhere. */
int hpool__transport_agree(hpool__transport *transport, uint64_t value, uint64_t *lowest, uint64_t *highest);
/* 1 and *message if one arrived, 0 if none, or a negative error. */
int hpool__transport_receive(hpool__transport *transport, hpool__message *message);
/* Completes sends that are done; 0 or HPOOL_EMPI. */
int hpool__transport_progress(hpool__transport *transport);
int hpool__transport_flush(hpool__transport *transport);
/* Stops waiting for the sends to rank, which has stalled: their requests
 * are freed and their buffers left behind, since MPI may still read them
 * if the rank wakes. */
void hpool__transport_abandon_sends_to(hpool__transport *transport, int rank);
/* Collective: every rank's size bytes of data, on root one after another in
 * *all with their sizes in *sizes (both malloc'd, root only; NULL elsewhere). */
int hpool__transport_gather(hpool__transport *transport, int root, const void *data, size_t size, void **all,
                            size_t **sizes);
void hpool__transport_close(hpool__transport *transport);

/* ---- Sources (sources.c) and records (records.c) --------------------- */

/* Cuts up to max_count items (and about max_bytes of a producer's) from
 * first on; sets batch->count and *ended when the source is exhausted. */
int hpool__source_cut(const hpool_source *source, uint64_t first, uint64_t max_count, size_t max_bytes,
                      hpool__batch *batch, bool *ended);
size_t hpool__source_item_bytes(const hpool_source *source);
/* One hpool_records from batches sorted by first that tile [0, total). */
hpool_records *hpool__records_build(hpool__batch **batches, size_t batch_count, uint64_t total);

/* Pools of this process not yet freed (pool.c). */
int hpool__live_pools(void);

/* ---- Placement (placement.c) ----------------------------------------- */

/* Threads per rank: requested, else the environment, else this rank's
 * share of cpus (its CPUs, from hpool__team_rank_cpus), into *threads,
 * and *origin names where the count came from. HPOOL_EINVAL for an
 * HPOOL_THREADS that is not a positive count. */
int hpool__resolve_threads(int requested, const hpool__cpus *cpus, int *threads, const char **origin);
/* The most worker threads a rank runs (documented at options.threads). */
#define HPOOL__MAX_THREADS 4096
/* Whether threads worker threads can start on this rank: at most
 * HPOOL__MAX_THREADS, and the system lets them start (a probe). 0, or
 * HPOOL_ETHREAD with a detail naming the count, origin and the limit. On
 * 0, *probe holds the probe's threads, released but perhaps not ended:
 * hand it to hpool__thread_probe_end before OpenMP starts threads. */
typedef struct hpool__thread_probe hpool__thread_probe;
int hpool__check_threads(int threads, const char *origin, hpool__thread_probe **probe);
/* Waits for a probe's threads to end, and frees it; NULL does nothing. */
void hpool__thread_probe_end(hpool__thread_probe *probe);
/* A variable of hpool's that must be a positive whole number: 0 and
 * *value (0 when unset or empty), or HPOOL_EINVAL naming it and its value. */
int hpool__env_positive(const char *name, long *value);
/* HPOOL_BIND (when bind is 0) and HPOOL_PLACEMENT (when placement is 0)
 * are each unset or one of the words: 0, or HPOOL_EINVAL naming them. */
int hpool__check_placement_environment(int bind, int placement);
/* A yes/no variable: *value 1, 0, or -1 when unset; HPOOL_EINVAL (with a
 * detail listing the words) when set to anything else. */
int hpool__env_yes_no(const char *name, int *value);
bool hpool__launched_by_mpi_launcher(void);
/* Whether hpool pins threads: options.bind, else HPOOL_BIND; never when
 * OMP_PROC_BIND is false, and OpenMP's own binding comes first (team.c). */
bool hpool__resolve_bind(int requested);
/* The CPUs the calling thread may run on (its affinity mask): 0, or
 * HPOOL_ETHREAD and {cpu 0} when the mask cannot be read. */
int hpool__cpus_of_this_thread(hpool__cpus *cpus);
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
/* Sets the calling thread's mask to cpus; 0 or HPOOL_ETHREAD. */
int hpool__set_this_thread_cpus(const hpool__cpus *cpus);
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

/* The root's state of one call under way (the caller's hpool_call is its
 * spec). */
typedef struct hpool__call_state {
    struct hpool__call_state *next; /* in pool->calls while active */
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
    uint64_t chunks_in_window;
    size_t batches_uncollected;     /* batches cut and not yet collected */
    size_t local_uncollected;       /* of those, on the root's own team */
    bool source_ended;
    double ns_per_item;             /* measured thread time per item, 0: unknown */
    double ns_per_item_weight;      /* the items it stands for (collection.c) */
    uint64_t block_size;            /* deterministic reduce, else 0 */
    bool canceled;
    bool cancel_pending;            /* the engine still has to tell the ranks */
    uint64_t canceled_before_start; /* items never cut, counted at the end */
    bool abandoned;                 /* its handle was freed early */
    /* A wait on it timed out: hpool_pool_join and _free, like terminate,
     * then abandon an item of it still running past the stall timeout. */
    bool wait_timed_out;
    uint64_t last_read_ns;          /* a stream: when its reader last took a batch */
    int keyed_code_rank;            /* keyed: the rank whose reduce or write returned keyed_code */

    hpool_report report;
    /* The detail of the call's failure, for hpool_error_detail() on the
     * thread that takes its status: "" when the status says it all. */
    char detail[384];
    void *argument;                 /* the caller's argument, copied */
    unsigned char *reduction;       /* REDUCE: value_size bytes */
    hpool__batch **record_batches;  /* map with records: kept until the end */
    size_t record_batch_count, record_batch_capacity;

    /* Streams: batches ready to read, in delivery order, and for imap the
     * completed ones still waiting for an earlier one. */
    hpool__batch_queue ready;
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

    /* A journal (journal.c): what completed is appended to it, and what it
     * holds is replayed instead of run. */
    struct hpool__journal *journal;
    bool stopped;                   /* hpool_pool_stop: ends with HPOOL_ESTOPPED */
    /* Canceled or stopped before its producer ended: items were left
     * unread, though none is counted (their number is unknown). */
    bool cut_short;
    /* Keyed calls with a journal: a checkpoint under way (the root cuts
     * nothing more of the call until every rank has written its file),
     * the next one's time, and whether the last checkpoint's pairs have
     * been restored into the root's store. */
    bool checkpointing, checkpoint_wanted, restored, checkpoint_final_done;
    int checkpoints_answered, checkpoint_code;
    uint64_t checkpoint_due_ns, checkpoint_generation;
    uint64_t *checkpoint_files;     /* per rank: bytes, checksum */
    /* The items done so far, (first, count) pairs, and their failures. */
    hpool__buffer keyed_ranges, keyed_failures;

    bool complete;                  /* report final, callbacks run */
    void *owned_input;              /* apply_async's copy of its input, */
    hpool_source *owned_source;     /* and its source: freed with the call */
} hpool__call_state;

/* Chunks leave a call's window as they are released (collected, or read
 * by a stream's caller): never more than went in. */
/* Fails the call with code, and the detail this thread holds for it, unless
 * it failed already (its first error stays). With pool->lock held. */
static inline void hpool__call_set_error(hpool__call_state *call, int code)
{
    if (call->report.status != 0)
        return;
    call->report.status = code;
    snprintf(call->detail, sizeof call->detail, "%s", hpool__detail_text(code));
}

static inline void hpool__release_chunks(hpool__call_state *call, uint64_t chunks)
{
    HPOOL__ASSERT(call->chunks_in_window >= chunks);
    call->chunks_in_window -= chunks;
}

/* What the root knows of one rank's work: its threads, the chunks sent to
 * it, and the chunks it said it completed (from its results and credit
 * messages; read from the team for the root itself). It holds the
 * difference: running, queued, or done and not yet reported. */
/* A batch the root sent to a rank and has not had back. */
typedef struct hpool__outstanding {
    uint32_t call_id;
    uint64_t first, count;
} hpool__outstanding;

typedef struct hpool__rank_load {
    int threads;
    uint64_t chunks_sent, chunks_completed;
    bool engine_ended; /* it sent STOPPED or ERROR: nothing more comes */
    bool given_up;     /* a stop at once gave up its batches: what it sends is dropped until STOPPED */
    /* The stall watchdog: when the root last heard from the rank (every
     * rank's engine sends a HEARTBEAT at least every second), and the
     * batches it holds, to name them if it goes silent. */
    uint64_t last_heard_ns;
    hpool__outstanding *outstanding;
    size_t outstanding_count, outstanding_capacity;
    char host[64];
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
    uint64_t stall_timeout_ns;      /* 0: never */
    uint64_t slow_item_ns;          /* 0: off */
    bool crash_report;
    uint64_t last_round_ns;         /* the root engine's last watchdog round */
    uint64_t heartbeat_sent_ns;     /* the engine's last HEARTBEAT (to the root, or the root's to all) */
    uint64_t root_heard_ns;         /* a serving rank: when the root last spoke */
    uint64_t slow_items_checked_ns; /* the engine's last slow-item check */

    pthread_t engine;
    bool engine_started;
    int engine_gate;                /* 0 closed, 1 run, -1 creation failed: exit */
    bool locks_ready;
    pthread_mutex_t lock;
    pthread_cond_t engine_wake;     /* wakes the engine */
    pthread_cond_t changed;         /* wakes threads waiting on calls */
    bool engine_has_news;

    /* Root only. */
    struct {
        hpool__call_state *head, *tail;
    } calls;                        /* under way, in order of submission */
    uint32_t next_call_id;
    bool closed, joining, joined;
    uint64_t join_started_ns;       /* hpool_pool_join: an unread stream is given up a stall timeout on */
    /* hpool_pool_terminate was called: after the stall timeout, an item
     * still running is abandoned (team_abandoned: its thread is left to
     * run, and the pool's memory with it). */
    bool terminating, team_abandoned;
    uint64_t terminate_started_ns;  /* ... and when: a rank's batch is given up a stall timeout on */
    hpool__batch_queue local_done;  /* finished by this rank's team */
    hpool__rank_load *loads;        /* per rank: what it holds */
    uint64_t total_threads;         /* worker threads of all ranks */
    int error;                      /* first transport error */
    char error_detail[384];         /* its detail, for hpool_pool_join */

    /* Stopping (stop.c): the level asked on this rank (1 drain, 2 at
     * once), by hpool_pool_stop() from any thread or signal handler, and
     * the signal; on the root, the level applied and the highest any rank
     * asked, and when the grace of a drain runs out. */
    atomic_int stop_asked, stop_signal, stop_remote, stop_applied;
    int stop_sent;
    uint64_t stop_deadline_ns, stop_grace_ns;
    uint64_t journal_sync_ns, journal_checkpoint_ns;

    pthread_mutex_t stores_lock;    /* guards keyed_stores */
    hpool__keyed_store *keyed_stores; /* every rank: keyed calls under way */
    size_t memory_budget;
    char *temp_dir;
    const char *temp_dir_origin;    /* where it came from, for spill failures' details */
};

/* ---- Scheduling (scheduler.c): pure rules over the root's counts ------ */

/* What the root sends a rank next from one call. */
typedef struct hpool__batch_plan {
    uint64_t chunksize;
    uint64_t items; /* at most; whole chunks but for the call's last */
    uint64_t want;  /* chunks the rank should hold */
} hpool__batch_plan;

/* Chunks the root counts as held by rank: sent, not yet reported done. */
uint64_t hpool__held_chunks(const hpool_pool *pool, int rank);
/* Plans the next batch of call for rank, which holds held chunks; false if
 * the call's window is full. plan->items is 0 when the rank holds enough. */
bool hpool__plan_batch(const hpool_pool *pool, const hpool__call_state *call, int rank, uint64_t held,
                       hpool__batch_plan *plan);
/* The first call with items left to cut and room in its window, planned
 * for rank dest; NULL if none. */
hpool__call_state *hpool__next_call_to_cut(hpool_pool *pool, int dest, hpool__batch_plan *plan);
/* Cuts the next batch of call for rank dest as planned, counted as sent,
 * or returns NULL if the source has ended (or failed: the call's status
 * says so). With pool->lock held: a producer source runs here. */
hpool__batch *hpool__cut_batch(hpool_pool *pool, hpool__call_state *call, int dest, const hpool__batch_plan *plan);

/* Engine threads (root_engine.c, rank_engine.c), and how they wait (engine_wait.c). */
void *hpool__root_engine(void *pool);
/* A serving rank's team_parallel keepalive: a HEARTBEAT when one is due. */
void hpool__rank_keepalive(void *pool);

/* The stall watchdog (watchdog.c), on the root, with pool->lock held. */
void hpool__watchdog_start(hpool_pool *pool);
/* A message came from rank. */
void hpool__watchdog_heard(hpool_pool *pool, int rank);
/* A batch went to rank, and came back. */
int hpool__watchdog_sent(hpool_pool *pool, int rank, uint32_t call_id, uint64_t first, uint64_t count);
void hpool__watchdog_returned(hpool_pool *pool, int rank, uint32_t call_id, uint64_t first);
/* HPOOL_ESTALLED, with a detail naming it, for the first rank silent for
 * longer than the stall timeout, which is then counted as ended; else 0. */
int hpool__watchdog_check(hpool_pool *pool);
/* "items 1200-1299 of call 3, item 1500 of call 3 and 2 more batches":
 * the batches load holds. */
void hpool__watchdog_describe_held(const hpool__rank_load *load, char *text, size_t size);
void hpool__watchdog_free(hpool_pool *pool);
void *hpool__rank_engine(void *pool);
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

/* Collection of completed batches on the root (collection.c). Both are
 * called with pool->lock held; collect may drop and retake it to run
 * callbacks. */
void hpool__collect(hpool_pool *pool, hpool__batch *batch);
/* Keeps code, with this thread's detail of it, as the pool's first error
 * (what hpool_pool_join returns), unless it has one. With pool->lock held. */
void hpool__keep_pool_error(hpool_pool *pool, int code);
/* The call under way with this id, or NULL. */
hpool__call_state *hpool__find_call(hpool_pool *pool, uint32_t id);
void hpool__complete_if_done(hpool_pool *pool, hpool__call_state *call);
void hpool__call_release(hpool_pool *pool, hpool__call_state *call);
void hpool__cancel_call(hpool_pool *pool, hpool__call_state *call);

/* ---- Journals (journal.c) ------------------------------------------- */

typedef struct hpool__journal hpool__journal;
/* Opens call->spec.journal for call (name: the API function, for details):
 * creates it with a header, or checks the header (HPOOL_EJOURNAL when it
 * is another call's) and indexes the completed work it holds, cutting off
 * a torn last record. Sets call->journal. On the caller's thread. */
int hpool__journal_open(hpool_pool *pool, hpool__call_state *call, const char *name);
/* Syncs and closes; a failed sync becomes the call's error (call may be NULL). */
void hpool__journal_close(hpool__journal *journal, hpool__call_state *call);
/* Appends what a collected batch completed (not its items that did not
 * run). With pool->lock held; an error is the call's. */
int hpool__journal_append(hpool_pool *pool, hpool__call_state *call, const hpool__batch *batch);
/* The first journaled run that ends after item from: true and its first
 * item and count, or false when none is left. */
bool hpool__journal_next_done(hpool__journal *journal, uint64_t from, uint64_t *first, uint64_t *count);
/* Fills batch with that run's items, failures and outputs, and moves past it. */
int hpool__journal_replay(hpool_pool *pool, hpool__call_state *call, hpool__batch *batch);
/* Keyed calls: appends a checkpoint record (synced), and the last one read. */
int hpool__journal_append_checkpoint(hpool__call_state *call, const void *payload, size_t size);
const void *hpool__journal_checkpoint(const hpool__journal *journal, size_t *size);
const char *hpool__journal_path(const hpool__journal *journal);
/* The last checkpoint's generation (0: none); setting it returns the
 * ranks that wrote the one before. */
uint64_t hpool__journal_generation(const hpool__journal *journal);
int hpool__journal_set_generation(hpool__journal *journal, uint64_t generation, int ranks);

/* ---- Keyed calls' checkpoints (journal_keyed.c) ----------------------- */

/* A CHECKPOINT record's parts; HPOOL_EJOURNAL if malformed. */
int hpool__checkpoint_parse(const void *payload, size_t size, uint64_t *generation, const uint64_t **ranges,
                            uint64_t *range_count, const hpool__failure **failures, uint64_t *failure_count,
                            const uint64_t **files, int *ranks);
/* A collected batch of a journaled keyed call: its done items and failures. */
int hpool__checkpoint_note_batch(hpool__call_state *call, const hpool__batch *batch);
/* The root engine, each round, with pool->lock held: restores, and starts
 * the checkpoints that are due. */
void hpool__checkpoint_round(hpool_pool *pool);
/* A rank's (or the root's own) file was written, or failed. pool->lock held. */
void hpool__checkpoint_answered(hpool_pool *pool, int rank, uint32_t call_id, int code, uint64_t generation,
                                uint64_t bytes, uint64_t checksum, const char *detail);
/* A serving rank: CHECKPOINT arrived; writes its file and answers. Takes the message. */
int hpool__checkpoint_serve(hpool_pool *pool, hpool__message *message);
/* The root: CHECKPOINTED arrived. pool->lock not held; takes the message. */
int hpool__checkpoint_received(hpool_pool *pool, hpool__message *message);

/* ---- Stopping (stop.c) ------------------------------------------------ */

/* The root engine, each round, with pool->lock held: applies a stop asked
 * here or by a rank, and the end of a drain's grace. */
void hpool__stop_apply(hpool_pool *pool);
/* A serving rank's engine: sends the root a stop asked here; 0 or an error. */
int hpool__stop_forward(hpool_pool *pool);
/* The root: a rank asked to stop (STOP_REQUEST). */
void hpool__stop_requested(hpool_pool *pool, int level, int signal);
/* Sets the detail of a call that a stop ended. With pool->lock held. */
void hpool__stop_describe(hpool_pool *pool, hpool__call_state *call);
/* hpool_pool_free: puts back the handlers this pool installed. */
void hpool__stop_release(hpool_pool *pool);


#endif
