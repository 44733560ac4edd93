/* hpool.h: the public API of hpool, a map-reduce pool over OpenMP threads and MPI ranks. */
#ifndef HPOOL_H
#define HPOOL_H

/*
 * hpool runs a plain C map function over many items, on T OpenMP threads in
 * each of P MPI ranks, with the calls of Python's multiprocessing.Pool: map,
 * map_async, starmap, imap, imap_unordered, apply, apply_async, plus
 * map_reduce. Every rank runs the same program; the root rank makes the calls
 * and computes too, the other ranks serve it inside hpool_pool_join().
 *
 *     #include <hpool.h>
 *     #include <stdio.h>
 *
 *     static int square(hpool_task *task, void *user)
 *     {
 *         int64_t x = *(const int64_t *)task->input;   // a range item
 *         *(int64_t *)task->result = x * x;
 *         return 0;                                     // non-zero: item failed
 *     }
 *     static const hpool_function functions[] = {{.name = "square", .map = square}};
 *
 *     int main(int argc, char **argv)
 *     {
 *         hpool_mpi_init(&argc, &argv);                 // nothing without mpirun
 *         hpool_options options = HPOOL_OPTIONS_INIT;
 *         options.functions = functions;
 *         options.function_count = 1;
 *         hpool_pool *pool;
 *         int rc = hpool_pool_create(&pool, &options);
 *         if (rc == 0 && hpool_pool_is_root(pool)) {
 *             int64_t out[10];
 *             hpool_source *range;
 *             hpool_source_range(&range, 0, 10);
 *             hpool_call call = HPOOL_CALL_INIT;
 *             call.source = range;
 *             call.results = out;
 *             call.result_size = sizeof out[0];
 *             rc = hpool_map(pool, &call, NULL);
 *             for (int i = 0; rc == 0 && i < 10; i++)
 *                 printf("%lld\n", (long long)out[i]);       // 0 1 4 9 ... 81
 *             hpool_source_free(range);
 *         }
 *         if (rc != 0) {
 *             char detail[256];
 *             hpool_error_detail(rc, detail, sizeof detail);
 *             fprintf(stderr, "%s\n", detail);
 *         }
 *         hpool_pool_free(pool);                        // all ranks: joins first
 *         hpool_mpi_finalize();
 *         return rc != 0;
 *     }
 *
 * How work is shared out: a call's items are cut into chunks (what one
 * thread runs at a time, see hpool_call.chunksize), and chunks into batches
 * (what one message carries to a rank). The root keeps every rank topped
 * up with a chunk for each of its threads plus a reserve of queued ones,
 * counting the chunks each rank has completed (ranks report them as they
 * complete, not only with whole batches), so every thread of every rank
 * has work while any is left, whatever the items cost: from nanoseconds
 * (chunks of about 1 ms, batches of about 10 ms of a rank's work) to
 * minutes (a chunk and a batch per item). In the last round nothing is
 * queued: each remaining chunk goes to the first thread that is free.
 * Messages of any size travel, in pieces over 2 GiB.
 *
 * Rules that hold everywhere:
 * - Every call that can fail returns an int: 0 on success, a negative
 *   HPOOL_E* code otherwise; hpool_strerror() explains each code.
 * - hpool never calls exit(), abort() or MPI_Abort().
 * - Functions are identified across ranks by their index in the table given
 *   to hpool_pool_create(), never by pointer; every rank must pass a table
 *   with the same names in the same order (checked, HPOOL_EMISMATCH).
 * - A call refused as it starts (an error before any item runs: EINVAL,
 *   ECLOSED, ENOTROOT, EDEADLK, ENOMEM, ...) never fires its callbacks; a
 *   call that started fires its completion callback exactly once, whatever
 *   its outcome (HPOOL_EFAILED, ESTOPPED and the rest included).
 * - Free functions accept NULL.
 * - A pool's own threads (its map functions, and the completion, error and
 *   progress callbacks) must not wait on that pool: a call that would
 *   (hpool_map, starmap, map_reduce, map_reduce_keyed, apply, async_wait
 *   and async_get on an unfinished call, iter_next with a timeout other
 *   than 0, pool_join, pool_terminate) returns HPOOL_EDEADLK there, and
 *   hpool_pool_free does nothing. Calls that only start work
 *   (hpool_map_async, hpool_imap, ...) are allowed.
 * - Every function says which threads may call it ("Threads:").
 * - A failed function leaves a detail for hpool_error_detail().
 *
 * Your duties, which hpool cannot check:
 * - Map, span, init, combine, merge, reduce, compare and write functions
 *   run on many threads of every rank at once: they must be thread-safe.
 *   hpool's own workers share nothing mutable, but your globals are shared
 *   by the threads of a rank, unguarded (updates from several threads are
 *   lost), and are not shared at all between ranks: a value set on the
 *   root after the pool started never reaches the other ranks. Put what a
 *   call needs in its argument (hpool_call.argument, Python's partial), a
 *   thread's state in init's, and what it produces in its results.
 * - Every rank creates the pool with the same tables in the same order,
 *   and every rank calls hpool_pool_join() or hpool_pool_free().
 * - Pointers you give a call (source, results, reduction, records, pairs)
 *   live until it completes; the argument is copied when it starts.
 * - Structs you give hpool start from HPOOL_OPTIONS_INIT, HPOOL_CALL_INIT,
 *   or designated initialisers for table entries, so fields added later
 *   read as zero.
 */

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the public API. The library is built with hidden visibility
 * (CMake's C_VISIBILITY_PRESET), so only what carries this mark is
 * exported from libhpool.so; its internal hpool__ functions are not. */
#if defined(_WIN32)
#  define HPOOL_API
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define HPOOL_API __attribute__((visibility("default")))
#else
#  define HPOOL_API
#endif

/* ======================================================================
 * Versions
 * ====================================================================== */

/* The version of this header. CMake reads its project version from these
 * three lines, so the library, the package files and the header agree. */
#define HPOOL_VERSION_MAJOR 0
#define HPOOL_VERSION_MINOR 2
#define HPOOL_VERSION_PATCH 0
/* MAJOR * 10000 + MINOR * 100 + PATCH, for #if. */
#define HPOOL_VERSION_NUMBER (HPOOL_VERSION_MAJOR * 10000 + HPOOL_VERSION_MINOR * 100 + HPOOL_VERSION_PATCH)

/*! hpool_version() : the version of the library linked at run time, as
 *  HPOOL_VERSION_NUMBER; compare it with the macro to catch a program built
 *  against another header.
 *  Threads: any thread, any time. */
HPOOL_API unsigned hpool_version(void);
/*! hpool_version_string() : the same as "MAJOR.MINOR.PATCH", static.
 *  Threads: any thread, any time. */
HPOOL_API const char *hpool_version_string(void);

/* ======================================================================
 * Errors
 * ====================================================================== */

/* One table makes the codes, hpool_strerror() and hpool_err_name(). */
#define HPOOL_ERRNO_MAP(XX)                                                    \
    XX(EOF, -1, "end of stream")                                               \
    XX(EINVAL, -2, "invalid argument")                                         \
    XX(ENOMEM, -3, "out of memory")                                            \
    XX(EMPI, -4, "MPI call failed")                                            \
    XX(ETHREAD, -5, "could not start a thread")                                \
    XX(ETIMEDOUT, -6, "timed out")                                             \
    XX(EFAILED, -7, "some items failed")                                       \
    XX(ECANCELED, -8, "canceled before it ran (hpool_pool_terminate, or its call failed)") \
    XX(ECLOSED, -9, "pool is closed")                                          \
    XX(ENOTROOT, -10, "only the root rank may make calls")                     \
    XX(EMISMATCH, -11, "ranks registered different function tables")          \
    XX(EMPILEVEL, -12, "MPI was initialised without MPI_THREAD_SERIALIZED")    \
    XX(ENOMPI, -13, "launched by mpirun or srun but MPI is not initialised")   \
    XX(EPEER, -14, "a rank sent a malformed message")                          \
    XX(EIO, -15, "input/output error")                                         \
    XX(EVERSION, -16, "ranks run hpool builds that speak different protocols") \
    XX(EDEADLK, -17, "a pool's own thread (a map function or callback) waited on that pool") \
    XX(EBUSY, -18, "a pool still uses MPI: free every pool first")                 \
    XX(ESTALLED, -19, "a rank, or an item, stopped making progress")         \
    XX(ESTOPPED, -20, "stopped before every item ran (hpool_pool_stop or a signal): a rerun with the same journal resumes") \
    XX(EJOURNAL, -21, "the journal belongs to another call, or is not an hpool journal")

enum {
    HPOOL_OK = 0,
#define HPOOL__ERRNO_ENUM(name, value, text) HPOOL_##name = value,
    HPOOL_ERRNO_MAP(HPOOL__ERRNO_ENUM)
#undef HPOOL__ERRNO_ENUM
};

/*! hpool_strerror() : a sentence for any code, HPOOL_* or not.
 *  @return : a static string; never NULL.
 *  Threads: any thread, any time. */
HPOOL_API const char *hpool_strerror(int code);

/*! hpool_error_detail() : what exactly went wrong, for the last error an
 *  hpool function returned to this thread: which field, rank or function,
 *  and what to do, e.g. "call.result_size is 8 but the reducer "sum" has
 *  value_size 4". Pass the code that function returned; if the thread's
 *  last error had another code, or no detail, the text is
 *  hpool_strerror(code). A call's own failure (a rank that stopped, the
 *  first failed item) is the detail of the function that returned its
 *  status: hpool_map(), hpool_async_get(), hpool_iter_next(), ...
 *  Writes at most size bytes into buf, always NUL-terminated, like
 *  PCRE2's pcre2_get_error_message().
 *  @return : the detail's length (it was cut if that is size or more), or
 *  HPOOL_EINVAL for a NULL buf or size 0.
 *  Threads: any thread: each reads its own last error. */
HPOOL_API int hpool_error_detail(int code, char *buf, size_t size);

/*! hpool_err_name() : the code's name, e.g. "HPOOL_EINVAL", or "HPOOL_OK".
 *  @return : a static string; "unknown" for codes outside the table.
 *  Threads: any thread, any time. */
HPOOL_API const char *hpool_err_name(int code);

/* ======================================================================
 * MPI set-up, for programs that want hpool to own MPI
 * ====================================================================== */

/*! hpool_mpi_init() : initialise MPI with MPI_THREAD_MULTIPLE if this process
 *  was started by a launcher (mpirun, srun); do nothing for a plain run, which
 *  then becomes a one-rank pool without MPI (and skips MPI's start-up cost).
 *  Programs that call MPI_Init_thread themselves do not call this. It sets
 *  MPI_ERRORS_RETURN on MPI_COMM_WORLD, so that MPI errors come back as
 *  codes instead of ending the job. Unless UCX_LOG_FILE is set already, or
 *  UCX is loaded already (an MPI linked with it: set it before the program
 *  starts), it sets it to "stderr": UCX logs to stdout by default, into the
 *  results a program prints there.
 *  @return : 0, HPOOL_EMPI, or HPOOL_EMPILEVEL.
 *  Threads: the thread that will call hpool_mpi_finalize (MPI's main thread),
 *  once, before any pool. */
HPOOL_API int hpool_mpi_init(int *argc, char ***argv);

/*! hpool_mpi_finalize() : MPI_Finalize if hpool_mpi_init() initialised MPI.
 *  @return : 0, HPOOL_EMPI, or HPOOL_EBUSY (nothing done) while any pool of
 *  this process has not been freed.
 *  Threads: the thread that called hpool_mpi_init, once, after every pool is
 *  freed. */
HPOOL_API int hpool_mpi_finalize(void);

/* ======================================================================
 * Map functions
 * ====================================================================== */

typedef struct hpool_span hpool_span;
typedef struct hpool_emitter hpool_emitter;

/* What an item map function sees. The framework owns every pointer in it;
 * they are valid only during the call. hpool allocates hpool_task and
 * hpool_span, so later versions only add fields at their ends. */
typedef struct hpool_task {
    uint64_t index;          /* the item's position in the input, from 0 */
    const void *input;       /* the item: for a range source, an int64_t */
    size_t input_size;       /* its size in bytes; records get a NUL after */
    /* starmap over columns: one pointer per column, for up to 16 columns;
     * with more, args is NULL and arg_count 0, and input holds the row's
     * columns packed one after another. */
    const void *const *args;
    size_t arg_count;
    void *result;            /* fixed-size results or a reduce: write here */
    size_t result_size;      /* bytes at result; 0 for variable-size results */
    void *state;             /* this worker thread's state, from init */
    hpool_span *span;        /* for hpool_task_emit() */
    hpool_emitter *emitter;  /* keyed map-reduce: hpool_emit() pairs here */
    /* The call's argument (hpool_call.argument), the same bytes on every
     * rank: hpool's functools.partial. NULL and 0 when the call has none. */
    const void *argument;
    size_t argument_size;
} hpool_task;

/* A whole chunk of consecutive items, for map functions that loop
 * themselves: one indirect call per chunk instead of per item. */
struct hpool_span {
    uint64_t first;      /* index of the span's first item */
    size_t count;        /* number of items */
    int64_t range_first; /* range sources: the value of the first item */
    const void *items;   /* fixed-size sources: count items, item_size apart */
    size_t item_size;
    void *results;       /* fixed-size results: count × result_size bytes */
    size_t result_size;
    void *accumulator;   /* map_reduce: fold this span's values into it */
    void *state;         /* this worker thread's state, from init */
    void *internal;      /* the framework's; do not touch */
    hpool_emitter *emitter; /* keyed map-reduce: hpool_emit() pairs here */
    const void *argument;   /* the call's argument, as in hpool_task */
    size_t argument_size;
};

/*! Item map function: read task->input, write task->result (or emit), and
 *  return 0, or a non-zero code of yours to mark this item failed. */
typedef int hpool_map_fn(hpool_task *task, void *user);

/*! Span map function: handle span->count items, return 0, or non-zero to
 *  mark every item of the span failed with that code (hpool_span_fail()
 *  marks single items). */
typedef int hpool_span_fn(hpool_span *span, void *user);

/*! Per worker thread state, like Pool's initializer: init runs once on each
 *  worker thread that first runs this function, fini once when the pool
 *  stops. init returns 0, or non-zero to fail every item it was asked for. */
typedef int hpool_init_fn(void **state, void *user);
typedef void hpool_fini_fn(void *state, void *user);

/* One entry of the function table. Give map or span, not both. */
typedef struct hpool_function {
    const char *name;   /* identifies the function across ranks */
    hpool_map_fn *map;
    hpool_span_fn *span;
    hpool_init_fn *init; /* optional */
    hpool_fini_fn *fini; /* optional */
    void *user;          /* passed to every callback above */
    /* Room for later fields: must be zero (designated initialisers, as
     * below, leave them so), else hpool_pool_create fails. */
    void *reserved[4];
} hpool_function;

/* An associative combine with its identity, for hpool_map_reduce(). */
typedef void hpool_combine_fn(void *accumulator, const void *value, void *user);
typedef struct hpool_reducer {
    const char *name;
    size_t value_size;
    const void *identity; /* value_size bytes */
    hpool_combine_fn *combine;
    void *user;
    void *reserved[4]; /* zero, as in hpool_function */
} hpool_reducer;

/* ---- Keyed map-reduce ------------------------------------------------ */

/*! hpool_emit() : emit one (key, value) pair, from a map function of
 *  hpool_map_reduce_keyed() (task->emitter or span->emitter) or from a keyed
 *  reduce function (its out). Keys and values are any bytes, NULs included;
 *  both are copied. @return : 0, HPOOL_ENOMEM, HPOOL_EINVAL (a value of
 *  the wrong size for a combiner, a key or value over 4 GiB, or NULL
 *  emitter outside keyed calls), or
 *  HPOOL_EFAILED (the keyed reducer's merge failed: the chunk fails with
 *  the merge's code).
 *  Threads: only in the map or reduce function that was given the emitter, on
 *  its thread, during that call. */
HPOOL_API int hpool_emit(hpool_emitter *emitter, const void *key, size_t key_size, const void *value, size_t value_size);

/* The values of one key, for a keyed reduce function:
 *
 *      while (hpool_values_next(values, &data, &size) == 0) { use data; }
 */
typedef struct hpool_values hpool_values;
/*! Threads: only in the reduce function that was given values, during that
 *  call. */
HPOOL_API int hpool_values_next(hpool_values *values, const void **data, size_t *size);

/*! hpool_emitter_argument() : the call's argument (hpool_call.argument),
 *  for a keyed map function (task->emitter) or reduce function (its out).
 *  @return : 0 and *data, *size (NULL and 0 without one), or HPOOL_EINVAL
 *  for a NULL emitter.
 *  Threads: only in the function that was given the emitter, during that call. */
HPOOL_API int hpool_emitter_argument(const hpool_emitter *emitter, const void **data, size_t *size);

/*! Reduces one key: reads its values and emits any number of output pairs to
 *  out. Runs once per distinct key, on the rank that owns the key's hash,
 *  on one of its threads: the rank's threads reduce a share of its keys
 *  each, at the same time. Return 0, or non-zero to fail the call (the code
 *  is reported). */
typedef int hpool_keyed_reduce_fn(const void *key, size_t key_size, hpool_values *values,
                                  hpool_emitter *out, void *user);

/* An output pair, as compared and delivered. */
typedef struct hpool_pair {
    const void *key;
    size_t key_size;
    const void *value;
    size_t value_size;
} hpool_pair;

/*! Orders output pairs: negative, 0 or positive like strcmp. Pairs it calls
 *  equal are ordered by key bytes, then value bytes, so the output is the
 *  same for any number of ranks and threads. Called from several threads at
 *  once. */
typedef int hpool_pair_compare_fn(const hpool_pair *a, const hpool_pair *b, void *user);

/*! Takes one rank's share of the output, count pairs sorted by the
 *  comparator, on that rank (rank is its rank in the pool), e.g. to write a
 *  file per rank. Return 0, or non-zero to fail the call with that code. */
typedef int hpool_keyed_write_fn(int rank, const hpool_pair *pairs, size_t count, void *user);

/*! Merges two values of one key, of any sizes, into one: the combiner for
 *  variable-size values (an inverted index merges two sorted lists of file
 *  ids into one). Write the merge into out, which has room for *out_size
 *  bytes (at least a_size + b_size), set *out_size to its size and return
 *  0. If it needs more room, set *out_size to what it needs, write nothing
 *  and return 0: it is called again with that much. Return non-zero to
 *  fail the call with that code. a and b do not overlap out. Like a
 *  combiner it must be associative and commutative (a sorted union is; an
 *  append is not: its order would depend on the ranks and threads), and it
 *  runs on many threads at once. */
typedef int hpool_merge_fn(const void *a, size_t a_size, const void *b, size_t b_size, void *out,
                           size_t *out_size, void *user);

/* One entry of the keyed-reducer table (options.keyed_reducers). */
typedef struct hpool_keyed_reducer {
    const char *name;
    /* Optional combiner: values are value_size bytes, and combine folds one
     * into another for the same key, per chunk and per rank, before any
     * pair travels (a word count sends one count per word per rank). It must
     * be associative and commutative. The accumulator is 8-byte aligned,
     * and so is the value when value_size is at most 256 bytes. For
     * counts give hpool_combine_sum_u64 (below), which costs no call. */
    size_t value_size;
    hpool_combine_fn *combine;
    /* Optional, instead of combine and value_size: merges values of any
     * size, at the same places as a combiner. */
    hpool_merge_fn *merge;
    /* Optional: NULL passes the (combined) pairs through. */
    hpool_keyed_reduce_fn *reduce;
    /* Optional: NULL orders output by key bytes, then value bytes; for
     * counts, most first, give hpool_compare_u64_desc (below). */
    hpool_pair_compare_fn *compare;
    void *user;
    /* Optional: each rank hands its sorted share to write instead of
     * sending it to the root, whose *call->pairs is then empty. The ranks'
     * shares are disjoint by key; each is sorted, not the whole. */
    hpool_keyed_write_fn *write;
    void *reserved[4]; /* zero, as in hpool_function */
} hpool_keyed_reducer;

/*! hpool_combine_sum_u64() : the built-in combiner that adds a uint64_t
 *  value into a uint64_t accumulator (wrapping at 2^64), for counts: give
 *  it as a keyed reducer's combine with value_size 8 (or as a plain
 *  reducer's, with a zero identity). A keyed table recognises it by its
 *  address and adds in place, with no call per pair, so a word count
 *  should use it rather than an equivalent function of its own. Values
 *  are read in host byte order, as any combiner's are; user is unused.
 *  hpool_pool_create fails with HPOOL_EINVAL if it is given with another
 *  value_size.
 *  Threads: any thread, any time (it touches only accumulator). */
HPOOL_API void hpool_combine_sum_u64(void *accumulator, const void *value, void *user);

/*! hpool_compare_u64_desc() : the built-in output order for counts: the
 *  uint64_t value (host byte order), largest first, then the key's bytes
 *  as memcmp orders them, a key that is a prefix of another first. A
 *  value of another size than 8 bytes counts as 0. Give it as a keyed
 *  reducer's compare: the sort recognises it by its address and compares
 *  copies of each value and of the key's first 24 bytes, laid side by
 *  side, instead of calling through a pointer into the pairs, so a word
 *  count should use it rather than an equivalent function of its own;
 *  user is unused.
 *  Threads: any thread, any time (it only reads a and b). */
HPOOL_API int hpool_compare_u64_desc(const hpool_pair *a, const hpool_pair *b, void *user);

/* The sorted output of a keyed map-reduce, on the root. */
typedef struct hpool_pairs hpool_pairs;
/*! Threads: any thread; pairs is read-only until freed. */
HPOOL_API uint64_t hpool_pairs_count(const hpool_pairs *pairs);
/*! @return : 0, or HPOOL_EINVAL if i is out of range. The pointers in *pair
 *  live as long as pairs.
 *  Threads: any thread; pairs is read-only until freed. */
HPOOL_API int hpool_pairs_get(const hpool_pairs *pairs, uint64_t i, hpool_pair *pair);
/*! Threads: once, when no other thread reads pairs. */
HPOOL_API void hpool_pairs_free(hpool_pairs *pairs);

/*! hpool_span_input() : item i (0 ≤ i < span->count) of any source. For a
 *  range source, *data points at a copy of the value that belongs to the
 *  calling thread, valid until its next hpool_span_input().
 *  @return : 0, or HPOOL_EINVAL if i is out of the span.
 *  Threads: only in the span function that was given span, on its thread. */
HPOOL_API int hpool_span_input(const hpool_span *span, size_t i, const void **data, size_t *size);

/*! hpool_span_emit() : append bytes to item i's variable-size result. Items
 *  must be emitted in increasing i; several calls for one i concatenate.
 *  @return : 0, HPOOL_ENOMEM, or HPOOL_EINVAL (no variable-size results, or i
 *  went backwards).
 *  Threads: only in the span function that was given span, on its thread. */
HPOOL_API int hpool_span_emit(hpool_span *span, size_t i, const void *data, size_t size);

/*! hpool_span_fail() : mark item i of the span failed with a non-zero code.
 *  Threads: only in the span function that was given span, on its thread. */
HPOOL_API void hpool_span_fail(hpool_span *span, size_t i, int code);

/*! hpool_task_emit() : append bytes to this item's variable-size result.
 *  Threads: only in the map function that was given task, on its thread. */
HPOOL_API int hpool_task_emit(hpool_task *task, const void *data, size_t size);

/* ======================================================================
 * Sources: what a call maps over. Nothing is shipped that need not be.
 * ====================================================================== */

typedef struct hpool_source hpool_source;

/*! Integers start, start+1, ..., stop-1, generated where they run.
 *  Threads: any thread; a source is read-only once made, so several calls may
 *  use it at once. */
HPOOL_API int hpool_source_range(hpool_source **source, int64_t start, int64_t stop);

/*! count items of item_size bytes each at items. The caller keeps the array
 *  alive and unchanged until the call that uses it completes.
 *  Threads: any thread; as hpool_source_range(). */
HPOOL_API int hpool_source_array(hpool_source **source, const void *items, size_t item_size, uint64_t count);

/*! count variable-size records: record i is sizes[i] bytes at records[i], or
 *  a NUL-terminated string when sizes is NULL (file paths, say). Same
 *  lifetime rule as hpool_source_array(). HPOOL_EINVAL, naming the first,
 *  for a NULL record (NULL is allowed only for a record of 0 bytes).
 *  Threads: any thread; as hpool_source_range(). */
HPOOL_API int hpool_source_records(hpool_source **source, const void *const *records, const size_t *sizes,
                         uint64_t count);

/*! starmap's zipped columns: item i is (columns[0][i], ..., columns[k-1][i]),
 *  column j having elements of sizes[j] bytes. task->args[j] points at each.
 *  Threads: any thread; as hpool_source_range(). */
HPOOL_API int hpool_source_columns(hpool_source **source, size_t column_count, const void *const *columns,
                         const size_t *sizes, uint64_t count);

/*! A lazy producer, for inputs that do not fit in memory: each call sets
 *  *data and *size to the next item (valid until the next call) and returns
 *  0, or returns HPOOL_EOF at the end, or another negative code to stop the
 *  call with that error. It runs on the root, on a pool thread, never on two
 *  threads at once, and only as fast as the window of chunks in flight
 *  allows (backpressure). */
typedef int hpool_produce_fn(const void **data, size_t *size, void *user);
/*! Threads: any thread; a producer source serves one call at a time. */
HPOOL_API int hpool_source_producer(hpool_source **source, hpool_produce_fn *produce, void *user);

/*! Threads: once, after every call that uses the source has completed. */
HPOOL_API void hpool_source_free(hpool_source *source);

/* ======================================================================
 * The pool
 * ====================================================================== */

typedef struct hpool_pool hpool_pool;

typedef struct hpool_options {
    /* sizeof(hpool_options) in the header the caller was built with, set by
     * HPOOL_OPTIONS_INIT: a library newer than the caller takes its
     * defaults for the fields the caller's struct lacks; an older library
     * accepts a newer caller's struct when the fields it does not know are
     * zero, and fails with HPOOL_EINVAL when they are not, rather than
     * ignore a setting. Any other value is HPOOL_EINVAL. */
    size_t struct_size;
    /* Worker threads per rank; 0 takes, first found: HPOOL_THREADS,
     * OMP_NUM_THREADS, SLURM_CPUS_PER_TASK, else this rank's share of the
     * CPUs in its affinity mask: the mask's CPUs divided by the ranks on
     * this node (OMPI_COMM_WORLD_LOCAL_SIZE from mpirun,
     * SLURM_STEP_TASKS_PER_NODE from srun), at least 1. When the launcher
     * bound each rank to its own CPUs (mpirun's default for up to 2 ranks,
     * srun --cpu-bind, mpiexec.mpich -bind-to), the rank keeps its mask, up
     * to the node's CPUs divided by its ranks. HPOOL_THREADS, when set and
     * not empty, must be a positive whole number ("abc", "-3", "0" and "4x"
     * make hpool_pool_create fail with HPOOL_EINVAL, naming it); OpenMP
     * checks OMP_NUM_THREADS itself. At most 4096 threads per rank, and
     * only as many as the system lets start: more, from any source, is
     * HPOOL_ETHREAD on every rank, before OpenMP tries (it would exit). */
    int threads;
    /* The ranks: duplicated, so hpool's messages never mix with yours.
     * MPI_COMM_NULL means MPI_COMM_WORLD, or one rank without MPI when MPI is
     * not initialised and no launcher started the process. */
    MPI_Comm comm;
    int root;                        /* the rank that makes calls */
    const hpool_function *functions; /* copied; the pointers in it must live */
    size_t function_count;           /* as long as the pool */
    const hpool_reducer *reducers;
    size_t reducer_count;
    /* Chunks a call may have cut and not yet delivered (for streams: not
     * yet read), which bounds the memory of streams. 0 picks about 32 MiB
     * of inputs and fixed-size results, and never fewer chunks than four
     * times what all ranks hold (a chunk per thread plus a reserve), so
     * every thread stays busy. A window smaller than the ranks' threads
     * leaves threads idle. */
    size_t window;
    const hpool_keyed_reducer *keyed_reducers; /* for hpool_map_reduce_keyed */
    size_t keyed_reducer_count;
    /* Bytes of pairs a rank holds in memory for a keyed call before it
     * spills them to files; 0 takes HPOOL_MEMORY_BUDGET (MiB, a positive
     * whole number, else HPOOL_EINVAL) or 1 GiB. The reduced output itself
     * is kept in memory: the root delivers it so. */
    size_t memory_budget;
    /* Where spill files go (created and unlinked at once); NULL takes
     * TMPDIR, or /tmp. A spill file that cannot be created, written or
     * read back fails the keyed call with HPOOL_EIO, whose detail names
     * the directory, the cause (e.g. "No such file or directory", "No
     * space left on device") and, with several ranks, the rank. */
    const char *temp_dir;
    /* Pin each worker thread to one CPU: thread i to the i-th CPU of the
     * rank's affinity mask, wrapping around; ranks that share a mask (not
     * bound by their launcher) take consecutive runs of it by their rank on
     * the node. 0 takes HPOOL_BIND (1, true or close: pin; 0, false, no or
     * off: do not; another value is HPOOL_EINVAL); 1 pins; -1 never pins. OpenMP's binding wins: when OMP_PROC_BIND or OMP_PLACES make
     * OpenMP bind the threads to places, hpool leaves them there; and
     * OMP_PROC_BIND=false means no pinning at all. */
    int bind;
    /* What the root prints on stderr about placement. 0 takes
     * HPOOL_PLACEMENT: unset, a warning (once per process) when the worker
     * threads of the ranks on one host outnumber the CPUs in their affinity
     * masks; 1 (HPOOL_PLACEMENT=1) that warning and, at each pool creation,
     * a line per rank: rank -> host -> CPUs, and each thread's CPUs when
     * they are bound; -1 (HPOOL_PLACEMENT=quiet or 0) nothing; another
     * HPOOL_PLACEMENT is HPOOL_EINVAL. Every rank should pass the same
     * value. */
    int placement;
    /* The stall watchdog: the root fails every call with HPOOL_ESTALLED
     * when a rank has not been heard from for this many seconds (its
     * engine thread answers while its workers compute, so a long item is
     * not a stall: a stopped, hung or unreachable rank is), naming the
     * rank, its host and the items it held; hpool_pool_join then stops
     * waiting for it, and a map function that never returns is abandoned
     * after as long (see hpool_pool_free). 0 takes HPOOL_STALL_TIMEOUT
     * (seconds), else 60, and never less than 4; negative: never. Every
     * rank should pass the same value. After HPOOL_ESTALLED, MPI_Finalize
     * would wait for the silent rank as well: end the job with MPI_Abort
     * (the apps do), and mpirun kills what is left of it. */
    double stall_timeout;
    /* A crash report: when a map, span, init, combine or reduce function
     * dies of SIGSEGV, SIGBUS, SIGFPE, SIGILL or SIGABRT, one line on
     * stderr names the rank, host, thread, function and item, e.g.
     *     hpool: rank 1 (node2) thread 3: SIGSEGV in map function "parse" at item 4711
     * and the signal then takes its default action (a core dump; mpirun
     * ends the job). Written with async-signal-safe calls only; a signal
     * elsewhere goes to the handler there was before. 0 takes
     * HPOOL_CRASH_REPORT (0, false, no, off: none; 1, true, yes, on: on;
     * other words: HPOOL_EINVAL), else on; -1 never installs a handler,
     * for programs that have their own; 1 installs it. */
    int crash_report;
    /* Report an item that has run for longer than this many seconds, once,
     * on stderr: rank, host, thread, function and index, to find a stuck
     * map function. 0 takes HPOOL_SLOW_ITEM (seconds), else off; negative:
     * off. */
    double slow_item;
    /* After a first stop (hpool_pool_stop, or a signal set with
     * hpool_pool_stop_on_signal), the items already running may take this
     * many seconds to finish; then the calls end without them, as after a
     * second stop. 0 takes HPOOL_STOP_GRACE (seconds), else 30: below the
     * 120 s of "#SBATCH --signal=B:USR1@120"; negative: no limit. */
    double stop_grace;
    /* A call's journal (hpool_call.journal) is made durable (fdatasync)
     * at least this often, in seconds, from a thread of its own: a crash
     * loses at most this much completed work to the journal. 0 takes
     * HPOOL_JOURNAL_SYNC, else 1. */
    double journal_sync;
    /* A keyed call with a journal checkpoints its ranks' map-side pairs
     * this often, in seconds (and always when stopped): to take one, the
     * root lets every batch out finish before it cuts more, so each costs
     * about one batch's time of idle threads. 0 takes
     * HPOOL_JOURNAL_CHECKPOINT, else 60; negative: only when stopped. */
    double journal_checkpoint;
} hpool_options;

/* Start every hpool_options from this (C and C++):
 *     hpool_options options = HPOOL_OPTIONS_INIT;
 *     options.threads = 4; */
#define HPOOL_OPTIONS_INIT \
    {sizeof(hpool_options), 0, MPI_COMM_NULL, 0, NULL, 0, NULL, 0, 0, NULL, 0, 0, NULL, 0, 0, 0.0, 0, 0.0, 0.0, 0.0, 0.0}

/*! hpool_pool_create() : collective over the ranks. Checks that every rank
 *  runs an hpool that speaks the same protocol (HPOOL_EVERSION, with a line
 *  on stderr naming the versions) and has the same function and reducer
 *  names and root, then starts the worker threads (pinned if asked:
 *  options.bind), or takes those a freed pool of the same size left (see
 *  hpool_pool_free), and gathers each rank's host, CPUs and threads on the
 *  root, which warns on stderr if a host has more worker threads than
 *  CPUs, and prints the placement if asked (options.placement).
 *  Every rank returns the same code: if creation fails on one rank (its
 *  options are invalid, or its threads cannot start), it fails on all of
 *  them, with the lowest of the ranks' codes, and none waits for another.
 *  @return : 0, HPOOL_EINVAL, HPOOL_ENOMEM, HPOOL_EMPI, HPOOL_EMPILEVEL,
 *  HPOOL_ENOMPI, HPOOL_EMISMATCH, HPOOL_EVERSION or HPOOL_ETHREAD; *pool is
 *  NULL on error.
 *  Threads: collective: one thread of every rank of options.comm, in the same
 *  order as the ranks' other collective MPI calls on it. */
HPOOL_API int hpool_pool_create(hpool_pool **pool, const hpool_options *options);

/*! Threads: any thread, while the pool lives. */
HPOOL_API int hpool_pool_is_root(const hpool_pool *pool);
/*! Threads: any thread, while the pool lives. */
HPOOL_API int hpool_pool_rank(const hpool_pool *pool);
/*! Threads: any thread, while the pool lives. */
HPOOL_API int hpool_pool_size(const hpool_pool *pool);    /* number of ranks */
/*! Threads: any thread, while the pool lives. */
HPOOL_API int hpool_pool_threads(const hpool_pool *pool); /* worker threads per rank */

/*! hpool_pool_function() : the index of the function named name.
 *  Threads: any thread, while the pool lives. */
HPOOL_API int hpool_pool_function(const hpool_pool *pool, const char *name, int *index);

/*! hpool_pool_close() : root only; later calls return HPOOL_ECLOSED.
 *  Threads: any thread of the root, while the pool lives. */
HPOOL_API int hpool_pool_close(hpool_pool *pool);

/*! hpool_pool_terminate() : root only; closes, and cancels every item not yet
 *  started: those items fail with HPOOL_ECANCELED (those never cut get no
 *  error_callback, as after a stop). Running items finish.
 *  Blocks until every call of the pool has ended, or, for an item of the
 *  root that still runs the stall timeout after this call (a map
 *  function that never returns), no longer: that item is abandoned, its
 *  call ends with HPOOL_ESTALLED (the detail names the item), and its
 *  thread is left to run: it may still write its own result slot, and
 *  hpool_pool_free then leaves the pool's memory to it, until the
 *  process ends. This is the way out of a stuck map function: terminate,
 *  then free. An item stuck on another rank is given up the same way (the
 *  detail names the rank and its items), and that rank abandons it when
 *  the root ends the pool: its hpool_pool_join returns HPOOL_ESTALLED.
 *  Threads: any thread of the root but the pool's own (HPOOL_EDEADLK there). */
HPOOL_API int hpool_pool_terminate(hpool_pool *pool);

/*! hpool_pool_join() : collective. On the root, closes the pool, waits for
 *  every call to complete and releases the other ranks. On the other ranks,
 *  serves the root's calls until then. Returns the first transport error.
 *  A stream (hpool_imap) whose window is full waits for its reader: one
 *  that nobody reads for the stall timeout after the join began is
 *  cancelled, and join returns HPOOL_EDEADLK naming it (as does the
 *  stream, once its results done before are read), instead of waiting
 *  forever. Read streams to their end, or free them, before joining.
 *  On another rank, an item still running once the root has ended the pool
 *  (it gave the item up, after hpool_pool_terminate, a stop at once or a
 *  stall) is abandoned with its thread, as the root's are, and join
 *  returns HPOOL_ESTALLED naming it, instead of waiting for it.
 *  Threads: one thread per rank, not the pool's own (HPOOL_EDEADLK there); the
 *  root's other threads must have no call of theirs still to start. */
HPOOL_API int hpool_pool_join(hpool_pool *pool);

/*! hpool_pool_free() : joins if not joined yet, then frees. The worker
 *  threads are not ended: they sleep until the next pool of this process
 *  with as many threads on the same CPUs takes them (as OpenMP keeps its
 *  threads from one parallel region to the next, so they keep their
 *  thread-local storage), and end with the process. Like join, it
 *  waits for running items, with one exception: when a wait on a call
 *  timed out (hpool_async_wait, _get, hpool_iter_next), join and free
 *  abandon an item of the root still running the stall timeout after the
 *  join began, as hpool_pool_terminate does (see there), so a map function
 *  that never returns cannot hold the program. After such an abandon, free
 *  returns and leaves the pool's memory to that thread. A rank
 *  silent for the stall timeout is not waited for (HPOOL_ESTALLED). A
 *  pointer that is not a live pool (freed already) is ignored.
 *  Threads: one thread per rank, when no other thread uses the pool or its
 *  handles; does nothing on the pool's own threads. */
HPOOL_API void hpool_pool_free(hpool_pool *pool);

/* ---- Stopping cleanly: a time limit, a preemption, scancel ----------- */

/*! hpool_pool_stop() : asks the pool to stop, as Slurm asks a job with
 *  SIGTERM before its time limit. The first stop drains: no item starts
 *  any more, the items already running finish (for up to
 *  options.stop_grace seconds), every completed result is delivered (the
 *  items that did not run as failed with HPOOL_ECANCELED; items never cut
 *  get no error_callback), each call's journal is synced, and every call
 *  that lost items ends with HPOOL_ESTOPPED, its report counting them as
 *  canceled (a producer's items never read are not counted: report.items
 *  is what was read; a keyed call's pairs are then part of the answer);
 *  later calls fail with HPOOL_ESTOPPED. hpool_pool_terminate() likewise
 *  ends a call whose producer it cut short with HPOOL_ECANCELED. A second stop, or the
 *  grace running out, ends the calls at once: items still running are
 *  abandoned, as after the stall timeout (see hpool_pool_terminate), and
 *  the report counts them as canceled, with the other items of the
 *  batches that never came back (results return a batch at a time, so a
 *  rerun with the journal runs those again; their fixed-size results may
 *  have been written all the same). The other ranks abandon what they
 *  still run when the root's engine ends (their join returns
 *  HPOOL_ESTOPPED, naming the item), and the root's join waits only for
 *  their engines to say so, which takes a poll, not an item: MPI_Finalize
 *  may follow, and the job ends with the exit status you choose. A rank
 *  that does not answer within 5 s (its engine inside a keyed reduce
 *  function) or goes silent makes the root's join return HPOOL_ESTALLED:
 *  end the job with MPI_Abort then, as after any HPOOL_ESTALLED. On a rank
 *  other than the root, the stop is sent to the root, so the signal may
 *  reach any rank, or all of them (srun signals every task: that counts
 *  as one stop).
 *  Async-signal-safe: call it from your own signal handler.
 *  @return : 0, or HPOOL_EINVAL for NULL. A freed pool cannot be told
 *  from a live one here without a lock, which a signal handler may not
 *  take: stop a pool only while it lives (hpool_pool_free() removes the
 *  handlers hpool_pool_stop_on_signal() installed, before it frees).
 *  Threads: any thread, and signal handlers, while the pool lives. */
HPOOL_API int hpool_pool_stop(hpool_pool *pool);

/*! hpool_pool_stop_on_signal() : makes signal (SIGTERM, SIGINT, SIGUSR1,
 *  ...) call hpool_pool_stop() for this pool, with a handler that hpool
 *  installs (sigaction, SA_RESTART) and hpool_pool_free() puts back as it
 *  was. Nothing is installed unless asked. Under mpirun, send SIGUSR1 or
 *  SIGUSR2, which mpirun forwards to every rank; a SIGTERM to mpirun makes
 *  it kill the ranks. Every rank should ask for the same signals. Before
 *  this call (during MPI_Init, say, where mpirun may already forward a
 *  signal) the signal does what it did before, by default kill: to keep
 *  one, catch it first in a handler of your own that records it, and
 *  raise() it after this call; hpool_pool_free() puts that handler back.
 *  @return : 0, or HPOOL_EINVAL (no pool; SIGKILL, SIGSTOP, a signal the
 *  crash report uses, or not a signal).
 *  Threads: the thread that made the pool, before its calls. */
HPOOL_API int hpool_pool_stop_on_signal(hpool_pool *pool, int signal);

/*! hpool_pool_stopped() : 0 while the pool has not been stopped; 1 once
 *  it drains after a first stop; 2 after a second stop, or the grace ran
 *  out. *signal (if not NULL) is the signal that stopped it, or 0 for a
 *  call of hpool_pool_stop(). On the root it also knows of the stops
 *  that reached the other ranks.
 *  Threads: any thread, while the pool lives. */
HPOOL_API int hpool_pool_stopped(const hpool_pool *pool, int *signal);

/* ======================================================================
 * Calls (root only; each returns HPOOL_ENOTROOT elsewhere)
 * ====================================================================== */

/* How a call ended; filled when it completes. */
typedef struct hpool_report {
    uint64_t items;     /* items the call had */
    uint64_t failed;    /* items that failed, cancelled ones included */
    uint64_t canceled;  /* items cancelled by hpool_pool_terminate() */
    uint64_t first_failed_index; /* lowest failed index, if failed > 0 */
    int first_failed_code;       /* its code */
    int status;         /* 0, HPOOL_EFAILED, HPOOL_ECANCELED, or the error */
    uint64_t spilled_bytes; /* keyed calls: pairs written to temporary files */
    /* Room for later fields, written as zero: hpool writes the report, so
     * its size stays the same for every 0.x and 1.x library. */
    uint64_t reserved[6];
} hpool_report;

/*! hpool_report_format() : one line for the report, into buf (always
 *  NUL-terminated, cut to size), exactly one of:
 *      14 items, all succeeded
 *      3 of 14 items failed, the first at index 4 (code 2: the map function reported a failure)
 *      3 of 14 items failed (2 of them canceled), the first at index 4 (code -8: canceled before it ran (hpool_pool_terminate, or its call failed))
 *      14 items, and the call failed: HPOOL_EMPI (MPI call failed)
 *  The code's text is hpool_strerror()'s.
 *  @return : 0, or HPOOL_EINVAL for a NULL report or buf, or size 0.
 *  Threads: any thread. */
HPOOL_API int hpool_report_format(const hpool_report *report, char *buf, size_t size);

/* Variable-size results, in input order. */
typedef struct hpool_records hpool_records;
/*! Threads: any thread; records is read-only until freed. */
HPOOL_API uint64_t hpool_records_count(const hpool_records *records);
/*! @return : 0, or HPOOL_EINVAL if i is out of range. *data lives as long as
 *  records. A failed item has an empty record.
 *  Threads: any thread; records is read-only until freed. */
HPOOL_API int hpool_records_get(const hpool_records *records, uint64_t i, const void **data, size_t *size);
/*! Threads: once, when no other thread reads records. */
HPOOL_API void hpool_records_free(hpool_records *records);

/* Completion callbacks. They run on the root, on a pool thread, one at a
 * time: keep them short and do not wait on the pool from them. */
typedef void hpool_callback_fn(const hpool_report *report, void *user);
typedef void hpool_error_callback_fn(uint64_t index, int code, void *user);
/* Items [first, first + count) are done (succeeded or failed), for a
 * progress display. Same thread rules as the callbacks above. */
typedef void hpool_progress_fn(uint64_t first, uint64_t count, void *user);

/* One call's description. Start from HPOOL_CALL_INIT. */
typedef struct hpool_call {
    /* sizeof(hpool_call) for the caller's header, as in hpool_options. */
    size_t struct_size;
    int function;                 /* index in options.functions */
    const hpool_source *source;   /* must live until the call completes */
    /* Items per chunk, the run of consecutive items one thread runs at a
     * time (a span function gets one chunk per call). Any value works: one
     * larger than the items left gives one chunk of what is left. 0 adapts
     * to the measured cost: one item per chunk until an item has been
     * timed, then about 1 ms of items, never more than Python's
     * ceil(n / (4 × threads of all ranks)), and fewer as the call ends
     * (down to about 50 µs of items). A chunk sized from cheap items may
     * hold slow ones, so an item function's chunk is shared: its thread
     * claims its items a few at a time, fewer as they run out, and the
     * rank's threads with nothing queued claim them too, so that slow
     * items at the end of a chunk run at once, not one after another
     * (not for span functions, variable-size results or a deterministic
     * reduce, whose chunks run whole on one thread). */
    size_t chunksize;
    void *results;     /* fixed-size results, in input order; or NULL */
    size_t result_size;/* bytes per result, at most 1 TiB (HPOOL_EINVAL
                        * above); 0 with imap = variable-size */
    hpool_records **records;      /* variable-size results; or NULL */
    int reducer;                  /* map_reduce: index in options.reducers;
                                     keyed: index in options.keyed_reducers */
    void *reduction;              /* map_reduce: value_size bytes, out */
    /* Run exactly once when the call completes, whatever its outcome. */
    hpool_callback_fn *callback;
    /* Run once per failed item of the items cut into chunks, before
     * callback. Items a stop, a terminate or a cancel left uncut (a range
     * of 2^40, say) are only counted: report.canceled, and first_failed_*
     * when they come first. */
    hpool_error_callback_fn *error_callback;
    void *user;
    hpool_pairs **pairs;          /* keyed: the sorted output, yours to free */
    /* map_reduce: combine in a fixed order, so floating point gives the
     * same bits for any number of ranks and threads and any chunksize. The
     * n items are cut in blocks of B consecutive items,
     *     B = min(4096, max(1, ceil(n / 65536))), or 1024 for a producer;
     * block k's partial is identity combined with the values of items
     * kB, kB+1, ... in order (a span function gets one block per call,
     * and folds it into span->accumulator, which starts at the identity);
     * the result is identity combined with partial 0, then 1, ..., in
     * order. Serially, with combine(acc, value):
     *     result = identity;
     *     for (k = 0; k * B < n; k++) {
     *         partial = identity;
     *         for (i = k * B; i < n && i < (k + 1) * B; i++)
     *             combine(&partial, &value[i]);
     *         combine(&result, &partial);
     *     }
     * A failed item is left out of its block; a block whose span function
     * failed contributes the identity. chunksize is rounded up to whole
     * blocks. */
    int deterministic;
    /* Optional: run as runs of items complete, any number of times. */
    hpool_progress_fn *progress;
    /* Optional: bytes that travel with the call to every rank and reach
     * its map and span functions (task->argument, span->argument) and its
     * keyed reduce function (hpool_emitter_argument()): Python's
     * pool.map(partial(f, n), xs) is call.argument = &n. Copied when the
     * call starts. Not for combiners and merges: they fold values, and a
     * fold that depends on the call is a different reducer. */
    const void *argument;
    size_t argument_size;
    /* Optional: the path of a journal, so that a call stopped by
     * hpool_pool_stop, a time limit or a crash can resume where it
     * stopped, as GNU parallel's --joblog/--resume does. The root reads
     * and writes it; the directory must exist (and, for keyed calls over
     * several nodes, be shared: see below). The call records its completed work there as
     * it goes: appended, checksummed records, synced every
     * options.journal_sync seconds and when the call ends. A later call
     * with the same journal skips that work and delivers its results from
     * the journal, exactly as if it had run: the same results, records,
     * stream order, reduction and pairs, for any number of ranks and
     * threads. Items that failed are journaled with their code and
     * delivered failed again (error_callback included); items canceled or
     * not run are run. A crash at any moment leaves the journal usable: a
     * torn last record is cut off, and a journal whose creation stopped
     * partway (the disk filled; it holds a first part of this call's
     * header and nothing else) is started again. A journal of another call is refused
     * with HPOOL_EJOURNAL, and the detail says what differs: the kind of
     * call, function, reducer, result size, source (kind, count, and for
     * arrays, records and columns their bytes' hash), argument, or
     * journal_key. hpool cannot see what a producer will produce: give
     * journal_key. A journal that cannot be read, written or synced fails
     * the call with HPOOL_EIO naming it.
     * map and imap results and map_reduce partials are journaled per
     * batch, as they reach the root: the journal's size is about the
     * results' size plus some 50 bytes a batch. A keyed call journals
     * checkpoints of its ranks' combined map-side pairs: every
     * options.journal_checkpoint seconds of its map phase, and when
     * stopped (not when it ends: a rerun of a call that completed redoes
     * the map work since its last checkpoint). Each rank writes its own file,
     * JOURNAL.GENERATION.RANK.keyed (so over several nodes the directory
     * must be shared), and a rerun folds them all back in on the root.
     * Delete the journal (and those files) to start again. */
    const char *journal;
    /* Bytes that say what the call's inputs and settings are, beyond what
     * hpool sees (file names, sizes and times, options): a journal written
     * with other bytes is refused. */
    const void *journal_key;
    size_t journal_key_size;
} hpool_call;

/* Start every hpool_call from this (C and C++). */
#define HPOOL_CALL_INIT {sizeof(hpool_call), 0, NULL, 0, NULL, 0, NULL, -1, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, 0, NULL, NULL, 0}

/*! hpool_map() : runs call->function on every item of call->source and
 *  blocks until done. Fixed-size results land in call->results in input
 *  order, and the slot of an item that failed or was cancelled is left as
 *  it was (but for what its map function wrote there before it failed:
 *  on the root it writes into call->results itself); variable-size ones
 *  in a new *call->records (yours to free).
 *  @return : 0; HPOOL_EFAILED if any item failed (report says how many and
 *  the first), every other result still delivered; HPOOL_ECANCELED; or a
 *  usage error: HPOOL_EINVAL (also for a result_size with no results array
 *  to hold the results), HPOOL_ECLOSED, HPOOL_ENOTROOT, HPOOL_EDEADLK; or
 *  HPOOL_ESTALLED when a rank stopped answering (options.stall_timeout)
 *  or an item was abandoned after hpool_pool_terminate.
 *  Threads: any thread of the root but the pool's own: several threads may
 *  make calls on one pool at once, and they run side by side. */
HPOOL_API int hpool_map(hpool_pool *pool, const hpool_call *call, hpool_report *report);

/*! hpool_starmap() : hpool_map() over a columns source.
 *  Threads: as hpool_map(). */
HPOOL_API int hpool_starmap(hpool_pool *pool, const hpool_call *call, hpool_report *report);

/*! hpool_map_reduce() : like hpool_map(), but each item's value (its
 *  result_size is the reducer's value_size; call->result_size must be 0 or
 *  that size, else HPOOL_EINVAL) is combined into
 *  *call->reduction with the reducer: per chunk, per batch, then on the
 *  root. No message is sent per item. Failed items are not combined. The
 *  combine must be associative and commutative, unless call->deterministic
 *  is set, which fixes the order (associativity is still assumed).
 *  Threads: as hpool_map(). */
HPOOL_API int hpool_map_reduce(hpool_pool *pool, const hpool_call *call, hpool_report *report);

/*! hpool_map_reduce_keyed() : MR-MPI's map, collate and reduce in one call.
 *  The map function emits (key, value) pairs; pairs with one key are
 *  combined per chunk and per rank (if the keyed reducer has a combiner),
 *  sent to the rank that owns the key's hash, reduced there key by key, and
 *  sorted; the root merges the ranks' sorted runs into *call->pairs.
 *  @return : as hpool_map(); a failing reduce function or merge fails the
 *  call with HPOOL_EFAILED and its code in the report; a spill file that
 *  cannot be made, written or read back (options.temp_dir) fails it with
 *  HPOOL_EIO, and no memory with HPOOL_ENOMEM, the detail saying where.
 *  Threads: as hpool_map(). */
HPOOL_API int hpool_map_reduce_keyed(hpool_pool *pool, const hpool_call *call, hpool_report *report);

/*! hpool_apply() : one call of function on one input, on some worker.
 *  Threads: as hpool_map(). */
HPOOL_API int hpool_apply(hpool_pool *pool, int function, const void *input, size_t input_size,
                void *result, size_t result_size);

/* ---- Asynchronous calls ---------------------------------------------- */

typedef struct hpool_async hpool_async;

/*! hpool_map_async(), hpool_starmap_async(), hpool_map_reduce_async() : as
 *  the blocking calls, but return at once with a handle. The source, results
 *  and reduction must live until the call completes.
 *  @return : 0 and *async, or a usage error (no callback then).
 *  Threads: any thread of the root, the pool's own included. */
HPOOL_API int hpool_map_async(hpool_pool *pool, const hpool_call *call, hpool_async **async);
/*! Threads: as hpool_map_async(). */
HPOOL_API int hpool_starmap_async(hpool_pool *pool, const hpool_call *call, hpool_async **async);
/*! Threads: as hpool_map_async(). */
HPOOL_API int hpool_map_reduce_async(hpool_pool *pool, const hpool_call *call, hpool_async **async);

/*! hpool_apply_async() : input is copied; result must live until done.
 *  Threads: as hpool_map_async(). */
HPOOL_API int hpool_apply_async(hpool_pool *pool, int function, const void *input, size_t input_size,
                      void *result, size_t result_size, hpool_async **async);

/*! hpool_async_wait() : wait up to timeout seconds (negative: forever).
 *  @return : 0 when done, HPOOL_ETIMEDOUT otherwise.
 *  Threads: any thread but the pool's own (there only timeout 0); several may
 *  wait on one handle. */
HPOOL_API int hpool_async_wait(hpool_async *async, double timeout);
/*! Threads: any thread. */
HPOOL_API int hpool_async_ready(const hpool_async *async);
/*! @return : 1 if done with every item successful, 0 otherwise.
 *  Threads: any thread. */
HPOOL_API int hpool_async_successful(const hpool_async *async);
/*! hpool_async_get() : wait up to timeout seconds, then fill *report.
 *  @return : HPOOL_ETIMEDOUT if not done yet, else the call's status.
 *  Threads: as hpool_async_wait(). */
HPOOL_API int hpool_async_get(hpool_async *async, double timeout, hpool_report *report);
/*! hpool_async_free() : may be called before completion: the call goes on.
 *  Threads: once, when no other thread uses the handle. */
HPOOL_API void hpool_async_free(hpool_async *async);

/* ---- Streams ----------------------------------------------------------- */

typedef struct hpool_iter hpool_iter;

/* One delivered result. data lives until the next hpool_iter_next(). */
typedef struct hpool_result {
    uint64_t index;   /* the item's input index */
    int status;       /* 0, or the item's failure code */
    const void *data; /* its result: result_size bytes, or a record */
    size_t size;
    uint64_t reserved[2]; /* written as zero, as in hpool_report */
} hpool_result;

/*! hpool_imap() : results in input order, each as soon as every earlier one
 *  is done. hpool_imap_unordered() : each as soon as it is done. At most
 *  options.window chunks are in flight, so a producer source runs in bounded
 *  memory as long as the stream is read.
 *  Threads: as hpool_map_async(). */
HPOOL_API int hpool_imap(hpool_pool *pool, const hpool_call *call, hpool_iter **iter);
/*! Threads: as hpool_map_async(). */
HPOOL_API int hpool_imap_unordered(hpool_pool *pool, const hpool_call *call, hpool_iter **iter);

/*! hpool_iter_next() : the next result.
 *
 *      hpool_result r;
 *      while ((rc = hpool_iter_next(iter, &r, -1)) == 0) { use r; }
 *      // rc == HPOOL_EOF at the end, HPOOL_ETIMEDOUT after timeout seconds
 *
 *  @return : 0 for a result (check r.status), HPOOL_EOF at the end,
 *  HPOOL_ETIMEDOUT, or the call's fatal error.
 *  Threads: one thread at a time per stream (a result lives until that
 *  thread's next call); timeout 0 only on the pool's own threads. */
HPOOL_API int hpool_iter_next(hpool_iter *iter, hpool_result *result, double timeout);

/*! hpool_iter_report() : how the stream ended, once hpool_iter_next()
 *  returned HPOOL_EOF. @return : the call's status, as hpool_map().
 *  Threads: any thread. */
HPOOL_API int hpool_iter_report(const hpool_iter *iter, hpool_report *report);

/*! hpool_iter_free() : may be called early: the rest is cancelled, and it
 *  blocks until no thread of any rank can still read the call's source, so
 *  the caller may free the source as soon as it returns.
 *  Threads: once, when no other thread uses the stream; not on the pool's own
 *  threads, where it would wait for itself. */
HPOOL_API void hpool_iter_free(hpool_iter *iter);

#ifdef __cplusplus
}
#endif
#endif /* HPOOL_H */
