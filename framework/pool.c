/* pool.c: a pool's life: creation (agreed by every rank), its accessors, close, join and free. */
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
        unsigned char merges = keyed->merge != NULL; /* ranks must agree on it, as on value sizes */
        hash = hash_bytes(hash, &merges, sizeof merges);
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
        if (keyed->name == NULL || (keyed->combine != NULL && keyed->value_size == 0)
            || (keyed->merge != NULL && (keyed->combine != NULL || keyed->value_size != 0)))
            return HPOOL_EINVAL;
    }
    return 0;
}

/* A batch the team finished: queued for the engine. */
static void on_local_batch_done(hpool__batch *batch, void *argument)
{
    hpool_pool *pool = argument;
    pthread_mutex_lock(&pool->lock);
    HPOOL__QUEUE_PUSH(&pool->local_done, batch);
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

/* Collective: the lowest of every rank's code, so all ranks act alike. A
 * failed collective is HPOOL_EMPI everywhere it failed. */
static int agree_on_code(hpool__transport *transport, int code)
{
    uint64_t lowest, highest;
    /* Codes are small negatives: offset so that the lowest code is the
     * lowest unsigned value. */
    uint64_t mine = (uint64_t)((int64_t)code + ((int64_t)1 << 32));
    if (hpool__transport_agree(transport, mine, &lowest, &highest) != 0)
        return HPOOL_EMPI;
    return (int)((int64_t)lowest - ((int64_t)1 << 32));
}

/* Collective: every rank speaks this protocol, and registered the same
 * tables and root. */
static int agree_on_build(hpool_pool *pool, const hpool_options *options)
{
    uint64_t lowest, highest, version = HPOOL__PROTOCOL_VERSION + hpool__test_fault("protocol_version");
    int rc = hpool__transport_agree(&pool->transport, version, &lowest, &highest);
    if (rc != 0)
        return rc;
    if (lowest != highest) {
        if (pool->transport.rank == 0)
            fprintf(stderr,
                    "hpool: the ranks speak protocol versions %llu to %llu (rank 0: %llu): run one hpool build "
                    "on every rank\n",
                    (unsigned long long)lowest, (unsigned long long)highest, (unsigned long long)version);
        return HPOOL_EVERSION;
    }
    uint64_t root = (uint64_t)(int64_t)options->root;
    rc = hpool__transport_agree(&pool->transport, hash_bytes(hash_tables(options), &root, sizeof root), &lowest,
                                &highest);
    if (rc != 0)
        return rc;
    return lowest == highest ? 0 : HPOOL_EMISMATCH;
}

/* The pool's own copies of the caller's tables. */
static int copy_tables(hpool_pool *pool, const hpool_options *options)
{
    pool->functions = hpool__malloc((options->function_count + 1) * sizeof *pool->functions);
    pool->reducers = hpool__malloc((options->reducer_count + 1) * sizeof *pool->reducers);
    pool->keyed_reducers = hpool__malloc((options->keyed_reducer_count + 1) * sizeof *pool->keyed_reducers);
    if (pool->functions == NULL || pool->reducers == NULL || pool->keyed_reducers == NULL)
        return HPOOL_ENOMEM;
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
    return 0;
}

/* Settings from the options and the environment. */
static int configure(hpool_pool *pool, const hpool_options *options)
{
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
    pool->temp_dir = hpool__strdup(temp_dir && *temp_dir ? temp_dir : "/tmp");
    pool->loads = hpool__calloc((size_t)pool->transport.size, sizeof *pool->loads);
    pool->next_call_id = 1;
    return pool->temp_dir != NULL && pool->loads != NULL ? 0 : HPOOL_ENOMEM;
}

static int init_locks(hpool_pool *pool)
{
    if (pthread_mutex_init(&pool->lock, NULL) != 0 || pthread_mutex_init(&pool->stores_lock, NULL) != 0
        || hpool__cond_init_monotonic(&pool->engine_wake) != 0 || hpool__cond_init_monotonic(&pool->changed) != 0)
        return HPOOL_ETHREAD;
    pool->locks_ready = true;
    return 0;
}

static int start_team(hpool_pool *pool, const hpool_options *options)
{
    hpool__team *team = &pool->team;
    team->thread_count = pool->thread_count;
    team->functions = pool->functions;
    team->function_count = pool->function_count;
    team->reducers = pool->reducers;
    team->reducer_count = pool->reducer_count;
    team->keyed_reducers = pool->keyed_reducers;
    team->owner = pool;
    team->on_batch_done = on_local_batch_done;
    team->on_credit = on_local_credit;
    team->on_batch_done_user = pool;
    team->pin = hpool__resolve_bind(options->bind);
    team->pin_offset = hpool__pin_offset(team->thread_count);
    return hpool__team_start(team);
}

/* The engine thread first waits at this gate: it may touch MPI only once
 * every rank has agreed that creation succeeded. */
static void *gated_engine(void *argument)
{
    hpool_pool *pool = argument;
    hpool__set_thread_owner(pool); /* the callbacks run here */
    pthread_mutex_lock(&pool->lock);
    while (pool->engine_gate == 0)
        pthread_cond_wait(&pool->engine_wake, &pool->lock);
    bool go = pool->engine_gate > 0;
    pthread_mutex_unlock(&pool->lock);
    if (!go)
        return NULL;
    return hpool_pool_is_root(pool) ? hpool__root_engine(pool) : hpool__rank_engine(pool);
}

static void open_engine_gate(hpool_pool *pool, int gate)
{
    pthread_mutex_lock(&pool->lock);
    pool->engine_gate = gate;
    pthread_cond_broadcast(&pool->engine_wake);
    pthread_mutex_unlock(&pool->lock);
}

/* Frees what a failed creation made; the engine, if started, is gated shut. */
static void undo_create(hpool_pool *pool)
{
    if (pool->engine_started) {
        open_engine_gate(pool, -1);
        pthread_join(pool->engine, NULL);
        pool->engine_started = false;
    }
    hpool__team_stop(&pool->team);
    pool->joined = true;
    hpool_pool_free(pool);
}

/* Pools created and not yet freed in this process: hpool_mpi_finalize
 * must not pull MPI from under them. */
static atomic_int live_pools;

int hpool__live_pools(void)
{
    return atomic_load(&live_pools);
}

int hpool_pool_create(hpool_pool **pool_out, const hpool_options *options)
{
    if (pool_out == NULL)
        return HPOOL_EINVAL;
    *pool_out = NULL;
    hpool_options defaults = HPOOL_OPTIONS_INIT;
    if (options == NULL)
        options = &defaults;
    hpool__transport transport;
    int rc = hpool__transport_open(&transport, options->comm);
    if (rc != 0) {
        /* Without a communicator there is no one to tell. */
        hpool__transport_close(&transport);
        return rc;
    }
    /* From here on, a failure on this rank alone reaches every other rank
     * through the agreements, so no rank waits for one that gave up. */
    hpool_pool *pool = hpool__calloc(1, sizeof *pool);
    if (pool == NULL) {
        rc = agree_on_code(&transport, HPOOL_ENOMEM);
        hpool__transport_close(&transport);
        return rc;
    }
    pool->transport = transport;
    rc = check_options(options);
    if (rc == 0 && (options->root < 0 || options->root >= pool->transport.size))
        rc = HPOOL_EINVAL;
    if (rc == 0)
        rc = copy_tables(pool, options);
    if (rc == 0)
        rc = init_locks(pool);
    if (rc == 0)
        rc = configure(pool, options);
    rc = agree_on_code(&pool->transport, rc);
    if (rc == 0)
        rc = agree_on_build(pool, options);
    if (rc != 0) {
        undo_create(pool);
        return rc;
    }
    rc = start_team(pool, options);
    /* Collective, so every rank reports even if its team failed to start;
     * before the engine runs, since MPI may be only SERIALIZED. */
    int placement_rc = hpool__placement_report(pool, options->placement);
    if (rc == 0)
        rc = placement_rc;
    if (rc == 0) {
        if (pthread_create(&pool->engine, NULL, gated_engine, pool) != 0)
            rc = HPOOL_ETHREAD;
        else
            pool->engine_started = true;
    }
    rc = agree_on_code(&pool->transport, rc);
    if (rc != 0) {
        undo_create(pool);
        return rc;
    }
    open_engine_gate(pool, 1);
    atomic_fetch_add(&live_pools, 1); /* until hpool_pool_free: the pools whose gate opened */
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
    if (hpool__thread_owned_by(pool))
        return HPOOL_EDEADLK;
    if (!hpool_pool_is_root(pool))
        return HPOOL_ENOTROOT;
    pthread_mutex_lock(&pool->lock);
    pool->closed = true;
    for (hpool__call_state *call = pool->calls.head; call != NULL; call = call->next)
        hpool__cancel_call(pool, call);
    while (pool->calls.head != NULL && pool->engine_started)
        pthread_cond_wait(&pool->changed, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

int hpool_pool_join(hpool_pool *pool)
{
    if (pool == NULL)
        return HPOOL_EINVAL;
    if (hpool__thread_owned_by(pool))
        return HPOOL_EDEADLK;
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
    while (pool->local_done.head != NULL) {
        hpool__batch *batch;
        HPOOL__QUEUE_POP(&pool->local_done, batch);
        hpool__batch_free(batch);
    }
    int error = pool->error;
    pthread_mutex_unlock(&pool->lock);
    return error;
}

void hpool_pool_free(hpool_pool *pool)
{
    if (pool == NULL)
        return;
    /* From a map function or callback of this pool it would wait for
     * itself: documented to do nothing there. */
    if (hpool__thread_owned_by(pool))
        return;
    if (!pool->joined)
        hpool_pool_join(pool);
    hpool__transport_close(&pool->transport);
    if (pool->locks_ready) {
        pthread_cond_destroy(&pool->changed);
        pthread_cond_destroy(&pool->engine_wake);
        pthread_mutex_destroy(&pool->lock);
        pthread_mutex_destroy(&pool->stores_lock);
    }
    hpool__keyed_free_all(pool); /* what a failed exchange left */
    free(pool->temp_dir);
    free(pool->loads);
    free(pool->functions);
    free(pool->reducers);
    free(pool->keyed_reducers);
    if (pool->engine_gate > 0)
        atomic_fetch_sub(&live_pools, 1);
    free(pool);
}
