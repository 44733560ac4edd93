/* pool.c: a pool's creation, join and end, and the engine of the ranks that serve the root. */
#define _POSIX_C_SOURCE 200809L /* strdup, pthread_condattr_setclock */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a over every name and value size, so ranks can compare their tables. */
static uint64_t hash_bytes(uint64_t hash, const void *data, size_t size)
{
    const unsigned char *bytes = data;
    for (size_t i = 0; i < size; i++)
        hash = (hash ^ bytes[i]) * 1099511628211u;
    return hash;
}

static uint64_t hash_tables(const hpool_options *options)
{
    uint64_t hash = 14695981039346656037u;
    for (size_t f = 0; f < options->function_count; f++)
        hash = hash_bytes(hash, options->functions[f].name, strlen(options->functions[f].name) + 1);
    hash = hash_bytes(hash, "|", 1);
    for (size_t r = 0; r < options->reducer_count; r++) {
        hash = hash_bytes(hash, options->reducers[r].name, strlen(options->reducers[r].name) + 1);
        uint64_t size = options->reducers[r].value_size;
        hash = hash_bytes(hash, &size, sizeof size);
    }
    hash = hash_bytes(hash, "|", 1);
    for (size_t k = 0; k < options->keyed_reducer_count; k++) {
        const hpool_keyed_reducer *keyed = &options->keyed_reducers[k];
        hash = hash_bytes(hash, keyed->name, strlen(keyed->name) + 1);
        uint64_t size = keyed->combine ? keyed->value_size : 0;
        hash = hash_bytes(hash, &size, sizeof size);
    }
    return hash;
}

static int check_options(const hpool_options *options)
{
    if (options->threads < 0 || (options->functions == NULL && options->function_count > 0)
        || (options->reducers == NULL && options->reducer_count > 0)
        || (options->keyed_reducers == NULL && options->keyed_reducer_count > 0) || options->function_count > INT32_MAX
        || options->reducer_count > INT32_MAX)
        return HPOOL_EINVAL;
    for (size_t f = 0; f < options->function_count; f++) {
        const hpool_function *function = &options->functions[f];
        if (function->name == NULL || (function->map == NULL) == (function->span == NULL))
            return HPOOL_EINVAL;
    }
    for (size_t r = 0; r < options->reducer_count; r++) {
        const hpool_reducer *reducer = &options->reducers[r];
        if (reducer->name == NULL || reducer->value_size == 0 || reducer->identity == NULL
            || reducer->combine == NULL)
            return HPOOL_EINVAL;
    }
    for (size_t k = 0; k < options->keyed_reducer_count; k++) {
        const hpool_keyed_reducer *keyed = &options->keyed_reducers[k];
        if (keyed->name == NULL || (keyed->combine != NULL && keyed->value_size == 0))
            return HPOOL_EINVAL;
    }
    return 0;
}

void hpool__on_local_batch_done(hpool__batch *batch, void *argument)
{
    hpool_pool *pool = argument;
    pthread_mutex_lock(&pool->lock);
    batch->next = NULL;
    if (pool->local_done_tail)
        pool->local_done_tail->next = batch;
    else
        pool->local_done_head = batch;
    pool->local_done_tail = batch;
    pool->engine_has_news = true;
    pthread_cond_signal(&pool->engine_wake);
    pthread_mutex_unlock(&pool->lock);
}

/* The team holds too few chunks: the engine tells the root (or, on the
 * root, tops the team up). */
static void on_local_credit(void *argument)
{
    hpool_pool *pool = argument;
    pthread_mutex_lock(&pool->lock);
    pool->engine_has_news = true;
    pthread_cond_signal(&pool->engine_wake);
    pthread_mutex_unlock(&pool->lock);
}

int hpool_pool_create(hpool_pool **pool_out, const hpool_options *options)
{
    if (pool_out == NULL)
        return HPOOL_EINVAL;
    *pool_out = NULL;
    hpool_options defaults = HPOOL_OPTIONS_INIT;
    if (options == NULL)
        options = &defaults;
    int rc = check_options(options);
    if (rc != 0)
        return rc;
    hpool_pool *pool = calloc(1, sizeof *pool);
    if (pool == NULL)
        return HPOOL_ENOMEM;
    pool->functions = malloc((options->function_count + 1) * sizeof *pool->functions);
    pool->reducers = malloc((options->reducer_count + 1) * sizeof *pool->reducers);
    pool->keyed_reducers = malloc((options->keyed_reducer_count + 1) * sizeof *pool->keyed_reducers);
    if (pool->functions == NULL || pool->reducers == NULL || pool->keyed_reducers == NULL) {
        free(pool->functions);
        free(pool->reducers);
        free(pool->keyed_reducers);
        free(pool);
        return HPOOL_ENOMEM;
    }
    if (options->function_count)
        memcpy(pool->functions, options->functions, options->function_count * sizeof *pool->functions);
    if (options->reducer_count)
        memcpy(pool->reducers, options->reducers, options->reducer_count * sizeof *pool->reducers);
    if (options->keyed_reducer_count)
        memcpy(pool->keyed_reducers, options->keyed_reducers,
               options->keyed_reducer_count * sizeof *pool->keyed_reducers);
    pool->function_count = options->function_count;
    pool->reducer_count = options->reducer_count;
    pool->keyed_reducer_count = options->keyed_reducer_count;

    rc = hpool__transport_open(&pool->transport, options->comm);
    if (rc == 0)
        rc = hpool__transport_check_names(&pool->transport, hash_tables(options));
    if (rc == 0 && (options->root < 0 || options->root >= pool->transport.size))
        rc = HPOOL_EINVAL;
    pool->loads = calloc((size_t)pool->transport.size, sizeof *pool->loads);
    if (rc == 0 && pool->loads == NULL)
        rc = HPOOL_ENOMEM;
    if (rc != 0) {
        hpool__transport_close(&pool->transport);
        free(pool->loads);
        free(pool->functions);
        free(pool->reducers);
        free(pool->keyed_reducers);
        free(pool);
        return rc;
    }
    pool->root = options->root;
    hpool__team_rank_cpus(&pool->team.cpus);
    pool->thread_count = hpool__resolve_threads(options->threads, &pool->team.cpus);
    pool->window = options->window;
    pool->memory_budget = options->memory_budget;
    if (pool->memory_budget == 0) {
        const char *mib = getenv("HPOOL_MEMORY_BUDGET");
        long long value = mib ? atoll(mib) : 0;
        pool->memory_budget = value > 0 ? (size_t)value << 20 : (size_t)1 << 30;
    }
    const char *temp_dir = options->temp_dir ? options->temp_dir : getenv("TMPDIR");
    pool->temp_dir = strdup(temp_dir && *temp_dir ? temp_dir : "/tmp");
    pool->next_call_id = 1;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_mutex_init(&pool->stores_lock, NULL);
    pthread_condattr_t monotonic;
    pthread_condattr_init(&monotonic);
    pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
    pthread_cond_init(&pool->engine_wake, &monotonic);
    pthread_condattr_destroy(&monotonic);
    pthread_cond_init(&pool->changed, NULL);

    hpool__team *team = &pool->team;
    team->thread_count = pool->thread_count;
    team->functions = pool->functions;
    team->function_count = pool->function_count;
    team->reducers = pool->reducers;
    team->reducer_count = pool->reducer_count;
    team->keyed_reducers = pool->keyed_reducers;
    team->on_batch_done = hpool__on_local_batch_done;
    team->on_credit = on_local_credit;
    team->on_batch_done_user = pool;
    team->pin = hpool__resolve_bind(options->bind);
    team->pin_offset = hpool__pin_offset(team->thread_count);
    rc = hpool__team_start(team);
    /* Collective, so every rank reports even if its team failed to start;
     * before the engine starts, since MPI may be only SERIALIZED. */
    int placement_rc = hpool__placement_report(pool, options->placement);
    if (rc == 0)
        rc = placement_rc;
    if (rc == 0) {
        void *(*engine)(void *) = hpool_pool_is_root(pool) ? hpool__root_engine : hpool__worker_engine;
        if (pthread_create(&pool->engine, NULL, engine, pool) != 0)
            rc = HPOOL_ETHREAD;
        else
            pool->engine_started = true;
    }
    if (rc != 0) {
        /* Collective creation failed on this rank only; the others will
         * see their messages go unanswered, which is the best MPI allows. */
        hpool__team_stop(&pool->team);
        pool->joined = true;
        hpool_pool_free(pool);
        return rc;
    }
    *pool_out = pool;
    return 0;
}

int hpool_pool_is_root(const hpool_pool *pool)
{
    return pool != NULL && pool->transport.rank == pool->root;
}

int hpool_pool_rank(const hpool_pool *pool)
{
    return pool ? pool->transport.rank : 0;
}

int hpool_pool_size(const hpool_pool *pool)
{
    return pool ? pool->transport.size : 0;
}

int hpool_pool_threads(const hpool_pool *pool)
{
    return pool ? pool->thread_count : 0;
}

int hpool_pool_function(const hpool_pool *pool, const char *name, int *index)
{
    if (pool == NULL || name == NULL || index == NULL)
        return HPOOL_EINVAL;
    for (size_t f = 0; f < pool->function_count; f++)
        if (strcmp(pool->functions[f].name, name) == 0) {
            *index = (int)f;
            return 0;
        }
    return HPOOL_EINVAL;
}

int hpool_pool_close(hpool_pool *pool)
{
    if (pool == NULL)
        return HPOOL_EINVAL;
    if (!hpool_pool_is_root(pool))
        return HPOOL_ENOTROOT;
    pthread_mutex_lock(&pool->lock);
    pool->closed = true;
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

int hpool_pool_terminate(hpool_pool *pool)
{
    if (pool == NULL)
        return HPOOL_EINVAL;
    if (!hpool_pool_is_root(pool))
        return HPOOL_ENOTROOT;
    pthread_mutex_lock(&pool->lock);
    pool->closed = true;
    for (hpool__call *call = pool->calls; call != NULL; call = call->next)
        hpool__cancel_call(pool, call);
    while (pool->calls != NULL && pool->engine_started)
        pthread_cond_wait(&pool->changed, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

int hpool_pool_join(hpool_pool *pool)
{
    if (pool == NULL)
        return HPOOL_EINVAL;
    pthread_mutex_lock(&pool->lock);
    if (pool->joined) {
        int error = pool->error;
        pthread_mutex_unlock(&pool->lock);
        return error;
    }
    pool->closed = true;
    pool->joining = true;
    pool->engine_has_news = true;
    pthread_cond_signal(&pool->engine_wake);
    pthread_mutex_unlock(&pool->lock);
    if (pool->engine_started)
        pthread_join(pool->engine, NULL);
    pool->engine_started = false;
    hpool__team_stop(&pool->team);
    pthread_mutex_lock(&pool->lock);
    pool->joined = true;
    /* Anything the team finished after the engine left (only on error). */
    while (pool->local_done_head != NULL) {
        hpool__batch *batch = pool->local_done_head;
        pool->local_done_head = batch->next;
        hpool__batch_free(batch);
    }
    pool->local_done_tail = NULL;
    int error = pool->error;
    pthread_mutex_unlock(&pool->lock);
    return error;
}

void hpool_pool_free(hpool_pool *pool)
{
    if (pool == NULL)
        return;
    if (!pool->joined)
        hpool_pool_join(pool);
    hpool__transport_close(&pool->transport);
    pthread_cond_destroy(&pool->changed);
    pthread_cond_destroy(&pool->engine_wake);
    pthread_mutex_destroy(&pool->lock);
    while (pool->keyed_stores != NULL) { /* left by a failed exchange */
        hpool__keyed_store *store = pool->keyed_stores;
        pool->keyed_stores = store->next;
        hpool__keyed_store_free(store);
    }
    pthread_mutex_destroy(&pool->stores_lock);
    free(pool->temp_dir);
    free(pool->loads);
    free(pool->functions);
    free(pool->reducers);
    free(pool->keyed_reducers);
    free(pool);
}

/* ---- The engine of a rank that serves the root ---------------------- */

/* Checks a batch from the root against this rank's tables. */
static bool batch_fits_tables(const hpool_pool *pool, const hpool__batch *batch)
{
    if (batch->function < 0 || (size_t)batch->function >= pool->function_count)
        return false;
    if (batch->mode == HPOOL__REDUCE)
        return batch->reducer >= 0 && (size_t)batch->reducer < pool->reducer_count
               && pool->reducers[batch->reducer].value_size == batch->result_size;
    if (batch->mode == HPOOL__KEYED)
        return batch->reducer >= 0 && (size_t)batch->reducer < pool->keyed_reducer_count;
    return batch->mode >= HPOOL__NO_RESULT && batch->mode <= HPOOL__RECORD_RESULT;
}

/* Handles one message from the root; sets *stop on STOP. */
static int serve_message(hpool_pool *pool, hpool__message *message, bool *stop)
{
    switch (message->type) {
    case HPOOL__MSG_BATCH: {
        hpool__batch *batch = NULL;
        int rc = hpool__batch_decode(message->data, message->size, &batch);
        if (rc != 0) {
            free(message->data);
            return rc;
        }
        if (!batch_fits_tables(pool, batch)) {
            hpool__batch_free(batch);
            return HPOOL_EPEER;
        }
        if (batch->mode == HPOOL__KEYED
            && (batch->store = hpool__keyed_store_get(pool, batch->call_id, batch->reducer)) == NULL) {
            hpool__batch_free(batch);
            return HPOOL_ENOMEM;
        }
        hpool__team_submit(&pool->team, batch);
        return 0;
    }
    case HPOOL__MSG_CANCEL: {
        uint32_t call_id = 0;
        if (message->size == sizeof call_id)
            memcpy(&call_id, message->data, sizeof call_id);
        free(message->data);
        hpool__team_cancel(&pool->team, call_id);
        return 0;
    }
    case HPOOL__MSG_STOP:
        free(message->data);
        *stop = true;
        return 0;
    case HPOOL__MSG_SHUFFLE: {
        uint32_t ids[2] = {0, 0}; /* call id, keyed reducer */
        if (message->size == sizeof ids)
            memcpy(ids, message->data, sizeof ids);
        free(message->data);
        if (ids[1] >= pool->keyed_reducer_count)
            return HPOOL_EPEER;
        return hpool__shuffle_start(pool, ids[0], (int)ids[1]);
    }
    case HPOOL__MSG_PAIRS:
        return hpool__shuffle_receive(pool, message);
    default:
        free(message->data);
        return HPOOL_EPEER;
    }
}

/* Waits for news, or a little while when MPI has to be polled. MPI has no
 * wait that also wakes on a condition, and spinning would take a core from
 * the workers, so an engine polls with a wait that doubles while nothing
 * happens, between bounds its caller sets by how soon a message could
 * matter (see hpool__engine_wait), and only after some 50 ms of
 * nothing at all, when no call is under way, further, up to 4 ms. Every
 * empty poll is time taken from a worker on the same core, and on a VM a
 * wake-up costs some 15 µs: 2 ranks x 1 spinning thread on 2 cores ran at
 * 0.935 of the bound with every engine polling from 16 to 256 µs. */
#define POLL_FIRST_NS 16000u
#define POLL_IDLE_ROUNDS 200
#define POLL_IDLE_SHIFT 8 /* 16 µs << 8 = 4 ms */
static uint64_t poll_wait_ns(unsigned idle_rounds, hpool__poll poll)
{
    unsigned shift = poll.first_shift + idle_rounds;
    if (shift > poll.busy_shift)
        shift = poll.busy_shift;
    if (idle_rounds > POLL_IDLE_ROUNDS) {
        unsigned beyond = idle_rounds - POLL_IDLE_ROUNDS;
        shift = poll.busy_shift + beyond < POLL_IDLE_SHIFT ? poll.busy_shift + beyond : POLL_IDLE_SHIFT;
    }
    return (uint64_t)POLL_FIRST_NS << shift;
}

void hpool__engine_wait(hpool_pool *pool, bool polling, unsigned *idle_rounds, hpool__poll poll)
{
    if (pool->engine_has_news) {
        pool->engine_has_news = false;
        *idle_rounds = 0;
        return;
    }
    if (!polling) {
        while (!pool->engine_has_news)
            pthread_cond_wait(&pool->engine_wake, &pool->lock);
    } else {
        /* engine_wake waits on CLOCK_MONOTONIC: a step of the wall clock
         * must not stretch a poll. */
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        uint64_t at = (uint64_t)deadline.tv_nsec + poll_wait_ns(*idle_rounds, poll);
        deadline.tv_sec += (time_t)(at / 1000000000u);
        deadline.tv_nsec = (long)(at % 1000000000u);
        if (!pool->engine_has_news)
            pthread_cond_timedwait(&pool->engine_wake, &pool->lock, &deadline);
        if (*idle_rounds < UINT32_MAX)
            (*idle_rounds)++;
    }
    pool->engine_has_news = false;
}

/* Tells the root that this rank's engine stopped, and why, so that it fails
 * the calls instead of waiting for results that will not come. */
static void report_engine_error(hpool_pool *pool, int code)
{
    int32_t *message = malloc(sizeof *message);
    if (message == NULL)
        return;
    *message = code;
    if (hpool__transport_send(&pool->transport, pool->root, HPOOL__MSG_ERROR, message, sizeof *message) == 0)
        hpool__transport_flush(&pool->transport);
}

void *hpool__worker_engine(void *argument)
{
    hpool_pool *pool = argument;
    hpool__prepare_engine_thread();
    hpool__transport *transport = &pool->transport;
    bool stop = false;
    unsigned idle_rounds = 0;
    uint64_t completed_reported = 0; /* the count the root last heard */
    int rc = 0;
    while (!stop && rc == 0) {
        bool busy = false;
        hpool__message message;
        int received;
        while (rc == 0 && !stop && (received = hpool__transport_receive(transport, &message)) != 0) {
            if (received < 0) {
                rc = received;
                break;
            }
            rc = serve_message(pool, &message, &stop);
            busy = true;
        }
        pthread_mutex_lock(&pool->lock);
        hpool__batch *done = pool->local_done_head;
        pool->local_done_head = pool->local_done_tail = NULL;
        pthread_mutex_unlock(&pool->lock);
        /* Read before the results are encoded: each carries it. */
        bool short_of_chunks;
        uint64_t completed = hpool__team_take_credit(&pool->team, &short_of_chunks);
        while (done != NULL) {
            hpool__batch *next = done->next;
            void *buffer;
            size_t size;
            if (rc == 0)
                rc = hpool__result_encode(done, completed, &buffer, &size);
            if (rc == 0)
                rc = hpool__transport_send(transport, pool->root, HPOOL__MSG_RESULT, buffer, size);
            if (rc == 0)
                completed_reported = completed;
            hpool__batch_free(done);
            done = next;
            busy = true;
        }
        if (rc == 0 && short_of_chunks && completed > completed_reported) {
            uint64_t *credit = malloc(sizeof *credit);
            rc = credit == NULL ? HPOOL_ENOMEM : 0;
            if (rc == 0) {
                *credit = completed;
                rc = hpool__transport_send(transport, pool->root, HPOOL__MSG_CREDIT, credit, sizeof *credit);
            }
            if (rc == 0)
                completed_reported = completed;
            busy = true;
        }
        if (rc == 0)
            rc = hpool__transport_progress(transport);
        if (rc == 0)
            rc = hpool__shuffle_progress(pool, &busy);
        /* A batch comes only when this rank is short of chunks (the root
         * sends no sooner): while its team holds enough, polls may be far
         * apart; once it is short, they are close, for the reply. */
        hpool__poll poll = hpool__team_is_short(&pool->team) ? HPOOL__POLL_SHORT : HPOOL__POLL_FULL;
        pthread_mutex_lock(&pool->lock);
        if (busy)
            idle_rounds = 0;
        if (!stop && rc == 0)
            hpool__engine_wait(pool, true, &idle_rounds, poll);
        pthread_mutex_unlock(&pool->lock);
    }
    if (rc != 0)
        report_engine_error(pool, rc);
    else
        rc = hpool__transport_flush(transport);
    pthread_mutex_lock(&pool->lock);
    if (pool->error == 0)
        pool->error = rc;
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}
