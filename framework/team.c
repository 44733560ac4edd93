/* team.c: a rank's OpenMP worker threads, which run the chunks of queued batches. */
#include "internal.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Prepares a batch's outputs before any chunk of it runs. */
static int prepare_outputs(hpool__team *team, hpool__batch *batch)
{
    if (batch->mode == HPOOL__FIXED_RESULT && batch->results == NULL) {
        batch->results = hpool__malloc(batch->count * batch->result_size + 1);
        batch->results_owned = true;
        if (batch->results == NULL)
            return HPOOL_ENOMEM;
    }
    if (batch->mode == HPOOL__RECORD_RESULT) {
        batch->chunk_outputs = hpool__calloc(batch->chunk_count + 1, sizeof *batch->chunk_outputs);
        if (batch->chunk_outputs == NULL)
            return HPOOL_ENOMEM;
    }
    if (batch->mode == HPOOL__REDUCE) {
        const hpool_reducer *reducer = &team->reducers[batch->reducer];
        uint64_t partials = hpool__batch_partials(batch);
        batch->accumulator = hpool__malloc(partials * reducer->value_size);
        if (batch->accumulator == NULL)
            return HPOOL_ENOMEM;
        for (uint64_t p = 0; p < partials; p++)
            memcpy(batch->accumulator + p * reducer->value_size, reducer->identity, reducer->value_size);
    }
    return 0;
}

static bool recently_canceled(const hpool__team *team, uint32_t call_id)
{
    for (size_t i = 0; i < sizeof team->canceled_calls / sizeof team->canceled_calls[0]; i++)
        if (team->canceled_calls[i] == call_id && call_id != 0)
            return true;
    return false;
}

static void finish_batch(hpool__team *team, hpool__batch *batch)
{
    if (batch->mode == HPOOL__RECORD_RESULT && batch->chunk_outputs != NULL
        && hpool__batch_assemble_records(batch) != 0)
        batch->whole_failed = HPOOL_ENOMEM;
    team->on_batch_done(batch, team->on_batch_done_user);
}

void hpool__team_submit(hpool__team *team, hpool__batch *batch)
{
    /* The root counted the batch's chunks as sent: every one of them is
     * counted completed here, run or not. */
    bool runnable = prepare_outputs(team, batch) == 0;
    if (!runnable)
        batch->whole_failed = HPOOL_ENOMEM;
    pthread_mutex_lock(&team->lock);
    team->report_below = batch->report_below;
    team->chunks_received += batch->chunk_count;
    if (recently_canceled(team, batch->call_id))
        atomic_store(&batch->canceled, 1);
    if (!runnable || batch->chunk_count == 0) {
        team->chunks_completed += batch->chunk_count;
        pthread_mutex_unlock(&team->lock);
        finish_batch(team, batch);
        return;
    }
    HPOOL__QUEUE_PUSH(&team->queued, batch);
    pthread_cond_signal(&team->work_ready);
    if (batch->chunk_count > 1)
        pthread_cond_broadcast(&team->work_ready);
    pthread_mutex_unlock(&team->lock);
}

uint64_t hpool__team_take_credit(hpool__team *team, bool *pending)
{
    bool was_pending = false;
    uint64_t completed = team->chunks_completed;
    if (team->started) {
        pthread_mutex_lock(&team->lock);
        was_pending = team->credit_pending;
        team->credit_pending = false;
        completed = team->chunks_completed;
        pthread_mutex_unlock(&team->lock);
    }
    if (pending != NULL)
        *pending = was_pending;
    return completed;
}

bool hpool__team_is_idle(hpool__team *team)
{
    if (!team->started)
        return true;
    pthread_mutex_lock(&team->lock);
    bool idle = team->chunks_received == team->chunks_completed && team->job == NULL;
    pthread_mutex_unlock(&team->lock);
    return idle;
}

bool hpool__team_is_short(hpool__team *team)
{
    if (!team->started)
        return false;
    pthread_mutex_lock(&team->lock);
    bool is_short = team->chunks_received - team->chunks_completed < team->report_below;
    pthread_mutex_unlock(&team->lock);
    return is_short;
}

/* After a chunk completed, with the team's lock held: whether the root
 * must hear that this rank holds fewer chunks than it asked for. Held is
 * judged as the root judges it, from the two totals: a count of running
 * chunks would still include those whose threads have counted them done
 * but not yet taken the lock, and hide the shortfall for good.
 *
 * Once told, the root needs no news of every chunk: it has answered, or
 * has nothing to send. So a report is repeated only after an eighth of the
 * mark has completed since the last, or at once when the rank holds fewer
 * chunks than it has threads (one is about to go idle). In between the
 * root's count is at most that eighth behind, while every thread has work.
 * (Without this, a rank of cheap items sent a report every engine round
 * while short: tiny items under mpirun -n 2, 4.1e7 -> 3.3e7 items/s.) */
static bool needs_credit(hpool__team *team)
{
    uint64_t completed = team->chunks_completed;
    uint64_t held = team->chunks_received - completed;
    if (team->credit_pending || team->on_credit == NULL || held >= team->report_below)
        return false;
    uint64_t spacing = team->report_below / 8 > 1 ? team->report_below / 8 : 1;
    bool urgent = held < (uint64_t)team->thread_count;
    if (!urgent && completed - team->completed_at_credit < spacing)
        return false;
    team->credit_pending = true;
    team->completed_at_credit = completed;
    return true;
}

void hpool__team_parallel(hpool__team *team, hpool__team_job_fn *fn, void *arg, int parts)
{
    if (!team->started || parts <= 1) {
        for (int part = 0; part < parts; part++)
            fn(arg, part, parts);
        return;
    }
    hpool__team_job job = {.fn = fn, .arg = arg, .parts = parts};
    pthread_mutex_lock(&team->lock);
    team->job = &job;
    pthread_cond_broadcast(&team->work_ready);
    while (job.parts_done < job.parts) {
        hpool__deadline quarter_second = hpool__deadline_in_seconds(0.25);
        if (!hpool__cond_wait_until(&team->job_done, &team->lock, &quarter_second) && team->while_waiting != NULL
            && job.parts_done < job.parts) {
            pthread_mutex_unlock(&team->lock);
            team->while_waiting(team->on_batch_done_user);
            pthread_mutex_lock(&team->lock);
        }
    }
    pthread_mutex_unlock(&team->lock);
}

/* Runs one part of the team's job, with the team's lock held on entry and
 * on return. */
static void run_job_part(hpool__team *team)
{
    hpool__team_job *job = team->job;
    int part = job->next_part++;
    if (job->next_part == job->parts)
        team->job = NULL; /* every part claimed; the caller waits for parts_done */
    pthread_mutex_unlock(&team->lock);
    job->fn(job->arg, part, job->parts);
    pthread_mutex_lock(&team->lock);
    if (++job->parts_done == job->parts)
        pthread_cond_signal(&team->job_done);
}

void hpool__team_cancel(hpool__team *team, uint32_t call_id)
{
    pthread_mutex_lock(&team->lock);
    team->canceled_calls[team->canceled_next] = call_id;
    team->canceled_next = (team->canceled_next + 1) % (sizeof team->canceled_calls / sizeof team->canceled_calls[0]);
    for (hpool__batch *batch = team->queued.head; batch != NULL; batch = batch->next)
        if (batch->call_id == call_id)
            atomic_store(&batch->canceled, 1);
    pthread_mutex_unlock(&team->lock);
}

/* Pins the calling worker if asked and OpenMP has not bound it already
 * (OMP_PROC_BIND, OMP_PLACES), then records where it runs. Returns whether
 * it pinned the thread, whose mask was *before. */
static bool place_worker(hpool__team *team, hpool__cpus *before)
{
    int index = omp_get_thread_num();
    bool openmp_bound = omp_get_place_num() >= 0;
    bool pinned = false;
    /* Only a thread whose mask was read is pinned: a reused crew thread
     * gets that mask back afterwards, and a guess of {cpu 0} would pin it
     * there for the next pool. A failure leaves it unpinned. */
    if (team->pin && !openmp_bound && !hpool__test_fault("worker_mask") && hpool__cpus_of_this_thread(before) == 0)
        pinned = hpool__pin_this_thread(hpool__cpus_nth(&team->cpus, team->pin_offset + index)) == 0;
    hpool__cpus cpus;
    hpool__cpus_of_this_thread(&cpus);
    pthread_mutex_lock(&team->lock);
    if (team->threads_running == 0)
        team->threads_running = omp_get_num_threads();
    if (team->thread_cpus != NULL && index < team->thread_count)
        team->thread_cpus[index] = cpus;
    team->openmp_bound = team->openmp_bound || openmp_bound;
    team->threads_ready++;
    pthread_cond_broadcast(&team->threads_started);
    pthread_mutex_unlock(&team->lock);
    return pinned;
}

void hpool__team_wait_started(hpool__team *team)
{
    pthread_mutex_lock(&team->lock);
    while (team->threads_running == 0 || team->threads_ready < team->threads_running)
        pthread_cond_wait(&team->threads_started, &team->lock);
    pthread_mutex_unlock(&team->lock);
}

/* With the team's lock held, which it may drop and take again: one more
 * chunk of batch is done. Both counts under the lock a thread takes anyway
 * to claim its next chunk, not as atomics: at chunksize 1 an atomic
 * increment costs as much as a cheap item. The team's is counted before
 * the batch can be reported done, so the count a result carries includes
 * the result's own chunks. */
static void chunk_done(hpool__team *team, hpool__batch *batch)
{
    team->chunks_completed++;
    bool batch_done = ++batch->chunks_done == batch->chunk_count;
    /* A finished batch's result tells the root anyway; a chunk of a
     * batch still running elsewhere (a slow item) must not keep the
     * root thinking this rank is full. */
    bool credit = !batch_done && needs_credit(team);
    if (batch_done || credit) {
        pthread_mutex_unlock(&team->lock);
        if (batch_done)
            finish_batch(team, batch); /* which may free it */
        if (credit)
            team->on_credit(team->on_batch_done_user);
        pthread_mutex_lock(&team->lock);
    }
}

static void worker_loop(hpool__team *team)
{
    hpool__set_thread_owner(team->owner);
    hpool__crash_worker_started(team, omp_get_thread_num());
    hpool__cpus unpinned;
    bool pinned = place_worker(team, &unpinned);
    hpool__thread_state *thread = hpool__thread_state_new(team); /* NULL: its chunks fail, HPOOL_ENOMEM */
    pthread_mutex_lock(&team->lock);
    for (;;) {
        while (team->queued.head == NULL && team->job == NULL && !team->stopping) {
            /* Nothing queued: items of a chunk another thread runs (share.c).
             * Counted idle before looking, so that a share opened meanwhile
             * either is seen here or sees this thread and wakes it. */
            atomic_fetch_add(&team->idle_threads, 1);
            hpool__chunk_share *share = hpool__share_find(team);
            if (share != NULL) {
                atomic_fetch_sub(&team->idle_threads, 1);
                pthread_mutex_unlock(&team->lock);
                hpool__help_chunk(team, share, omp_get_thread_num(), thread);
                pthread_mutex_lock(&team->lock);
                hpool__batch *batch = share->batch;
                if (hpool__share_leave(share, false))
                    chunk_done(team, batch); /* its own thread left before this one */
                continue;
            }
            pthread_cond_wait(&team->work_ready, &team->lock);
            atomic_fetch_sub(&team->idle_threads, 1);
        }
        if (team->job != NULL) {
            run_job_part(team);
            continue;
        }
        if (team->queued.head == NULL)
            break;
        hpool__batch *batch = team->queued.head;
        uint64_t c = batch->next_chunk++;
        if (batch->next_chunk == batch->chunk_count) {
            hpool__batch *claimed;
            HPOOL__QUEUE_POP(&team->queued, claimed);
            HPOOL__ASSERT(claimed == batch);
        }
        hpool__chunk_share *share = hpool__share_begin(team, batch, c); /* under the lock taken to claim */
        pthread_mutex_unlock(&team->lock);
        hpool__execute_chunk(team, batch, c, omp_get_thread_num(), thread, share);
        pthread_mutex_lock(&team->lock);
        if (share == NULL || hpool__share_leave(share, true))
            chunk_done(team, batch); /* else the last of its helpers does */
    }
    pthread_mutex_unlock(&team->lock);
    hpool__thread_state_free(team, thread);
    hpool__crash_worker_finished();
    hpool__set_thread_owner(NULL);
    /* The next pool of this crew may not pin, or pin elsewhere. */
    if (pinned)
        hpool__set_this_thread_cpus(&unpinned);
    /* The last touch of the team: hpool__team_stop may free it as soon as
     * the lock is released. */
    pthread_mutex_lock(&team->lock);
    if (++team->threads_finished == team->threads_running)
        pthread_cond_broadcast(&team->threads_started);
    pthread_mutex_unlock(&team->lock);
}

/* ---- Crews: the threads, kept from one pool to the next -----------------
 *
 * A team's threads are a crew: team_main's thread and the OpenMP team of its
 * parallel region, lent to one pool's team at a time. When the pool stops,
 * its threads leave the team and the crew is parked, asleep on a condition
 * variable, for the next pool of the process with as many threads on the
 * same CPUs (as libgomp keeps its own threads between parallel regions);
 * at the process's exit the parked threads are simply gone, as a bare
 * OpenMP program's are. Ending them instead costs more than the whole work
 * of a small job: the end of the parallel region, then team_main's exit
 * (libgomp's teardown of its thread pool), are barriers that spin
 * (GOMP_SPINCOUNT, 300,000 rounds by default, some 3 ms) before they sleep,
 * and a spinning thread holds the CPU that the thread it waits for needs
 * when both share one: on a busy 2-core machine the join of `cube 10`'s two
 * threads took 5 to 12 ms (median), for microseconds of work. A parked crew
 * that no pool can take (one is parked already, or a pool wants another
 * size) retires: its threads end, and the next pool joins them before it
 * counts the threads it can start, so that threads never pile up.
 *
 * This is process-wide state, as the live pools are (pool.c): the threads
 * outlive the pool that started them. What a pool's threads keep from an
 * earlier pool's: their thread-local storage and OpenMP settings (ICVs),
 * as an OpenMP program's threads keep them from one parallel region to the
 * next; their CPU masks are put back (see worker_loop). */
struct hpool__crew {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    hpool__team *team; /* the team it serves; NULL while parked */
    uint64_t lendings; /* the teams it was lent to, this one included */
    bool retiring;     /* parked for good: its threads end */
    int thread_count;
    hpool__cpus cpus; /* the rank's CPUs when it started */
    pthread_t thread; /* team_main's */
    hpool__thread_probe *probe; /* ended by team_main before OpenMP starts threads */
};

/* What each of the crew's threads runs: every team lent to the crew, one
 * after another, until it retires. */
static void crew_loop(hpool__crew *crew)
{
    uint64_t served = 0;
    pthread_mutex_lock(&crew->lock);
    for (;;) {
        while (!crew->retiring && (crew->team == NULL || crew->lendings == served))
            pthread_cond_wait(&crew->changed, &crew->lock);
        if (crew->retiring)
            break;
        hpool__team *team = crew->team;
        served = crew->lendings;
        pthread_mutex_unlock(&crew->lock);
        worker_loop(team);
        pthread_mutex_lock(&crew->lock);
    }
    pthread_mutex_unlock(&crew->lock);
}

static void *team_main(void *argument)
{
    hpool__crew *crew = argument;
    /* The probe's threads are gone before OpenMP starts the team's, so
     * that they do not count twice against the limits it checked. */
    hpool__thread_probe_end(crew->probe);
    crew->probe = NULL;
    /* Exactly thread_count threads, whatever OMP_DYNAMIC says. */
    omp_set_dynamic(0);
#pragma omp parallel num_threads(crew->thread_count)
    crew_loop(crew);
    return NULL;
}

static pthread_mutex_t crews_lock = PTHREAD_MUTEX_INITIALIZER;
static hpool__crew *parked_crew; /* at most one */
static hpool__crew **retired_crews;
static size_t retired_count, retired_capacity;
static pthread_once_t crews_fork_handler = PTHREAD_ONCE_INIT;

/* A forked child has none of its parent's threads: a parked crew would
 * never answer, and joining a retired one would wait forever. */
static void forget_crews_in_child(void)
{
    parked_crew = NULL; /* the parent's memory, left in the child */
    retired_crews = NULL;
    retired_count = retired_capacity = 0;
    pthread_mutex_init(&crews_lock, NULL);
}

static void install_crews_fork_handler(void)
{
    pthread_atfork(NULL, NULL, forget_crews_in_child);
}

static void crew_free(hpool__crew *crew)
{
    pthread_cond_destroy(&crew->changed);
    pthread_mutex_destroy(&crew->lock);
    free(crew);
}

/* Tells a parked crew's threads to end, for hpool__team_join_ended to join;
 * joins them at once if there is no memory to remember them. With
 * crews_lock held. */
static void retire(hpool__crew *crew)
{
    pthread_mutex_lock(&crew->lock);
    crew->retiring = true;
    pthread_cond_broadcast(&crew->changed);
    pthread_mutex_unlock(&crew->lock);
    hpool__crew **grown = hpool__grow_array(retired_crews, &retired_capacity, retired_count, sizeof *grown);
    if (grown == NULL) {
        pthread_join(crew->thread, NULL);
        crew_free(crew);
        return;
    }
    retired_crews = grown;
    retired_crews[retired_count++] = crew;
}

/* A crew its team has left: parked for the next pool, or retired. */
static void crew_return(hpool__crew *crew)
{
    pthread_mutex_lock(&crews_lock);
    if (parked_crew == NULL)
        parked_crew = crew;
    else
        retire(crew);
    pthread_mutex_unlock(&crews_lock);
}

void hpool__team_join_ended(void)
{
    pthread_mutex_lock(&crews_lock);
    while (retired_count > 0) {
        hpool__crew *crew = retired_crews[--retired_count];
        pthread_join(crew->thread, NULL);
        crew_free(crew);
    }
    pthread_mutex_unlock(&crews_lock);
}

bool hpool__team_reserve_crew(hpool__team *team)
{
    pthread_mutex_lock(&crews_lock);
    hpool__crew *crew = parked_crew;
    bool fits = crew != NULL && crew->thread_count == team->thread_count
                && memcmp(&crew->cpus, &team->cpus, sizeof crew->cpus) == 0;
    if (crew != NULL) {
        parked_crew = NULL;
        if (fits)
            team->crew = crew;
        else
            retire(crew);
    }
    pthread_mutex_unlock(&crews_lock);
    return fits;
}

/* A new crew that starts serving team at once: 0, HPOOL_ENOMEM or
 * HPOOL_ETHREAD. */
static int crew_start(hpool__team *team, hpool__crew **started)
{
    pthread_once(&crews_fork_handler, install_crews_fork_handler);
    hpool__crew *crew = hpool__calloc(1, sizeof *crew);
    if (crew == NULL)
        return HPOOL_ENOMEM;
    if (pthread_mutex_init(&crew->lock, NULL) != 0) {
        free(crew);
        return HPOOL_ETHREAD;
    }
    if (pthread_cond_init(&crew->changed, NULL) != 0) {
        pthread_mutex_destroy(&crew->lock);
        free(crew);
        return HPOOL_ETHREAD;
    }
    crew->team = team;
    crew->lendings = 1;
    crew->thread_count = team->thread_count;
    crew->cpus = team->cpus;
    crew->probe = team->probe;
    if (pthread_create(&crew->thread, NULL, team_main, crew) != 0) {
        crew_free(crew);
        return HPOOL_ETHREAD;
    }
    team->probe = NULL; /* team_main's now */
    *started = crew;
    return 0;
}

void hpool__team_rank_cpus(hpool__cpus *cpus)
{
    /* With OMP_PROC_BIND or OMP_PLACES, libgomp binds the initial thread to
     * the first place as it loads, so that thread's mask no longer says
     * what the process was given; the places, made from that mask before,
     * still do. */
    int places = omp_get_num_places();
    if (places <= 0) {
        hpool__cpus_of_this_thread(cpus);
        return;
    }
    memset(cpus, 0, sizeof *cpus);
    for (int place = 0; place < places; place++) {
        int count = omp_get_place_num_procs(place);
        int *ids = hpool__malloc((size_t)(count > 0 ? count : 1) * sizeof *ids);
        if (ids == NULL)
            continue;
        omp_get_place_proc_ids(place, ids);
        for (int i = 0; i < count; i++)
            if (ids[i] >= 0 && ids[i] < (int)sizeof cpus->bits * 8)
                cpus->bits[ids[i] / 64] |= (uint64_t)1 << (ids[i] % 64);
        free(ids);
    }
    if (hpool__cpus_count(cpus) == 0)
        hpool__cpus_of_this_thread(cpus);
}

int hpool__team_start(hpool__team *team)
{
    hpool__crew *crew = team->crew; /* reserved by hpool__team_reserve_crew, or NULL */
    team->crew = NULL;
    int rc = HPOOL_ETHREAD;
    if (hpool__test_fault("team_start"))
        goto no_arrays;
    team->thread_cpus = hpool__calloc((size_t)team->thread_count, sizeof *team->thread_cpus);
    /* aligned as the type asks: a cache line per thread */
    team->statuses = aligned_alloc(_Alignof(hpool__worker_status), (size_t)team->thread_count * sizeof *team->statuses);
    if (team->statuses != NULL)
        memset(team->statuses, 0, (size_t)team->thread_count * sizeof *team->statuses);
    team->shares = aligned_alloc(_Alignof(hpool__chunk_share), (size_t)team->thread_count * sizeof *team->shares);
    if (team->shares != NULL)
        memset(team->shares, 0, (size_t)team->thread_count * sizeof *team->shares);
    atomic_store(&team->idle_threads, 0);
    if (team->thread_cpus == NULL || team->statuses == NULL || team->shares == NULL) {
        rc = HPOOL_ENOMEM;
        goto no_lock; /* frees whichever of them there is */
    }
    if (pthread_mutex_init(&team->lock, NULL) != 0)
        goto no_lock;
    if (pthread_cond_init(&team->work_ready, NULL) != 0)
        goto no_work_ready;
    if (pthread_cond_init(&team->threads_started, NULL) != 0)
        goto no_threads_started;
    if (hpool__cond_init_monotonic(&team->job_done) != 0)
        goto no_job_done;
    if (crew != NULL) {
        pthread_mutex_lock(&crew->lock);
        crew->team = team;
        crew->lendings++;
        pthread_cond_broadcast(&crew->changed);
        pthread_mutex_unlock(&crew->lock);
    } else if ((rc = crew_start(team, &crew)) != 0) {
        goto no_thread;
    }
    team->crew = crew;
    team->started = true;
    return 0;
no_thread:
    pthread_cond_destroy(&team->job_done);
no_job_done:
    pthread_cond_destroy(&team->threads_started);
no_threads_started:
    pthread_cond_destroy(&team->work_ready);
no_work_ready:
    pthread_mutex_destroy(&team->lock);
no_lock:
    free(team->thread_cpus);
    team->thread_cpus = NULL;
    free(team->statuses);
    team->statuses = NULL;
    free(team->shares);
    team->shares = NULL;
no_arrays:
    if (crew != NULL)
        crew_return(crew);
    hpool__thread_probe_end(team->probe);
    team->probe = NULL;
    return rc;
}

void hpool__team_abandon(hpool__team *team)
{
    if (!team->started)
        return;
    pthread_mutex_lock(&team->lock);
    team->stopping = true; /* the other threads end after their chunks */
    pthread_cond_broadcast(&team->work_ready);
    pthread_mutex_unlock(&team->lock);
    /* The crew stays with the team: no pool can have it back. */
    pthread_detach(team->crew->thread);
    team->started = false;
}

void hpool__team_stop(hpool__team *team)
{
    if (!team->started) { /* creation failed before the start */
        if (team->crew != NULL)
            crew_return(team->crew);
        team->crew = NULL;
        hpool__thread_probe_end(team->probe);
        team->probe = NULL;
        return;
    }
    pthread_mutex_lock(&team->lock);
    team->stopping = true;
    pthread_cond_broadcast(&team->work_ready);
    /* Until every thread has started (a new crew's parallel region may not
     * have begun yet) and left the team. */
    while (team->threads_running == 0 || team->threads_finished < team->threads_running)
        pthread_cond_wait(&team->threads_started, &team->lock);
    pthread_mutex_unlock(&team->lock);
    hpool__crew *crew = team->crew;
    pthread_mutex_lock(&crew->lock);
    crew->team = NULL;
    pthread_mutex_unlock(&crew->lock);
    crew_return(crew);
    team->crew = NULL;
    pthread_cond_destroy(&team->job_done);
    pthread_cond_destroy(&team->threads_started);
    pthread_cond_destroy(&team->work_ready);
    pthread_mutex_destroy(&team->lock);
    free(team->thread_cpus);
    team->thread_cpus = NULL;
    free(team->statuses);
    team->statuses = NULL;
    free(team->shares);
    team->shares = NULL;
    team->started = false;
}
