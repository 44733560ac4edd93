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

static bool reserved_are_zero(void *const reserved[4])
{
    return reserved[0] == NULL && reserved[1] == NULL && reserved[2] == NULL && reserved[3] == NULL;
}

static int check_options(const hpool_options *options)
{
    if (options->threads < 0)
        return hpool__fail(HPOOL_EINVAL, "options.threads is %d: give 0 (automatic) or a count of threads",
                           options->threads);
    if ((options->functions == NULL && options->function_count > 0) || options->function_count > INT32_MAX)
        return hpool__fail(HPOOL_EINVAL, "options.functions is NULL or options.function_count (%zu) is too large",
                           options->function_count);
    if ((options->reducers == NULL && options->reducer_count > 0) || options->reducer_count > INT32_MAX)
        return hpool__fail(HPOOL_EINVAL, "options.reducers is NULL or options.reducer_count (%zu) is too large",
                           options->reducer_count);
    if ((options->keyed_reducers == NULL && options->keyed_reducer_count > 0)
        || options->keyed_reducer_count > INT32_MAX)
        return hpool__fail(HPOOL_EINVAL,
                           "options.keyed_reducers is NULL or options.keyed_reducer_count (%zu) is too large",
                           options->keyed_reducer_count);
    for (size_t f = 0; f < options->function_count; f++) {
        const hpool_function *function = &options->functions[f];
        if (function->name == NULL)
            return hpool__fail(HPOOL_EINVAL, "options.functions[%zu].name is NULL: every function needs a name", f);
        if ((function->map == NULL) == (function->span == NULL))
            return hpool__fail(HPOOL_EINVAL, "function \"%s\" (options.functions[%zu]) has %s: give map or span",
                               function->name, f, function->map == NULL ? "neither map nor span" : "both map and span");
        if (!reserved_are_zero(function->reserved))
            return hpool__fail(HPOOL_EINVAL,
                               "function \"%s\" (options.functions[%zu]) has non-zero reserved fields: initialise "
                               "entries with designated initialisers, which zero the rest",
                               function->name, f);
    }
    for (size_t r = 0; r < options->reducer_count; r++) {
        const hpool_reducer *reducer = &options->reducers[r];
        if (reducer->name == NULL)
            return hpool__fail(HPOOL_EINVAL, "options.reducers[%zu].name is NULL", r);
        if (reducer->value_size == 0 || reducer->identity == NULL || reducer->combine == NULL)
            return hpool__fail(HPOOL_EINVAL, "reducer \"%s\" (options.reducers[%zu]) needs %s", reducer->name, r,
                               reducer->value_size == 0 ? "a value_size above 0"
                               : reducer->identity == NULL ? "an identity"
                                                           : "a combine function");
        if (reducer->combine == hpool_combine_sum_u64 && reducer->value_size != sizeof(uint64_t))
            return hpool__fail(HPOOL_EINVAL,
                               "reducer \"%s\" (options.reducers[%zu]) has hpool_combine_sum_u64 and value_size %zu: "
                               "it adds 8-byte values",
                               reducer->name, r, reducer->value_size);
        if (!reserved_are_zero(reducer->reserved))
            return hpool__fail(HPOOL_EINVAL, "reducer \"%s\" (options.reducers[%zu]) has non-zero reserved fields",
                               reducer->name, r);
    }
    for (size_t k = 0; k < options->keyed_reducer_count; k++) {
        const hpool_keyed_reducer *keyed = &options->keyed_reducers[k];
        if (keyed->name == NULL)
            return hpool__fail(HPOOL_EINVAL, "options.keyed_reducers[%zu].name is NULL", k);
        if (keyed->combine != NULL && keyed->value_size == 0)
            return hpool__fail(HPOOL_EINVAL,
                               "keyed reducer \"%s\" (options.keyed_reducers[%zu]) has a combine but value_size 0: "
                               "give the values' size, or a merge for values of any size",
                               keyed->name, k);
        if (keyed->combine == hpool_combine_sum_u64 && keyed->value_size != sizeof(uint64_t))
            return hpool__fail(HPOOL_EINVAL,
                               "keyed reducer \"%s\" (options.keyed_reducers[%zu]) has hpool_combine_sum_u64 and "
                               "value_size %zu: it adds 8-byte values",
                               keyed->name, k, keyed->value_size);
        if (keyed->merge != NULL && (keyed->combine != NULL || keyed->value_size != 0))
            return hpool__fail(HPOOL_EINVAL,
                               "keyed reducer \"%s\" (options.keyed_reducers[%zu]) has a merge and %s: a merge "
                               "takes values of any size, instead of a combine and its value_size",
                               keyed->name, k, keyed->combine != NULL ? "a combine" : "a value_size");
        if (!reserved_are_zero(keyed->reserved))
            return hpool__fail(HPOOL_EINVAL,
                               "keyed reducer \"%s\" (options.keyed_reducers[%zu]) has non-zero reserved fields",
                               keyed->name, k);
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

/* Collective: the lowest of every rank's code, so all ranks act alike; a
 * rank that did not fail itself gets a detail naming the lowest rank that
 * did (whose own detail says why). A failed collective is HPOOL_EMPI
 * everywhere it failed. */
static int agree_on_code(hpool__transport *transport, int code, const char *stage)
{
    uint64_t lowest, highest;
    /* The code in the high half, offset so the lowest code is the lowest
     * unsigned value, and the rank in the low half: the minimum names the
     * lowest code and the lowest rank that had it. */
    uint64_t mine = (uint64_t)((int64_t)code + ((int64_t)1 << 31)) << 32 | (uint32_t)transport->rank;
    if (hpool__transport_agree(transport, mine, &lowest, &highest) != 0)
        return hpool__fail(HPOOL_EMPI, "the ranks could not agree on whether %s succeeded: MPI_Allreduce failed",
                           stage);
    int agreed = (int)((int64_t)(lowest >> 32) - ((int64_t)1 << 31));
    int failed_rank = (int)(uint32_t)lowest;
    if (agreed != 0 && agreed != code)
        return hpool__fail(agreed, "rank %d failed %s with %s (%s); its hpool_error_detail() says why", failed_rank,
                           stage, hpool_err_name(agreed), hpool_strerror(agreed));
    return agreed;
}

/* What a rank registered, one entry per line, for naming the first
 * difference between two ranks' tables. */
static int describe_tables(const hpool_options *options, hpool__buffer *out)
{
    char line[600];
    int rc = 0;
    for (size_t f = 0; f < options->function_count && rc == 0; f++) {
        snprintf(line, sizeof line, "function %zu \"%s\"\n", f, options->functions[f].name);
        rc = hpool__buffer_append(out, line, strlen(line));
    }
    for (size_t r = 0; r < options->reducer_count && rc == 0; r++) {
        snprintf(line, sizeof line, "reducer %zu \"%s\" of %zu bytes\n", r, options->reducers[r].name,
                 options->reducers[r].value_size);
        rc = hpool__buffer_append(out, line, strlen(line));
    }
    for (size_t k = 0; k < options->keyed_reducer_count && rc == 0; k++) {
        const hpool_keyed_reducer *keyed = &options->keyed_reducers[k];
        snprintf(line, sizeof line, "keyed reducer %zu \"%s\" with %s\n", k, keyed->name,
                 keyed->combine ? "a combiner" : keyed->merge ? "a merge" : "no combiner");
        rc = hpool__buffer_append(out, line, strlen(line));
    }
    if (rc == 0) {
        snprintf(line, sizeof line, "root %d\n", options->root);
        rc = hpool__buffer_append(out, line, strlen(line));
    }
    return rc == 0 ? 0 : HPOOL_ENOMEM;
}

/* The first line where two descriptions differ, or "nothing" past one's end. */
static void first_difference(const char *a, size_t a_size, const char *b, size_t b_size, char *a_line, char *b_line,
                             size_t line_size)
{
    size_t at_a = 0, at_b = 0;
    for (;;) {
        size_t end_a = at_a, end_b = at_b;
        while (end_a < a_size && a[end_a] != '\n')
            end_a++;
        while (end_b < b_size && b[end_b] != '\n')
            end_b++;
        bool same = end_a - at_a == end_b - at_b && memcmp(a + at_a, b + at_b, end_a - at_a) == 0;
        if (!same || (at_a >= a_size && at_b >= b_size)) {
            snprintf(a_line, line_size, "%.*s", (int)(end_a - at_a), at_a < a_size ? a + at_a : "nothing");
            snprintf(b_line, line_size, "%.*s", (int)(end_b - at_b), at_b < b_size ? b + at_b : "nothing");
            if (at_a >= a_size)
                snprintf(a_line, line_size, "nothing");
            if (at_b >= b_size)
                snprintf(b_line, line_size, "nothing");
            return;
        }
        at_a = end_a + 1;
        at_b = end_b + 1;
    }
}

/* Collective, after the hashes differed: rank 0 (not the root, on which
 * the ranks may disagree) names the first rank whose tables differ from
 * its own, and the first entry that differs. */
static int name_mismatch(hpool_pool *pool, const hpool_options *options)
{
    hpool__buffer mine = {0};
    void *all = NULL;
    size_t *sizes = NULL;
    int rc = describe_tables(options, &mine);
    /* every rank takes part in the gather, whatever its own allocations did */
    int gather_rc = hpool__transport_gather(&pool->transport, 0, mine.data ? (const void *)mine.data : "",
                                            mine.size, &all, &sizes);
    int code = HPOOL_EMISMATCH;
    if (pool->transport.rank != 0 || rc != 0 || gather_rc != 0 || all == NULL) {
        code = hpool__fail(HPOOL_EMISMATCH,
                           "the ranks registered different function or reducer tables, or roots: rank 0's "
                           "hpool_error_detail() names the rank and the entry");
    } else {
        const char *texts = all;
        size_t offset = 0;
        for (int r = 0; r < pool->transport.size; offset += sizes[r], r++) {
            if (sizes[r] == sizes[0] && memcmp(texts + offset, texts, sizes[r]) == 0)
                continue;
            char theirs[300], ours[300];
            first_difference(texts + offset, sizes[r], texts, sizes[0], theirs, ours, sizeof theirs);
            code = hpool__fail(HPOOL_EMISMATCH,
                               "rank %d registered %s where rank 0 has %s: every rank must pass the same tables, "
                               "in the same order, and the same root",
                               r, theirs, ours);
            break;
        }
    }
    free(all);
    free(sizes);
    hpool__buffer_release(&mine);
    return code;
}

/* Collective: every rank speaks this protocol, and registered the same
 * tables and root. */
static int agree_on_build(hpool_pool *pool, const hpool_options *options)
{
    uint64_t lowest, highest, version = HPOOL__PROTOCOL_VERSION + hpool__test_fault("protocol_version");
    int rc = hpool__transport_agree(&pool->transport, version, &lowest, &highest);
    if (rc != 0)
        return rc;
    if (lowest != highest)
        return hpool__fail(HPOOL_EVERSION,
                           "the ranks speak hpool protocol versions %llu to %llu (this rank, %d, speaks %llu, as "
                           "hpool %s): run one hpool build on every rank",
                           (unsigned long long)lowest, (unsigned long long)highest, pool->transport.rank,
                           (unsigned long long)version, hpool_version_string());
    uint64_t root = (uint64_t)(int64_t)options->root;
    rc = hpool__transport_agree(&pool->transport, hash_bytes(hash_tables(options), &root, sizeof root), &lowest,
                                &highest);
    if (rc != 0)
        return hpool__fail(rc, "the ranks could not compare their tables: MPI_Allreduce failed");
    return lowest == highest ? 0 : name_mismatch(pool, options);
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

/* A duration in seconds: the option if set, else the variable's value if
 * set (a number, "never" or "off"; anything else is an error), else
 * fallback. *ns is 0 for never. */
static int seconds_setting(double option, const char *variable, double fallback, uint64_t *ns)
{
    double seconds = option;
    if (seconds == 0) {
        const char *text = getenv(variable);
        seconds = fallback;
        if (text != NULL && *text != '\0') {
            char *end;
            double parsed = strtod(text, &end);
            if (strcmp(text, "never") == 0 || strcmp(text, "off") == 0)
                seconds = -1;
            else if (end == text || *end != '\0' || !(parsed > 0) || parsed > 1e9)
                return hpool__fail(HPOOL_EINVAL, "%s is \"%s\": give a number of seconds above 0, or \"never\"",
                                   variable, text);
            else
                seconds = parsed;
        }
    }
    *ns = seconds > 0 ? (uint64_t)(seconds * 1e9) : 0;
    return 0;
}

/* Settings from the options and the environment. */
static int configure(hpool_pool *pool, const hpool_options *options)
{
    int rc = seconds_setting(options->stall_timeout, "HPOOL_STALL_TIMEOUT", 60, &pool->stall_timeout_ns);
    if (rc == 0)
        rc = seconds_setting(options->slow_item, "HPOOL_SLOW_ITEM", -1, &pool->slow_item_ns);
    if (rc == 0)
        rc = seconds_setting(options->stop_grace, "HPOOL_STOP_GRACE", 30, &pool->stop_grace_ns);
    if (rc == 0)
        rc = seconds_setting(options->journal_sync, "HPOOL_JOURNAL_SYNC", 1, &pool->journal_sync_ns);
    if (rc == 0)
        rc = seconds_setting(options->journal_checkpoint, "HPOOL_JOURNAL_CHECKPOINT", 60,
                             &pool->journal_checkpoint_ns);
    if (rc != 0)
        return rc;
    /* a timeout of under four heartbeats would take a late one for a stall */
    if (pool->stall_timeout_ns != 0 && pool->stall_timeout_ns < 4 * (uint64_t)HPOOL__HEARTBEAT_NS)
        pool->stall_timeout_ns = 4 * (uint64_t)HPOOL__HEARTBEAT_NS;
    int crash_by_environment = -1;
    if (options->crash_report == 0 && (rc = hpool__env_yes_no("HPOOL_CRASH_REPORT", &crash_by_environment)) != 0)
        return rc;
    pool->crash_report = options->crash_report > 0 || (options->crash_report == 0 && crash_by_environment != 0);
    pool->root = options->root;
    hpool__team_rank_cpus(&pool->team.cpus);
    const char *threads_origin;
    rc = hpool__resolve_threads(options->threads, &pool->team.cpus, &pool->thread_count, &threads_origin);
    if (rc == 0)
        rc = hpool__check_placement_environment(options->bind, options->placement);
    pool->window = options->window;
    pool->memory_budget = options->memory_budget;
    if (rc == 0 && pool->memory_budget == 0) {
        long mib;
        rc = hpool__env_positive("HPOOL_MEMORY_BUDGET", &mib);
        if (rc == 0 && (unsigned long)mib > SIZE_MAX >> 20)
            rc = hpool__fail(HPOOL_EINVAL, "HPOOL_MEMORY_BUDGET is %ld MiB, more than this machine can address",
                             mib);
        pool->memory_budget = mib > 0 ? (size_t)mib << 20 : (size_t)1 << 30;
    }
    /* Last: it starts threads, and the options are known good by now. The
     * threads an earlier pool left need no check; ended ones are joined
     * first, so that it does not count them. */
    pool->team.thread_count = pool->thread_count;
    if (rc == 0 && !hpool__team_reserve_crew(&pool->team)) {
        hpool__team_join_ended();
        rc = hpool__check_threads(pool->thread_count, threads_origin, &pool->team.probe);
    }
    if (rc != 0)
        return rc;
    const char *temp_dir = options->temp_dir ? options->temp_dir : getenv("TMPDIR");
    pool->temp_dir_origin = options->temp_dir ? "options.temp_dir" : "TMPDIR";
    if (temp_dir == NULL || *temp_dir == '\0') {
        temp_dir = "/tmp";
        pool->temp_dir_origin = "the default: set options.temp_dir or TMPDIR";
    }
    pool->temp_dir = hpool__strdup(temp_dir);
    pool->loads = hpool__calloc((size_t)pool->transport.size, sizeof *pool->loads);
    pool->next_call_id = 1;
    if (pool->temp_dir == NULL || pool->loads == NULL)
        return hpool__fail(HPOOL_ENOMEM, "no memory for the pool's settings");
    return 0;
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
    team->while_waiting = hpool_pool_is_root(pool) ? NULL : hpool__rank_keepalive;
    team->rank = pool->transport.rank;
    if (pool->crash_report) {
        int rc = hpool__crash_handler_install();
        if (rc != 0)
            return rc;
    }
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

static void destroy(hpool_pool *pool);

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
    destroy(pool);
}

/* The pools created and not yet freed in this process. hpool_mpi_finalize
 * must not pull MPI from under them, and hpool_pool_free ignores a pool
 * that is not one of them: a second free of the same pool would otherwise
 * join, and under mpirun wait, on freed memory. */
static pthread_mutex_t live_pools_lock = PTHREAD_MUTEX_INITIALIZER;
static hpool_pool **live_pools;
static size_t live_pool_count, live_pool_capacity;

int hpool__live_pools(void)
{
    pthread_mutex_lock(&live_pools_lock);
    int count = (int)live_pool_count;
    pthread_mutex_unlock(&live_pools_lock);
    return count;
}

static int remember_live_pool(hpool_pool *pool)
{
    pthread_mutex_lock(&live_pools_lock);
    int rc = 0;
    if (live_pool_count == live_pool_capacity) {
        hpool_pool **grown = hpool__grow_array(live_pools, &live_pool_capacity, live_pool_count, sizeof *grown);
        if (grown == NULL)
            rc = hpool__fail(HPOOL_ENOMEM, "no memory to register the pool");
        else
            live_pools = grown;
    }
    if (rc == 0)
        live_pools[live_pool_count++] = pool;
    pthread_mutex_unlock(&live_pools_lock);
    return rc;
}

/* Removes pool from the live pools; false if it was not there. */
static bool forget_live_pool(hpool_pool *pool)
{
    pthread_mutex_lock(&live_pools_lock);
    bool found = false;
    for (size_t i = 0; i < live_pool_count && !found; i++)
        if (live_pools[i] == pool) {
            live_pools[i] = live_pools[--live_pool_count];
            found = true;
        }
    if (live_pool_count == 0) {
        free(live_pools);
        live_pools = NULL;
        live_pool_capacity = 0;
    }
    pthread_mutex_unlock(&live_pools_lock);
    return found;
}

static bool is_live_pool(const hpool_pool *pool)
{
    pthread_mutex_lock(&live_pools_lock);
    bool found = false;
    for (size_t i = 0; i < live_pool_count && !found; i++)
        found = live_pools[i] == pool;
    pthread_mutex_unlock(&live_pools_lock);
    return found;
}

int hpool_pool_create(hpool_pool **pool_out, const hpool_options *caller_options)
{
    hpool__detail_clear();
    if (pool_out == NULL)
        return hpool__fail(HPOOL_EINVAL, "hpool_pool_create: pool is NULL");
    *pool_out = NULL;
    /* The caller's options as this library's layout. A struct_size that is
     * wrong is caught before the communicator is used: with no agreement
     * possible, it must be wrong on every rank (the same program) anyway. */
    hpool_options accepted = HPOOL_OPTIONS_INIT;
    if (caller_options != NULL) {
        int rc = hpool__accept_struct(&accepted, sizeof accepted, HPOOL__OPTIONS_SIZE_0_1, caller_options,
                                      caller_options->struct_size, "options", "HPOOL_OPTIONS_INIT");
        if (rc != 0)
            return rc;
    }
    const hpool_options *options = &accepted;
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
        rc = agree_on_code(&transport, hpool__fail(HPOOL_ENOMEM, "no memory for a pool"), "pool creation");
        hpool__transport_close(&transport);
        return rc;
    }
    pool->transport = transport;
    rc = check_options(options);
    if (rc == 0 && (options->root < 0 || options->root >= pool->transport.size))
        rc = hpool__fail(HPOOL_EINVAL, "options.root is %d, and the communicator has ranks 0 to %d", options->root,
                         pool->transport.size - 1);
    if (rc == 0)
        rc = copy_tables(pool, options);
    if (rc == 0)
        rc = init_locks(pool);
    if (rc == 0)
        rc = configure(pool, options);
    rc = agree_on_code(&pool->transport, rc, "to check its options");
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
            rc = hpool__fail(HPOOL_ETHREAD, "could not start the pool's engine thread");
        else
            pool->engine_started = true;
    }
    if (rc == 0)
        rc = remember_live_pool(pool);
    rc = agree_on_code(&pool->transport, rc, "to start its threads");
    if (rc != 0) {
        forget_live_pool(pool);
        undo_create(pool);
        return rc;
    }
    open_engine_gate(pool, 1);
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
    hpool__detail_clear();
    if (pool == NULL || name == NULL || index == NULL)
        return hpool__fail(HPOOL_EINVAL, "hpool_pool_function: pool, name or index is NULL");
    for (size_t f = 0; f < pool->function_count; f++)
        if (strcmp(pool->functions[f].name, name) == 0) {
            *index = (int)f;
            return 0;
        }
    return hpool__fail(HPOOL_EINVAL, "hpool_pool_function: the pool has no function named \"%s\"", name);
}

int hpool_pool_close(hpool_pool *pool)
{
    hpool__detail_clear();
    if (pool == NULL)
        return hpool__fail(HPOOL_EINVAL, "hpool_pool_close: pool is NULL");
    if (!hpool_pool_is_root(pool))
        return hpool__fail(HPOOL_ENOTROOT, "hpool_pool_close on rank %d: only the root, rank %d, closes",
                           pool->transport.rank, pool->root);
    pthread_mutex_lock(&pool->lock);
    pool->closed = true;
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

int hpool_pool_terminate(hpool_pool *pool)
{
    hpool__detail_clear();
    if (pool == NULL)
        return hpool__fail(HPOOL_EINVAL, "hpool_pool_terminate: pool is NULL");
    if (hpool__thread_owned_by(pool))
        return hpool__fail(HPOOL_EDEADLK, "hpool_pool_terminate was called from a map function or callback of "
                                          "the same pool, which would wait for itself");
    if (!hpool_pool_is_root(pool))
        return hpool__fail(HPOOL_ENOTROOT, "hpool_pool_terminate on rank %d: only the root, rank %d, terminates",
                           pool->transport.rank, pool->root);
    pthread_mutex_lock(&pool->lock);
    pool->closed = true;
    if (!pool->terminating)
        pool->terminate_started_ns = hpool__now_ns();
    pool->terminating = true;
    pool->engine_has_news = true; /* the engine starts watching the running items */
    pthread_cond_signal(&pool->engine_wake);
    for (hpool__call_state *call = pool->calls.head; call != NULL; call = call->next)
        hpool__cancel_call(pool, call);
    while (pool->calls.head != NULL && pool->engine_started)
        pthread_cond_wait(&pool->changed, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

void hpool__keep_pool_error(hpool_pool *pool, int code)
{
    if (pool->error != 0)
        return;
    pool->error = code;
    snprintf(pool->error_detail, sizeof pool->error_detail, "%s", hpool__detail_text(code));
}

/* On a rank other than the root, once its engine has stopped serving: an
 * item still running then is one whose result nobody will take (the root
 * gave it up after terminate, or stopped at once, or went silent), and
 * waiting for it could be forever. It is abandoned with its thread, as the
 * root abandons its own, and join says so: with HPOOL_ESTOPPED after a
 * stop at once, which abandons such items on purpose (MPI_Finalize does
 * not wait for them: the root heard this rank stop), else HPOOL_ESTALLED. */
static void abandon_orphaned_items(hpool_pool *pool)
{
    uint64_t age;
    char running[300];
    if (hpool_pool_is_root(pool) || pool->team_abandoned || hpool__longest_running(pool, &age, running,
                                                                                    sizeof running) < 0)
        return;
    int code = atomic_load(&pool->stop_remote) == 2
                   ? hpool__fail(HPOOL_ESTOPPED, "%s when the root stopped the pool at once: abandoned with its "
                                                 "thread, which may still write its own result", running)
                   : hpool__fail(HPOOL_ESTALLED, "%s when the root ended the pool, which will not take its "
                                                 "result: abandoned with its thread, which may still write its "
                                                 "own result", running);
    pthread_mutex_lock(&pool->lock);
    pool->team_abandoned = true;
    hpool__keep_pool_error(pool, code);
    pthread_mutex_unlock(&pool->lock);
}

int hpool_pool_join(hpool_pool *pool)
{
    hpool__detail_clear();
    if (pool == NULL)
        return hpool__fail(HPOOL_EINVAL, "hpool_pool_join: pool is NULL");
    if (hpool__thread_owned_by(pool))
        return hpool__fail(HPOOL_EDEADLK, "hpool_pool_join was called from a map function or callback of the "
                                          "same pool, which would wait for itself");
    pthread_mutex_lock(&pool->lock);
    if (pool->joined) {
        int error = pool->error;
        if (error != 0)
            hpool__detail_restore(error, pool->error_detail);
        pthread_mutex_unlock(&pool->lock);
        return error;
    }
    pool->closed = true;
    pool->joining = true; /* the engine watches for items abandoned by a timed-out wait */
    pool->join_started_ns = hpool__now_ns();
    pool->engine_has_news = true;
    pthread_cond_signal(&pool->engine_wake);
    pthread_mutex_unlock(&pool->lock);
    if (pool->engine_started)
        pthread_join(pool->engine, NULL);
    pool->engine_started = false;
    abandon_orphaned_items(pool);
    if (pool->team_abandoned)
        hpool__team_abandon(&pool->team); /* a thread that never returns is left behind */
    else
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
    if (error != 0)
        hpool__detail_restore(error, pool->error_detail);
    pthread_mutex_unlock(&pool->lock);
    return error;
}

void hpool_pool_free(hpool_pool *pool)
{
    /* Not a live pool: NULL, or freed already (documented to do nothing). */
    if (pool == NULL || !is_live_pool(pool))
        return;
    /* From a map function or callback of this pool it would wait for
     * itself: documented to do nothing there. */
    if (hpool__thread_owned_by(pool))
        return;
    if (!pool->joined)
        hpool_pool_join(pool);
    hpool__stop_release(pool);
    forget_live_pool(pool);
    destroy(pool);
}

static void destroy(hpool_pool *pool)
{
    hpool__transport_close(&pool->transport);
    if (pool->team_abandoned)
        return; /* its abandoned thread may still use the pool: it stays, until the process ends */
    if (pool->locks_ready) {
        pthread_cond_destroy(&pool->changed);
        pthread_cond_destroy(&pool->engine_wake);
        pthread_mutex_destroy(&pool->lock);
        pthread_mutex_destroy(&pool->stores_lock);
    }
    hpool__keyed_free_all(pool); /* what a failed exchange left */
    hpool__watchdog_free(pool);
    free(pool->temp_dir);
    free(pool->loads);
    free(pool->functions);
    free(pool->reducers);
    free(pool->keyed_reducers);
    free(pool);
}
