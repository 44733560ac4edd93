/* main.c: metatags' command line: extracts <meta .*?> tags (or any PCRE2 pattern) from many pages on an hpool pool. */
#define _GNU_SOURCE /* getopt_long */
#include "metatags.h"

#include "app_cli.h"
#include "app_stop.h"

#include <errno.h>
#include <getopt.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: metatags [options] INPUT...\n"
    "\n"
    "Prints every match of a regular expression, <meta .*?> by default, in many\n"
    "HTML pages, exactly as Python's re.findall(rb\"<meta .*?>\", page) finds them\n"
    "in the page's bytes: leftmost, non-overlapping, '.' not matching a newline.\n"
    "The pages are read on a pool of worker threads in one or more MPI ranks.\n"
    "\n"
    "INPUT is one of:\n"
    "  FILE            an HTML page: a regular file (a FIFO, socket or device is\n"
    "                  reported and skipped, never read)\n"
    "  DIRECTORY       every file under it whose name ends in .html or .htm,\n"
    "                  recursively, symbolic links followed, in bytewise order\n"
    "                  of their paths; one so named that is not a regular file\n"
    "                  is reported and skipped\n"
    "  @LIST           each line of the file LIST is an INPUT (not an @LIST);\n"
    "                  @- reads the list from stdin; a line ending in .html or\n"
    "                  .htm is read as a page (a directory so named is reported)\n"
    "  URL             an http:// or https:// page, fetched with libcurl\n"
    "\n"
    "output (stdout):\n"
    "  default         PATH<TAB>MATCH per match: pages in input order, matches\n"
    "                  in page order; raw bytes, like grep -o (a TAB or newline\n"
    "                  in a path or match makes the line ambiguous: use\n"
    "                  --format tsv or jsonl to parse it back)\n"
    "  --unordered     the same lines, pages in the order they complete; each\n"
    "                  page's lines stay together\n"
    "  --count         COUNT<TAB>MATCH per distinct match, by count descending,\n"
    "                  then by the match's bytes; the same for any number of\n"
    "                  ranks and threads; MATCH raw, or escaped by --format tsv\n"
    "  --format tsv    the same lines with TAB, newline, CR and backslash in\n"
    "                  PATH and MATCH written as \\t, \\n, \\r and \\\\ (PostgreSQL's\n"
    "                  COPY text format): split at the one TAB, then unescape\n"
    "  --format jsonl  one JSON object per line instead: {\"path\":...,\"match\":...}\n"
    "                  or {\"match\":...,\"count\":N}. Strings are the bytes as\n"
    "                  UTF-8; a byte that is not part of valid UTF-8 is written\n"
    "                  as \\udcXX (U+DC00 + the byte, Python's surrogateescape),\n"
    "                  so json.loads(line)[\"match\"].encode(\"utf-8\",\n"
    "                  \"surrogateescape\") gives back the exact bytes.\n"
    "  --format raw    the default\n"
    "\n"
    "options:\n"
    "  --pattern REGEX PCRE2 syntax, matched against bytes (no UTF mode unless it\n"
    "                  starts with (*UTF)), with\n"
    "                  newline = \\n; prints whole matches, groups ignored\n"
    "  -i, --ignore-case  caseless (ASCII letters)\n"
    "  --progress      a progress line on stderr: pages done / total, MB/s, ETA;\n"
    "                  on by default when stderr is a terminal\n"
    "  --no-progress   no progress line\n"
    "  --timeout S     seconds allowed per URL (default 30)\n"
    "  --max-page-size N  bytes a page may have, read or fetched (decompressed),\n"
    "                  with K, M or G for KiB, MiB, GiB (default 64M); a larger\n"
    "                  one is reported and skipped. A task's fetched bodies\n"
    "                  together hold at most twice this: transfers wait for room\n"
    "  --journal FILE  record completed pages in FILE; a rerun of the same command\n"
    "                  with the same FILE prints the whole output of an\n"
    "                  uninterrupted run, reading only the pages that had not\n"
    "                  completed; a FILE written for other options or other\n"
    "                  pages (paths, sizes, modification times) is refused\n"
    "  --chunksize C   pages per task; URLs in one task are fetched at once, so\n"
    "                  with URLs C is also the transfers per worker thread\n"
    "                  (default for URLs: 32; for files the pool adapts it)\n"
    "  --threads T     worker threads per rank (default: HPOOL_THREADS,\n"
    "                  OMP_NUM_THREADS, SLURM_CPUS_PER_TASK, or the CPUs this\n"
    "                  process may use)\n"
    "  -h, --help      print this help and exit\n"
    "  --version       print the version and exit\n"
    "\n"
    "bad input: each of these gets a line 'metatags: INPUT: why' on stderr, and\n"
    "every other page's matches are still printed: a missing or unreadable\n"
    "file, a FIFO, socket or device, a page over --max-page-size, a directory\n"
    "given as @LIST, a @LIST line over 1 MiB or with a NUL byte (the rest of\n"
    "the list is read), a directory loop, a URL that fails or times out (HTTP\n"
    "status >= 400 fails), out of memory (named as such), an empty page, a\n"
    "binary page (a NUL byte) or one that is not UTF-8 (both still searched as\n"
    "bytes, their matches printed), a tag left open for over 1 MiB of its line,\n"
    "and a page where PCRE2's match limit stops a pattern that backtracks too\n"
    "much (the matches before it are printed). In INPUT, TAB, newline, CR and\n"
    "backslash are written \\t, \\n, \\r and \\\\, other control bytes \\xNN.\n"
    "\n"
    "MPI: started by mpirun or srun, rank 0 reads the inputs and prints; every\n"
    "rank's threads read, fetch and match pages.\n"
    "\n"
    "exit status:\n"
    "  0  every input was read and searched without a report\n"
    "  1  some input was reported on stderr (skipped, or searched with a\n"
    "     warning), or a run-time error occurred\n"
    "     (a --journal that cannot be read, written or synced, too)\n"
    "  2  usage error: unknown option, bad value, no INPUT, invalid pattern\n"
    "     (with PCRE2's message and the offset in the pattern), or a --journal\n"
    "     written for other options or other pages\n"
    "  75 stopped by SIGTERM, SIGINT, SIGUSR1 or SIGUSR2 (under mpirun, send\n"
    "     SIGUSR1: mpirun forwards it): the pages completed before the stop are\n"
    "     printed, in input order up to the first page that did not run\n"
    "     (--count prints nothing), and one line on stderr says how far it got;\n"
    "     rerun with the same --journal to resume. A second signal stops at once\n";

typedef struct settings {
    bool count, unordered, caseless, help, version;
    int progress; /* 1 on, 0 off, -1 when stderr is a terminal */
    enum output_format format;
    const char *pattern;
    const char *journal; /* --journal: NULL for none */
    size_t chunksize;
    int threads;
    long timeout_ms;
    size_t max_page_size;
    char **inputs;
    int input_count;
    char error[512]; /* a usage error, printed by rank 0 only */
} settings;

/* A byte count: digits, then K, M or G (powers of 1024), at most 2^40. */
static bool parse_size(const char *text, size_t *value)
{
    char *end;
    errno = 0;
    if (text[0] < '0' || text[0] > '9')
        return false;
    unsigned long long parsed = strtoull(text, &end, 10);
    int shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10;
    else if (*end == 'M' || *end == 'm')
        shift = 20;
    else if (*end == 'G' || *end == 'g')
        shift = 30;
    if (shift > 0)
        end++;
    const unsigned long long most = 1ull << 40;
    if (errno != 0 || *end != '\0' || parsed < 1 || parsed > most >> shift)
        return false;
    *value = (size_t)(parsed << shift);
    return true;
}

static bool parse_positive(const char *text, long long max, long long *value)
{
    char *end;
    errno = 0;
    long long parsed = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || parsed < 1 || parsed > max)
        return false;
    *value = parsed;
    return true;
}

/* Fills settings; a usage error goes into settings->error, not to stderr,
 * because every rank parses and only one should speak. */
static void parse_arguments(int argc, char **argv, settings *settings)
{
    enum { OPT_COUNT = 256, OPT_UNORDERED, OPT_FORMAT, OPT_PATTERN, OPT_PROGRESS, OPT_NO_PROGRESS,
           OPT_TIMEOUT, OPT_CHUNKSIZE, OPT_THREADS, OPT_MAX_PAGE_SIZE, OPT_VERSION, OPT_JOURNAL };
    static const struct option long_options[] = {
        {"count", no_argument, NULL, OPT_COUNT},
        {"unordered", no_argument, NULL, OPT_UNORDERED},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"pattern", required_argument, NULL, OPT_PATTERN},
        {"ignore-case", no_argument, NULL, 'i'},
        {"progress", no_argument, NULL, OPT_PROGRESS},
        {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"chunksize", required_argument, NULL, OPT_CHUNKSIZE},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"max-page-size", required_argument, NULL, OPT_MAX_PAGE_SIZE},
        {"journal", required_argument, NULL, OPT_JOURNAL},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    settings->pattern = "<meta .*?>";
    settings->progress = -1;
    settings->timeout_ms = 30000;
    settings->max_page_size = METATAGS_DEFAULT_MAX_PAGE_SIZE;
    opterr = 0;
    int option;
    long long value;
    while ((option = getopt_long(argc, argv, ":ih", long_options, NULL)) != -1) {
        switch (option) {
        case OPT_COUNT: settings->count = true; break;
        case OPT_UNORDERED: settings->unordered = true; break;
        case OPT_FORMAT:
            if (strcmp(optarg, "raw") == 0)
                settings->format = FORMAT_RAW;
            else if (strcmp(optarg, "tsv") == 0)
                settings->format = FORMAT_TSV;
            else if (strcmp(optarg, "jsonl") == 0)
                settings->format = FORMAT_JSONL;
            else
                snprintf(settings->error, sizeof settings->error, "--format takes raw, tsv or jsonl, not '%s'", optarg);
            break;
        case OPT_PATTERN: settings->pattern = optarg; break;
        case 'i': settings->caseless = true; break;
        case OPT_PROGRESS: settings->progress = 1; break;
        case OPT_NO_PROGRESS: settings->progress = 0; break;
        case OPT_TIMEOUT: {
            char *end;
            double seconds = strtod(optarg, &end);
            if (end == optarg || *end != '\0' || !(seconds > 0) || seconds > 86400)
                snprintf(settings->error, sizeof settings->error, "--timeout takes seconds in (0, 86400], not '%s'",
                         optarg);
            else
                settings->timeout_ms = (long)(seconds * 1000 + 0.5) > 0 ? (long)(seconds * 1000 + 0.5) : 1;
            break;
        }
        case OPT_CHUNKSIZE:
            if (parse_positive(optarg, 1 << 30, &value))
                settings->chunksize = (size_t)value;
            else
                snprintf(settings->error, sizeof settings->error, "--chunksize takes an integer >= 1, not '%s'",
                         optarg);
            break;
        case OPT_THREADS:
            if (parse_positive(optarg, 4096, &value))
                settings->threads = (int)value;
            else
                snprintf(settings->error, sizeof settings->error, "--threads takes an integer in 1..4096, not '%s'",
                         optarg);
            break;
        case OPT_MAX_PAGE_SIZE:
            if (!parse_size(optarg, &settings->max_page_size))
                snprintf(settings->error, sizeof settings->error,
                         "--max-page-size takes bytes in 1..2^40, with K, M or G for KiB, MiB or GiB, not '%s'",
                         optarg);
            break;
        case 'h': settings->help = true; break;
        case OPT_VERSION: settings->version = true; break;
        case OPT_JOURNAL:
            if (optarg[0] == '\0')
                snprintf(settings->error, sizeof settings->error, "--journal needs a file name");
            settings->journal = optarg;
            break;
        case ':':
            snprintf(settings->error, sizeof settings->error, "option '%s' needs a value", argv[optind - 1]);
            break;
        default:
            /* A short option inside a word (-q.html) leaves optind on that
             * word, or past it when it was the word's last letter: optopt
             * names it either way. A long one has no optopt. */
            if (optopt != 0)
                snprintf(settings->error, sizeof settings->error, "unknown option '-%c'", optopt);
            else
                snprintf(settings->error, sizeof settings->error, "unknown option '%s'", argv[optind - 1]);
            break;
        }
        if (settings->error[0] != '\0')
            return;
    }
    settings->inputs = argv + optind;
    settings->input_count = argc - optind;
    if (settings->help || settings->version)
        return;
    if (settings->count && settings->unordered)
        snprintf(settings->error, sizeof settings->error, "--count and --unordered exclude each other");
    else if (settings->input_count == 0)
        snprintf(settings->error, sizeof settings->error, "no INPUT given");
}

/* ---- The run, on the root --------------------------------------------- */

typedef struct run_state {
    const settings *settings;
    const input_list *inputs;
    progress *progress;
    atomic_bool any_reported; /* also set by the pool thread of error_callback */
    hpool_pool *pool;
} run_state;

static void on_progress(uint64_t first, uint64_t count, void *user)
{
    run_state *run = user;
    progress_items_done(run->progress, first, count);
}

/* Prints each line of a page's report. */
static void report_lines(run_state *run, const char *path, const char *lines, size_t size)
{
    while (size > 0) {
        const char *newline = memchr(lines, '\n', size);
        size_t length = newline != NULL ? (size_t)(newline - lines) : size;
        char line[1100];
        snprintf(line, sizeof line, "%.*s", (int)length, lines);
        progress_report(run->progress, path, line);
        size_t step = newline != NULL ? length + 1 : length;
        lines += step;
        size -= step;
    }
    run->any_reported = true;
}

static void report_item_failure(run_state *run, uint64_t index, int code)
{
    char why[128];
    snprintf(why, sizeof why, "could not be processed: %s", code < 0 ? hpool_strerror(code) : "worker set-up failed");
    progress_report(run->progress, run->inputs->names[index], why);
    run->any_reported = true;
}

/* A page's record, as worker.c writes it, printed. */
static int print_record(run_state *run, uint64_t index, const uint8_t *record, size_t size)
{
    const char *path = run->inputs->names[index];
    size_t path_size = run->inputs->lengths[index];
    uint32_t report_size;
    if (size < sizeof report_size)
        return -1;
    memcpy(&report_size, record, sizeof report_size);
    size_t at = sizeof report_size;
    if (report_size > size - at)
        return -1;
    if (report_size > 0)
        report_lines(run, path, (const char *)record + at, report_size);
    at += report_size;
    int status = 0;
    flockfile(stdout); /* once a page, not four times a match (output.c) */
    while (at < size) {
        uint32_t match_size;
        if (size - at < sizeof match_size) {
            status = -1;
            break;
        }
        memcpy(&match_size, record + at, sizeof match_size);
        at += sizeof match_size;
        if (match_size > size - at) {
            status = -1;
            break;
        }
        output_match(stdout, run->settings->format, path, path_size, record + at, match_size);
        at += match_size;
    }
    funlockfile(stdout);
    return status;
}

static int run_streams(hpool_pool *pool, hpool_call *call, run_state *run, hpool_report *report)
{
    hpool_iter *iter;
    int rc = run->settings->unordered ? hpool_imap_unordered(pool, call, &iter) : hpool_imap(pool, call, &iter);
    if (rc != 0)
        return rc;
    hpool_result result;
    /* After a stop, in input order, the first page that did not run ends
     * the output: pages after it would leave a gap that a rerun with the
     * journal could not fill in place. The rest is still read, to the end. */
    bool gap = false;
    while ((rc = hpool_iter_next(iter, &result, -1)) == 0) {
        if (result.status == HPOOL_ECANCELED && hpool_pool_stopped(pool, NULL) != 0) {
            gap = !run->settings->unordered;
            continue;
        }
        if (gap)
            continue;
        if (result.status != 0)
            report_item_failure(run, result.index, result.status);
        else if (print_record(run, result.index, result.data, result.size) != 0)
            report_item_failure(run, result.index, HPOOL_EINVAL);
    }
    if (rc == HPOOL_EOF)
        rc = hpool_iter_report(iter, report);
    else if (rc == HPOOL_ESTOPPED)
        hpool_iter_report(iter, report); /* the counts of the stop's line */
    hpool_iter_free(iter);
    return rc == HPOOL_EFAILED ? 0 : rc; /* failed items were reported one by one */
}

static uint64_t be64(const uint8_t *bytes)
{
    uint64_t value = 0;
    for (int b = 0; b < 8; b++)
        value = value << 8 | bytes[b];
    return value;
}

/* Reports ("E" keys) first, in page order; then matches ("M" keys) by
 * count descending, then by bytes. */
static int compare_counted(const hpool_pair *a, const hpool_pair *b, void *user)
{
    (void)user;
    const uint8_t *key_a = a->key, *key_b = b->key;
    if (key_a[0] != key_b[0])
        return key_a[0] < key_b[0] ? -1 : 1;
    if (key_a[0] == 'M') {
        uint64_t count_a, count_b;
        memcpy(&count_a, a->value, sizeof count_a);
        memcpy(&count_b, b->value, sizeof count_b);
        if (count_a != count_b)
            return count_a > count_b ? -1 : 1;
    }
    size_t common = a->key_size < b->key_size ? a->key_size : b->key_size;
    int order = memcmp(key_a, key_b, common);
    if (order != 0)
        return order;
    return a->key_size < b->key_size ? -1 : a->key_size > b->key_size;
}

static int run_count(hpool_pool *pool, hpool_call *call, run_state *run, hpool_report *report)
{
    hpool_pairs *pairs = NULL;
    call->pairs = &pairs;
    call->reducer = 0;
    /* A stopped count is only part of one: no pair is printed. */
    int rc = hpool_map_reduce_keyed(pool, call, report);
    if (rc != 0 && rc != HPOOL_EFAILED) {
        hpool_pairs_free(pairs);
        return rc;
    }
    uint64_t count = hpool_pairs_count(pairs);
    for (uint64_t i = 0; i < count; i++) {
        hpool_pair pair;
        hpool_pairs_get(pairs, i, &pair);
        const uint8_t *key = pair.key;
        if (key[0] == 'E' && pair.key_size >= 9) {
            uint64_t index = be64(key + 1);
            if (index < run->inputs->count)
                report_lines(run, run->inputs->names[index], (const char *)key + 9, pair.key_size - 9);
            continue;
        }
        uint64_t matches;
        memcpy(&matches, pair.value, sizeof matches);
        output_count(stdout, run->settings->format, key + 1, pair.key_size - 1, matches);
    }
    hpool_pairs_free(pairs);
    return rc == HPOOL_EFAILED ? 0 : rc;
}

static void on_item_failed(uint64_t index, int code, void *user)
{
    run_state *run = user;
    /* A stop's canceled pages are said once, in its line. */
    if (code == HPOOL_ECANCELED && hpool_pool_stopped(run->pool, NULL) != 0)
        return;
    report_item_failure(user, index, code);
}

/* What decides the output beyond what hpool sees (the pages' names): the
 * options that change what is printed, and each file's size and time, so
 * that a journal of pages since edited is refused. A URL is only its name:
 * nothing tells whether its page changed. */
static void make_journal_key(const settings *settings, const input_list *inputs, app_journal_key *key)
{
    app_journal_key_add(key, "program", "metatags");
    app_journal_key_add(key, "output", settings->count ? "count" : settings->unordered ? "unordered" : "ordered");
    static const char *const format_names[] = {[FORMAT_RAW] = "raw", [FORMAT_TSV] = "tsv", [FORMAT_JSONL] = "jsonl"};
    app_journal_key_add(key, "format", format_names[settings->format]); /* by name: the refusal quotes it */
    app_journal_key_add(key, "pattern", settings->pattern);
    app_journal_key_add_number(key, "ignore-case", settings->caseless);
    app_journal_key_add_number(key, "max-page-size", (long long)settings->max_page_size);
    app_journal_key_add_number(key, "timeout-ms", settings->timeout_ms);
    for (size_t i = 0; i < inputs->count; i++) {
        if (input_is_url(inputs->names[i]))
            app_journal_key_add(key, "url", inputs->names[i]);
        else
            app_journal_key_add_file(key, "page", inputs->names[i]);
    }
}

/* Expands the inputs and runs the call; the exit status. */
static int run_root(hpool_pool *pool, const settings *settings)
{
    bool progress_on = settings->progress == 1 || (settings->progress == -1 && isatty(STDERR_FILENO));
    input_list inputs = {.want_sizes = progress_on}; /* only the progress line shows MB */
    inputs_stop_with(pool);
    int listed = inputs_expand(&inputs, settings->inputs, settings->input_count);
    if (listed != 0) {
        if (listed < 0)
            fprintf(stderr, "metatags: out of memory while listing the inputs\n");
        inputs_free(&inputs);
        return listed < 0 ? EXIT_SOME_FAILED
                          : app_report_stopped(pool, "metatags", 0, 0, "pages", settings->journal);
    }
    run_state run = {settings, &inputs, progress_create(&inputs, progress_on), inputs.failures > 0, pool};
    int rc = 0;
    hpool_report report = {0};
    app_journal_key key = {0};
    if (inputs.count > 0 && settings->journal != NULL) {
        make_journal_key(settings, &inputs, &key);
        if (key.failed)
            rc = HPOOL_ENOMEM;
    }
    if (inputs.count > 0 && rc == 0) {
        hpool_source *source;
        rc = hpool_source_records(&source, (const void *const *)inputs.names, inputs.lengths, inputs.count);
        if (rc == 0) {
            hpool_call call = HPOOL_CALL_INIT;
            call.function = 0;
            call.source = source;
            call.chunksize = settings->chunksize > 0 ? settings->chunksize : inputs.has_urls ? 32 : 0;
            call.progress = on_progress;
            call.user = &run;
            if (settings->journal != NULL) {
                call.journal = settings->journal;
                call.journal_key = key.bytes;
                call.journal_key_size = key.size;
            }
            if (settings->count) {
                call.error_callback = on_item_failed;
                rc = run_count(pool, &call, &run, &report);
            } else {
                rc = run_streams(pool, &call, &run, &report);
            }
            hpool_source_free(source);
        }
    }
    progress_finish(run.progress);
    progress_free(run.progress);
    app_journal_key_free(&key);
    uint64_t page_count = inputs.count;
    inputs_free(&inputs);
    if (rc == HPOOL_ESTOPPED)
        return app_report_stopped(pool, "metatags", report.items - report.canceled,
                                  report.items != 0 ? report.items : page_count, "pages", settings->journal);
    int journal_status = app_journal_failure("metatags", settings->journal, rc);
    if (journal_status >= 0)
        return journal_status;
    if (rc != 0) {
        app_print_error("metatags", NULL, rc);
        return EXIT_SOME_FAILED;
    }
    return run.any_reported ? EXIT_SOME_FAILED : EXIT_ALL_GOOD;
}

int main(int argc, char **argv)
{
    app_hold_stop_signals(); /* before MPI_Init, which a forwarded signal may interrupt */
    int rc = hpool_mpi_init(&argc, &argv);
    if (rc != 0) {
        app_print_error("metatags", NULL, rc);
        return EXIT_SOME_FAILED;
    }
    bool speaker = app_speaks_for_all_ranks();
    settings settings = {0};
    parse_arguments(argc, argv, &settings);
    static worker_config config;
    config.timeout_ms = settings.timeout_ms;
    config.max_page_size = settings.max_page_size;
    if (settings.error[0] == '\0' && !settings.help && !settings.version) {
        char why[300];
        if (scan_pattern_compile(&config.pattern, settings.pattern, settings.caseless, why, sizeof why) != 0)
            snprintf(settings.error, sizeof settings.error, "invalid pattern '%s': %s", settings.pattern, why);
    }
    int status;
    if (settings.help) {
        if (speaker)
            fputs(usage_text, stdout);
        status = EXIT_ALL_GOOD;
    } else if (settings.version) {
        app_print_version("metatags");
        status = EXIT_ALL_GOOD;
    } else if (settings.error[0] != '\0') {
        app_usage_error("metatags", "%s", settings.error);
        status = EXIT_USAGE;
    } else {
        static char stdout_buffer[1 << 20];
        setvbuf(stdout, stdout_buffer, _IOFBF, sizeof stdout_buffer);
        const hpool_function functions[] = {
            {.name = "metatags.pages", .span = worker_map_pages, .init = worker_init, .fini = worker_fini,
             .user = &config},
        };
        const hpool_keyed_reducer counters[] = {
            {.name = "metatags.count", .value_size = sizeof(uint64_t), .combine = hpool_combine_sum_u64,
             .compare = compare_counted},
        };
        hpool_options options = HPOOL_OPTIONS_INIT;
        options.threads = settings.threads;
        options.functions = functions;
        options.function_count = 1;
        options.keyed_reducers = counters;
        options.keyed_reducer_count = 1;
        hpool_pool *pool;
        rc = hpool_pool_create(&pool, &options);
        if (rc != 0) {
            app_print_error("metatags", "cannot start the pool", rc);
            status = EXIT_SOME_FAILED;
        } else {
            rc = app_stop_on_signals(pool);
            if (rc != 0) {
                app_print_error("metatags", "cannot catch the signals that stop it", rc);
                status = EXIT_SOME_FAILED;
            } else {
                status = hpool_pool_is_root(pool) ? run_root(pool, &settings) : EXIT_ALL_GOOD;
            }
            rc = hpool_pool_join(pool);
            if (rc == HPOOL_ESTOPPED)
                rc = 0; /* the root's call said it once, with its counts */
            if (rc != 0) {
                app_print_error("metatags", NULL, rc);
                status = EXIT_SOME_FAILED;
            }
            hpool_pool_free(pool);
        }
        if (fflush(stdout) != 0) {
            fprintf(stderr, "metatags: write error: %s\n", strerror(errno));
            status = EXIT_SOME_FAILED;
        }
        libcurl_unload(); /* the first URL loaded it (fetch.c, libcurl.c) */
    }
    scan_pattern_free(&config.pattern);
    hpool_mpi_finalize();
    return status;
}
