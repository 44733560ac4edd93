/* placement.c: how many threads a rank runs, where they run, and the root's record and report of it. */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* A positive integer at the start of the variable (OMP_NUM_THREADS may be a
 * list such as "4,2": its first level is ours), or 0. Lenient: for the
 * variables that belong to OpenMP, Slurm or MPI launchers, which check
 * their own; hpool's own are checked by the functions below. */
static int positive_from_env(const char *name)
{
    const char *text = getenv(name);
    if (text == NULL || *text == '\0')
        return 0;
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (end == text || value <= 0)
        return 0;
    if (*end != '\0' && *end != ',')
        return 0;
    return errno == ERANGE || value > INT_MAX ? INT_MAX : (int)value; /* too many: hpool__check_threads says so */
}

/* A positive decimal integer, the whole of text but for surrounding
 * blanks: 1 and *value, or 0 if text is anything else ("abc", "-3", "0",
 * "4x"). A number past LONG_MAX is LONG_MAX. */
static int parse_positive(const char *text, long *value)
{
    while (*text == ' ' || *text == '\t')
        text++;
    if (*text < '0' || *text > '9') /* no sign: "-3" and "+3" are not counts */
        return 0;
    char *end;
    errno = 0;
    long parsed = strtol(text, &end, 10);
    while (*end == ' ' || *end == '\t')
        end++;
    if (*end != '\0' || parsed <= 0)
        return 0;
    *value = errno == ERANGE ? LONG_MAX : parsed;
    return 1;
}

int hpool__env_positive(const char *name, long *value)
{
    *value = 0;
    const char *text = getenv(name);
    if (text == NULL || *text == '\0') /* unset, or set empty: the default */
        return 0;
    if (!parse_positive(text, value))
        return hpool__fail(HPOOL_EINVAL, "%s is \"%.64s\": give a positive whole number, or unset it", name, text);
    return 0;
}

/* ---- CPU sets ---------------------------------------------------------- */

#define CPUS_CAPACITY ((int)(sizeof(((hpool__cpus *)0)->bits) * 8))

static bool cpus_has(const hpool__cpus *cpus, int cpu)
{
    return cpu >= 0 && cpu < CPUS_CAPACITY && (cpus->bits[cpu / 64] >> (cpu % 64) & 1u);
}

static void cpus_add(hpool__cpus *cpus, int cpu)
{
    if (cpu >= 0 && cpu < CPUS_CAPACITY)
        cpus->bits[cpu / 64] |= (uint64_t)1 << (cpu % 64);
}

int hpool__cpus_of_this_thread(hpool__cpus *cpus)
{
    memset(cpus, 0, sizeof *cpus);
    cpu_set_t set;
    CPU_ZERO(&set);
    if (pthread_getaffinity_np(pthread_self(), sizeof set, &set) != 0) {
        cpus_add(cpus, 0); /* nothing better to say than "somewhere" */
        return HPOOL_ETHREAD;
    }
    for (int cpu = 0; cpu < CPU_SETSIZE && cpu < CPUS_CAPACITY; cpu++)
        if (CPU_ISSET(cpu, &set))
            cpus_add(cpus, cpu);
    return 0;
}

int hpool__cpus_count(const hpool__cpus *cpus)
{
    int count = 0;
    for (size_t word = 0; word < sizeof cpus->bits / sizeof cpus->bits[0]; word++)
        count += __builtin_popcountll(cpus->bits[word]);
    return count;
}

int hpool__cpus_nth(const hpool__cpus *cpus, int n)
{
    int count = hpool__cpus_count(cpus);
    if (count == 0)
        return 0;
    n %= count;
    for (int cpu = 0; cpu < CPUS_CAPACITY; cpu++)
        if (cpus_has(cpus, cpu) && n-- == 0)
            return cpu;
    return 0;
}

int hpool__pin_this_thread(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0 ? 0 : HPOOL_ETHREAD;
}

int hpool__set_this_thread_cpus(const hpool__cpus *cpus)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int cpu = 0; cpu < CPU_SETSIZE && cpu < CPUS_CAPACITY; cpu++)
        if (cpus_has(cpus, cpu))
            CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0 ? 0 : HPOOL_ETHREAD;
}

/* Writes the set as a list of ranges, "0-3,8,10-11", into buf. */
static void cpus_format(const hpool__cpus *cpus, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int cpu = 0; cpu < CPUS_CAPACITY; cpu++) {
        if (!cpus_has(cpus, cpu))
            continue;
        int last = cpu;
        while (cpus_has(cpus, last + 1))
            last++;
        int written = last == cpu ? snprintf(buf + used, size - used, "%s%d", used ? "," : "", cpu)
                                  : snprintf(buf + used, size - used, "%s%d-%d", used ? "," : "", cpu, last);
        if (written < 0 || (size_t)written >= size - used)
            return; /* cut short; still NUL-terminated */
        used += (size_t)written;
        cpu = last;
    }
}

/* ---- Threads per rank -------------------------------------------------- */

/* Slurm's tasks on node `node` of a step, from a list such as "2(x3),1"
 * (two tasks on each of the first three nodes, one on the fourth); 0 if the
 * list does not say. */
static int slurm_tasks_on_node(const char *list, int node)
{
    if (list == NULL || node < 0)
        return 0;
    const char *at = list;
    while (*at != '\0') {
        char *end;
        long tasks = strtol(at, &end, 10);
        if (end == at || tasks <= 0)
            return 0;
        long repeat = 1;
        if (end[0] == '(' && end[1] == 'x') {
            repeat = strtol(end + 2, &end, 10);
            if (repeat <= 0 || *end != ')')
                return 0;
            end++;
        }
        if (node < repeat)
            return tasks > 4096 ? 0 : (int)tasks;
        node -= (int)repeat;
        if (*end != ',')
            return 0;
        at = end + 1;
    }
    return 0;
}

/* How many ranks of this job the launcher started on this node; 1 if it
 * does not say (a plain run). */
static int ranks_on_this_node(void)
{
    int ranks = positive_from_env("OMPI_COMM_WORLD_LOCAL_SIZE"); /* Open MPI's mpirun */
    if (ranks > 0)
        return ranks;
    const char *node = getenv("SLURM_NODEID"); /* srun: this node's index in the step */
    ranks = slurm_tasks_on_node(getenv("SLURM_STEP_TASKS_PER_NODE"), node ? atoi(node) : -1);
    if (ranks > 0)
        return ranks;
    ranks = positive_from_env("MPI_LOCALNRANKS"); /* MPICH's hydra */
    return ranks > 0 ? ranks : 1;
}

/* Whether the launcher gave each rank CPUs of its own rather than letting
 * every rank on the node share one mask. */
static bool launcher_bound_ranks(void)
{
    const char *open_mpi = getenv("OMPI_MCA_orte_bound_at_launch"); /* mpirun --bind-to core, socket... */
    if (open_mpi != NULL && strcmp(open_mpi, "1") == 0)
        return true;
    const char *mpich = getenv("HYDRA_USER_PROVIDED_BINDING"); /* mpiexec.mpich -bind-to core... */
    if (mpich != NULL && strcmp(mpich, "1") == 0)
        return true;
    const char *slurm = getenv("SLURM_CPU_BIND_TYPE"); /* srun --cpu-bind=cores, mask_cpu:... */
    return slurm != NULL && *slurm != '\0' && strncmp(slurm, "none", 4) != 0;
}

/* The CPUs of this node that the job may use: what Slurm allocated on it,
 * or every online CPU. */
static int cpus_of_this_node(void)
{
    int cpus = positive_from_env("SLURM_CPUS_ON_NODE");
    if (cpus > 0)
        return cpus;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (int)online : 1;
}

static int share_of_cpus(const hpool__cpus *cpus);

int hpool__resolve_threads(int requested, const hpool__cpus *cpus, int *threads, const char **origin)
{
    *threads = requested;
    *origin = "options.threads";
    if (requested > 0)
        return 0;
    /* HPOOL_THREADS is hpool's own: a value that is not a count is an
     * error, not a silent fall-through to the next source. OMP_NUM_THREADS
     * is OpenMP's, which warns of a bad value itself (and ignores it, as we
     * do); SLURM_CPUS_PER_TASK is Slurm's. */
    long value;
    int rc = hpool__env_positive("HPOOL_THREADS", &value);
    if (rc != 0)
        return rc;
    *origin = "HPOOL_THREADS";
    *threads = value > INT_MAX ? INT_MAX : (int)value;
    if (value > 0)
        return 0;
    static const char *const variables[] = {"OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK"};
    for (size_t i = 0; i < sizeof variables / sizeof variables[0]; i++) {
        *origin = variables[i];
        *threads = positive_from_env(variables[i]);
        if (*threads > 0)
            return 0;
    }
    *origin = "this rank's share of its CPUs";
    *threads = share_of_cpus(cpus);
    return 0;
}

static int share_of_cpus(const hpool__cpus *cpus)
{
    /* Our share of the affinity mask. Unbound ranks on a node all have the
     * same mask, so each gets its part of it. A bound rank has a mask of
     * its own, but launchers also bind several ranks to one socket (Open
     * MPI's default above two ranks), so it takes no more than the node's
     * CPUs divided by its ranks either. */
    int mask_cpus = hpool__cpus_count(cpus);
    int ranks = ranks_on_this_node();
    int share = (launcher_bound_ranks() ? cpus_of_this_node() : mask_cpus) / ranks;
    int threads = share < mask_cpus ? share : mask_cpus;
    return threads > 0 ? threads : 1;
}

/* ---- Can the threads start? ------------------------------------------ */

/* Probe threads wait here until every one has started, so they all live at
 * once, as the team's will. */
struct hpool__thread_probe {
    pthread_mutex_t lock;
    pthread_cond_t released;
    bool release;
    int created;
    pthread_t *threads;
};

static void *probe_thread(void *argument)
{
    hpool__thread_probe *probe = argument;
    pthread_mutex_lock(&probe->lock);
    while (!probe->release)
        pthread_cond_wait(&probe->released, &probe->lock);
    pthread_mutex_unlock(&probe->lock);
    return NULL;
}

/* The system's limits on threads, for a detail: "RLIMIT_NPROC 100
 * (ulimit -u...), kernel.threads-max 63432", and the address space and
 * stack size when they are limited (each thread's stack needs room). */
static void describe_thread_limits(char *text, size_t size)
{
    struct rlimit limit;
    char processes[32] = "unlimited", kernel[32] = "unknown", memory[96] = "";
    if (getrlimit(RLIMIT_NPROC, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
        snprintf(processes, sizeof processes, "%llu", (unsigned long long)limit.rlim_cur);
    if (getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
        struct rlimit stack = {0, 0};
        getrlimit(RLIMIT_STACK, &stack);
        snprintf(memory, sizeof memory, ", RLIMIT_AS %llu KiB (ulimit -v) for stacks of %llu KiB (ulimit -s)",
                 (unsigned long long)limit.rlim_cur >> 10,
                 stack.rlim_cur == RLIM_INFINITY ? 0ull : (unsigned long long)stack.rlim_cur >> 10);
    }
    FILE *file = fopen("/proc/sys/kernel/threads-max", "r");
    long threads_max;
    if (file != NULL) {
        if (fscanf(file, "%ld", &threads_max) == 1)
            snprintf(kernel, sizeof kernel, "%ld", threads_max);
        fclose(file);
    }
    snprintf(text, size, "RLIMIT_NPROC %s (ulimit -u; not enforced for root), kernel.threads-max %s%s", processes,
             kernel, memory);
}

/* libgomp cannot report a thread it failed to create: it prints "Thread
 * creation failed" and ends the process itself, and with it the caller's
 * program (and, under mpirun, the job). So the count is checked before
 * OpenMP sees it, in two steps:
 *  - a cap, HPOOL__MAX_THREADS (4096) per rank, caught without trying:
 *    more workers than a node has CPUs only queue for them, the largest
 *    nodes have a few thousand, and a count such as 100000 is a typo that
 *    would otherwise spend seconds (and the kernel's map count) on stacks;
 *  - below it, the threads themselves: this many threads with the default
 *    attributes (libgomp's, unless OMP_STACKSIZE or GOMP_STACKSIZE sets
 *    bigger stacks), all alive at once, then joined. Reading the limits
 *    instead would miss some: RLIMIT_NPROC counts the user's threads
 *    across processes (and is not enforced for root), and cgroup pids.max,
 *    kernel.threads-max, vm.max_map_count and RLIMIT_AS each stop thread
 *    creation in their own way; only creating them asks all at once.
 *    It costs about 50 us a thread, once per pool (on 2 cores: 16
 *    threads 0.7 ms, 1000 threads 49 ms, 4096 threads 0.24 s).
 *    Another process may take the last threads between the probe and the
 *    team's start; that race remains.
 * The probe threads of a check that passed are released at once and
 * joined by hpool__thread_probe_end, which the team's first thread calls
 * before its parallel region starts OpenMP's. */
void hpool__thread_probe_end(hpool__thread_probe *probe)
{
    if (probe == NULL)
        return;
    for (int t = 0; t < probe->created; t++)
        pthread_join(probe->threads[t], NULL);
    pthread_cond_destroy(&probe->released);
    pthread_mutex_destroy(&probe->lock);
    free(probe->threads);
    free(probe);
}

int hpool__check_threads(int threads, const char *origin, hpool__thread_probe **passed)
{
    *passed = NULL;
    if (threads > HPOOL__MAX_THREADS)
        return hpool__fail(HPOOL_ETHREAD,
                           "%d worker threads per rank (from %s): hpool's limit is %d threads per rank", threads,
                           origin, HPOOL__MAX_THREADS);
    /* One worker is team_main's own thread, whose start is checked: OpenMP
     * starts no thread for a team of one. */
    if (threads <= 1)
        return 0;
    hpool__thread_probe *probe = hpool__calloc(1, sizeof *probe);
    pthread_t *started = hpool__calloc((size_t)threads, sizeof *started);
    if (probe == NULL || started == NULL) {
        free(probe);
        free(started);
        return hpool__fail(HPOOL_ENOMEM, "no memory to check that %d worker threads can start", threads);
    }
    if (pthread_mutex_init(&probe->lock, NULL) != 0) {
        free(probe);
        free(started);
        return hpool__fail(HPOOL_ETHREAD, "could not make a lock to check that %d worker threads can start",
                           threads);
    }
    if (pthread_cond_init(&probe->released, NULL) != 0) {
        pthread_mutex_destroy(&probe->lock);
        free(probe);
        free(started);
        return hpool__fail(HPOOL_ETHREAD, "could not make a lock to check that %d worker threads can start",
                           threads);
    }
    probe->threads = started;
    int error = 0;
    while (probe->created < threads
           && (error = pthread_create(&started[probe->created], NULL, probe_thread, probe)) == 0)
        probe->created++;
    pthread_mutex_lock(&probe->lock);
    probe->release = true;
    pthread_cond_broadcast(&probe->released);
    pthread_mutex_unlock(&probe->lock);
    if (error == 0) {
        /* Their ending is waited for where it matters, before OpenMP starts
         * its threads (team.c), not here: each must be given a CPU to end,
         * which on a busy machine took milliseconds of pool creation. */
        *passed = probe;
        return 0;
    }
    int created = probe->created;
    hpool__thread_probe_end(probe);
    char limits[256], reason[128];
    describe_thread_limits(limits, sizeof limits);
    return hpool__fail(HPOOL_ETHREAD,
                       "%d worker threads per rank (from %s) cannot start: the system refused thread %d (%s); "
                       "limits: %s",
                       threads, origin, created + 1, strerror_r(error, reason, sizeof reason), limits);
}

int hpool__pin_offset(int threads)
{
    if (launcher_bound_ranks())
        return 0;
    /* Ranks sharing a mask take consecutive runs of its CPUs, in the order
     * of their rank on the node. */
    static const char *const variables[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID"};
    for (size_t i = 0; i < sizeof variables / sizeof variables[0]; i++) {
        const char *text = getenv(variables[i]);
        if (text != NULL && *text != '\0')
            return atoi(text) * threads;
    }
    return 0;
}

bool hpool__launched_by_mpi_launcher(void)
{
    /* Open MPI's mpirun, PMIx (srun --mpi=pmix, prterun), and PMI-1/2
     * launchers (MPICH's hydra, srun --mpi=pmi2) each leave one of these. */
    static const char *const markers[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++)
        if (getenv(markers[i]) != NULL)
            return true;
    return false;
}

/* ---- Pinning and the report -------------------------------------------- */

static bool env_is(const char *name, const char *const *words)
{
    const char *text = getenv(name);
    if (text == NULL)
        return false;
    for (; *words != NULL; words++)
        if (strcasecmp(text, *words) == 0)
            return true;
    return false;
}

static const char *const yes_words[] = {"1", "true", "yes", "on", "close", "print", NULL};
static const char *const no_words[] = {"0", "false", "no", "off", "quiet", "none", NULL};

bool hpool__resolve_bind(int requested)
{
    /* OMP_PROC_BIND=false is the user saying no thread is to be bound; any
     * other OMP_PROC_BIND or OMP_PLACES makes OpenMP bind, which team.c
     * sees and leaves alone. Only the first level of a list matters. */
    const char *proc_bind = getenv("OMP_PROC_BIND");
    if (proc_bind != NULL && strncasecmp(proc_bind, "false", 5) == 0)
        return false;
    if (requested != 0)
        return requested > 0;
    return env_is("HPOOL_BIND", yes_words);
}

static void line_append(char *line, size_t size, const char *format, ...) __attribute__((format(printf, 3, 4)));

/* A yes/no variable that is set must say one of the words, not be
 * silently taken as no (or, for HPOOL_PLACEMENT, as the default). */
static int check_words(const char *name)
{
    const char *text = getenv(name);
    if (text == NULL || *text == '\0' || env_is(name, yes_words) || env_is(name, no_words))
        return 0;
    char words[128] = "";
    for (const char *const *word = yes_words; *word != NULL; word++)
        line_append(words, sizeof words, "%s%s", word == yes_words ? "" : ", ", *word);
    line_append(words, sizeof words, "; or ");
    for (const char *const *word = no_words; *word != NULL; word++)
        line_append(words, sizeof words, "%s%s", word == no_words ? "" : ", ", *word);
    return hpool__fail(HPOOL_EINVAL, "%s is \"%.64s\": give one of %s (or unset it)", name, text, words);
}

int hpool__env_yes_no(const char *name, int *value)
{
    int rc = check_words(name);
    *value = rc != 0 ? -1 : env_is(name, yes_words) ? 1 : env_is(name, no_words) ? 0 : -1;
    return rc;
}

int hpool__check_placement_environment(int bind, int placement)
{
    int rc = bind == 0 ? check_words("HPOOL_BIND") : 0;
    if (rc == 0 && placement == 0)
        rc = check_words("HPOOL_PLACEMENT");
    return rc;
}

enum { PLACEMENT_QUIET = -1, PLACEMENT_WARN = 0, PLACEMENT_PRINT = 1 };

static int resolve_placement(int requested)
{
    if (requested != 0)
        return requested > 0 ? PLACEMENT_PRINT : PLACEMENT_QUIET;
    if (env_is("HPOOL_PLACEMENT", yes_words))
        return PLACEMENT_PRINT;
    if (env_is("HPOOL_PLACEMENT", no_words))
        return PLACEMENT_QUIET;
    return PLACEMENT_WARN;
}

enum { BOUND_BY_NOBODY, BOUND_BY_HPOOL, BOUND_BY_OPENMP };

/* What each rank tells the root; thread_cpus follow when the rank waited
 * for its threads (only to print them). Ranks run the same binary, so the
 * layout is the same everywhere. */
typedef struct placement_record {
    int32_t threads;
    int32_t threads_described; /* thread_cpus that follow */
    int32_t bound_by;
    char host[64];
    hpool__cpus cpus; /* the rank's affinity mask */
} placement_record;

/* Appends to a line, which stays NUL-terminated however long it gets. */
static void line_append(char *line, size_t size, const char *format, ...) __attribute__((format(printf, 3, 4)));
static void line_append(char *line, size_t size, const char *format, ...)
{
    size_t used = strlen(line);
    va_list args;
    va_start(args, format);
    vsnprintf(line + used, size - used, format, args);
    va_end(args);
}

/* One line per rank, written at once: "hpool: placement: rank 1 -> host n2
 * -> cpus 0-3: thread 0 -> cpu 0, thread 1 -> cpu 1 (pinned by hpool)". */
static void print_rank(int rank, const placement_record *record, const hpool__cpus *thread_cpus)
{
    char line[4096] = "", list[256];
    cpus_format(&record->cpus, list, sizeof list);
    line_append(line, sizeof line, "hpool: placement: rank %d -> host %s -> cpu%s %s:", rank, record->host,
                hpool__cpus_count(&record->cpus) == 1 ? "" : "s", list);
    if (record->bound_by == BOUND_BY_NOBODY || record->threads_described == 0) {
        line_append(line, sizeof line, " %d thread%s, not pinned", record->threads, record->threads == 1 ? "" : "s");
    } else {
        for (int t = 0; t < record->threads_described; t++) {
            cpus_format(&thread_cpus[t], list, sizeof list);
            line_append(line, sizeof line, "%s thread %d -> cpu%s %s", t ? "," : "", t,
                        hpool__cpus_count(&thread_cpus[t]) == 1 ? "" : "s", list);
        }
        line_append(line, sizeof line, " (pinned by %s)",
                    record->bound_by == BOUND_BY_HPOOL ? "hpool" : "OpenMP places");
    }
    fprintf(stderr, "%s\n", line);
}

/* Oversubscription is judged per host: the worker threads of all its ranks
 * against the CPUs in the union of their masks. */
static void warn_if_oversubscribed(placement_record **records, int ranks)
{
    /* A process creating several pools learns nothing from the same
     * warning twice; this flag is the one piece of process-wide state. */
    static atomic_flag warned = ATOMIC_FLAG_INIT;
    int hosts_over = 0, first_over = -1;
    long first_threads = 0;
    int first_ranks = 0, first_cpus = 0;
    for (int r = 0; r < ranks; r++) {
        bool seen_before = false;
        for (int q = 0; q < r && !seen_before; q++)
            seen_before = strcmp(records[q]->host, records[r]->host) == 0;
        if (seen_before)
            continue;
        hpool__cpus all = records[r]->cpus;
        long threads = 0;
        int host_ranks = 0;
        for (int q = r; q < ranks; q++) {
            if (strcmp(records[q]->host, records[r]->host) != 0)
                continue;
            for (size_t word = 0; word < sizeof all.bits / sizeof all.bits[0]; word++)
                all.bits[word] |= records[q]->cpus.bits[word];
            threads += records[q]->threads;
            host_ranks++;
        }
        int cpus = hpool__cpus_count(&all);
        if (threads > cpus) {
            if (hosts_over++ == 0) {
                first_over = r;
                first_threads = threads;
                first_ranks = host_ranks;
                first_cpus = cpus;
            }
        }
    }
    if (hosts_over == 0 || atomic_flag_test_and_set(&warned))
        return;
    char others[64] = "";
    if (hosts_over > 1)
        snprintf(others, sizeof others, " (and %d more host%s)", hosts_over - 1, hosts_over > 2 ? "s" : "");
    fprintf(stderr,
            "hpool: warning: %ld worker threads in %d rank%s share %d CPU%s on host %s%s; "
            "set fewer threads (HPOOL_THREADS, --cpus-per-task) or HPOOL_PLACEMENT=quiet\n",
            first_threads, first_ranks, first_ranks == 1 ? "" : "s", first_cpus, first_cpus == 1 ? "" : "s",
            records[first_over]->host, others);
}

int hpool__placement_report(hpool_pool *pool, int requested)
{
    int mode = resolve_placement(requested);
    hpool__team *team = &pool->team;
    /* Threads are only waited for to print where they run: pool creation
     * need not wait for every thread otherwise. */
    int described = 0;
    if (mode == PLACEMENT_PRINT && team->started) {
        hpool__team_wait_started(team);
        described = team->threads_ready;
    }
    if (team->thread_cpus == NULL)
        described = 0;
    size_t size = sizeof(placement_record) + (size_t)described * sizeof(hpool__cpus);
    placement_record *mine = hpool__calloc(1, size);
    /* Short of memory, this rank still takes part in the gather, without
     * its threads' CPUs, and fails after: the other ranks must not wait. */
    placement_record bare;
    int local_rc = 0;
    if (mine == NULL) {
        memset(&bare, 0, sizeof bare);
        mine = &bare;
        described = 0;
        size = sizeof bare;
        local_rc = HPOOL_ENOMEM;
    }
    mine->threads = team->started ? pool->thread_count : 0;
    mine->threads_described = described;
    mine->bound_by = described == 0 ? BOUND_BY_NOBODY
                     : team->openmp_bound ? BOUND_BY_OPENMP
                     : team->pin          ? BOUND_BY_HPOOL
                                          : BOUND_BY_NOBODY;
    if (gethostname(mine->host, sizeof mine->host - 1) != 0)
        strcpy(mine->host, "?");
    mine->cpus = team->cpus;
    if (described > 0)
        memcpy(mine + 1, team->thread_cpus, (size_t)described * sizeof(hpool__cpus));


    void *all = NULL;
    size_t *sizes = NULL;
    int rc = hpool__transport_gather(&pool->transport, pool->root, mine, size, &all, &sizes);
    if (mine != &bare)
        free(mine);
    if (rc == 0)
        rc = local_rc;
    if (rc != 0 || !hpool_pool_is_root(pool)) {
        free(all);
        free(sizes);
        return rc;
    }
    int ranks = pool->transport.size;
    placement_record **records = hpool__malloc((size_t)ranks * sizeof *records);
    if (records == NULL) {
        free(all);
        free(sizes);
        return HPOOL_ENOMEM;
    }
    size_t offset = 0;
    for (int r = 0; r < ranks; r++) {
        records[r] = (placement_record *)((unsigned char *)all + offset);
        if (sizes[r] < sizeof(placement_record)
            || sizes[r] != sizeof(placement_record) + (size_t)records[r]->threads_described * sizeof(hpool__cpus))
            rc = HPOOL_EPEER;
        else
            records[r]->host[sizeof records[r]->host - 1] = '\0';
        offset += sizes[r];
    }
    /* The scheduler gives each rank work for the threads it really has. */
    pool->total_threads = 0;
    for (int r = 0; rc == 0 && r < ranks; r++) {
        pool->loads[r].threads = records[r]->threads > 0 ? records[r]->threads : 1;
        pool->total_threads += (uint64_t)pool->loads[r].threads;
        /* for naming a rank in errors (a stalled rank's host) */
        snprintf(pool->loads[r].host, sizeof pool->loads[r].host, "%s", records[r]->host);
    }
    if (rc == 0 && mode != PLACEMENT_QUIET)
        warn_if_oversubscribed(records, ranks);
    if (rc == 0 && mode == PLACEMENT_PRINT)
        for (int r = 0; r < ranks; r++)
            print_rank(r, records[r], (const hpool__cpus *)(records[r] + 1));
    free(records);
    free(all);
    free(sizes);
    return rc;
}

void hpool__prepare_engine_thread(void)
{
    /* Linux lets a timed wait end up to the thread's timer slack late, 50 µs
     * by default; an engine's polls are waits of 16 to 256 µs, so that
     * slack made every round trip to another rank three times longer. */
    prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
    /* A name that top -H and gdb show beside the OpenMP workers. */
    pthread_setname_np(pthread_self(), "hpool-engine");
}
