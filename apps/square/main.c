/* main.c: square's command line on getopt_long: its options, --help, usage errors and exit statuses. */
#define _GNU_SOURCE /* getopt_long */
#include "square.h"

#include "app_cli.h"
#include "app_stop.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char usage_text[] =
    "usage: square [options] N\n"
    "       square [options] --input FILE\n"
    "\n"
    "Squares the integers 1..N, or the integers in FILE (one per line), on a\n"
    "pool of worker threads in one or more MPI ranks, and prints one square per\n"
    "line in input order.\n"
    "\n"
    "options:\n"
    "  --unordered     print \"x<TAB>x squared\" lines as items complete, in any\n"
    "                  order, instead of squares in input order; a bad line\n"
    "                  prints nothing\n"
    "  --sum           print only the sum of the squares, modulo 2^64 (unsigned\n"
    "                  64-bit wrap-around); no per-item output; bad lines are\n"
    "                  left out of the sum\n"
    "  --input FILE    square the integers in FILE instead of 1..N; \"-\" reads\n"
    "                  stdin. Each line holds one integer in\n"
    "                  -9223372036854775808..9223372036854775807, optionally\n"
    "                  signed and surrounded by spaces or tabs, in at most 4096\n"
    "                  bytes; CRLF line ends are accepted. The file is read\n"
    "                  lazily, in bounded memory, so it may be larger than\n"
    "                  memory. Output line k is the square of line k: a bad\n"
    "                  line (not an integer, overflowing, or longer than 4096\n"
    "                  bytes) leaves its output line empty. Squares are printed\n"
    "                  exactly, even beyond 2^64. FILE may be a regular file,\n"
    "                  a pipe, a socket, a terminal or /dev/null, not another\n"
    "                  device; a FIFO needs a writer within 1 second, and is\n"
    "                  then read as a pipe.\n"
    "  --journal FILE  record completed work in FILE; a rerun of the same command\n"
    "                  with the same FILE prints the whole output of an\n"
    "                  uninterrupted run, running only what had not completed\n"
    "                  (a run stopped by a signal, a time limit or a crash); a\n"
    "                  FILE written for other options or another input (path,\n"
    "                  size, modification time) is refused. Not with --input -\n"
    "  --chunksize C   items per task sent to a worker (C >= 1); by default the\n"
    "                  pool adapts it to the cost of an item\n"
    "  --threads T     worker threads per rank (1 <= T <= 4096)\n"
    "  -h, --help      print this help and exit\n"
    "  --version       print the version and exit\n"
    "\n"
    "Options may also be written --option=VALUE. --sum and --unordered exclude\n"
    "each other.\n"
    "\n"
    "environment:\n"
    "  Without --threads, the threads per rank come from the first one set of\n"
    "  HPOOL_THREADS, OMP_NUM_THREADS and SLURM_CPUS_PER_TASK, else from the\n"
    "  CPUs this process may run on, shared with the other ranks on its node.\n"
    "  HPOOL_BIND=1 pins each thread to a CPU (OMP_PROC_BIND and OMP_PLACES\n"
    "  come first); HPOOL_PLACEMENT=1 prints rank -> host -> CPUs on stderr,\n"
    "  HPOOL_PLACEMENT=quiet silences the warning about more threads than CPUs.\n"
    "\n"
    "MPI:\n"
    "  Started by a launcher, square spreads the work over every rank:\n"
    "      mpirun -n 4 square --sum 1000000000\n"
    "      srun -n 4 --cpus-per-task=8 square --input numbers.txt\n"
    "  Rank 0 reads the input and prints everything; the other ranks only compute.\n"
    "  Started without a launcher, it runs as a single rank without MPI.\n"
    "\n"
    "exit status:\n"
    "  0  every item was squared\n"
    "  1  some input lines were bad (each is reported on stderr as\n"
    "     FILE:LINE: CAUSE, and every good line is still printed); reading FILE\n"
    "     failed (reported as FILE:LINE: read error: CAUSE, after every line\n"
    "     read before it); the pool could not start (its threads, say, or an\n"
    "     invalid HPOOL_THREADS); or another run-time error occurred\n"
    "     (a --journal that cannot be read, written or synced, too)\n"
    "  2  usage error: unknown option, bad option value, N missing, negative or\n"
    "     not an integer, or an --input file that cannot be opened, is a\n"
    "     directory or a device, is a FIFO that no process writes to, or\n"
    "     holds binary data (a NUL in its first 64 KiB, as /proc/self/pagemap);\n"
    "     or a --journal written for other options or another input\n"
    "  75 stopped by SIGTERM, SIGINT, SIGUSR1 or SIGUSR2 (under mpirun, send\n"
    "     SIGUSR1: mpirun forwards it): the results completed before the stop\n"
    "     are printed, in input order up to the first item that did not run,\n"
    "     and one line on stderr says how far it got; rerun with the same\n"
    "     --journal to resume. A second signal stops at once\n"
    "  mpirun and srun pass these statuses on.\n";

enum { PARSED_RUN, PARSED_HELP, PARSED_VERSION, PARSED_USAGE_ERROR };

enum { OPTION_UNORDERED = 256, OPTION_SUM, OPTION_INPUT, OPTION_CHUNKSIZE, OPTION_THREADS, OPTION_VERSION, OPTION_JOURNAL };

static const struct option long_options[] = {
    {"unordered", no_argument, NULL, OPTION_UNORDERED},
    {"sum", no_argument, NULL, OPTION_SUM},
    {"input", required_argument, NULL, OPTION_INPUT},
    {"chunksize", required_argument, NULL, OPTION_CHUNKSIZE},
    {"threads", required_argument, NULL, OPTION_THREADS},
    {"journal", required_argument, NULL, OPTION_JOURNAL},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPTION_VERSION},
    {NULL, 0, NULL, 0},
};

/* Parses an option value: unsigned decimal digits, no greater than maximum.
 * Blanks after the digits are allowed, as on an --input line. */
static int parse_count(const char *text, uint64_t maximum, uint64_t *value)
{
    int64_t parsed;
    int starts_with_digit = text[0] >= '0' && text[0] <= '9';
    if (!starts_with_digit || square_parse_int64(text, strlen(text), &parsed) != 0 ||
        (uint64_t)parsed > maximum)
        return -1;
    *value = (uint64_t)parsed;
    return 0;
}

/* How square reads a word that getopt_long would read otherwise. square's
 * command line is older than its use of getopt_long, and scripts rely on it:
 *   -5, -5x    an operand, so that `square -5` says N must not be negative;
 *              getopt_long would see option -5;
 *   -hx, -x    an unknown option: -h is square's one short option, and it
 *              never clusters;
 *   --inp      an unknown option: getopt_long accepts any unambiguous prefix
 *              of a long option, square only whole names. */
enum { WORD_FOR_GETOPT, WORD_OPERAND, WORD_UNKNOWN_OPTION };

static int classify_word(const char *word)
{
    if (word[0] != '-' || word[1] == '\0')
        return WORD_FOR_GETOPT; /* an operand, which getopt_long returns in place */
    if (word[1] >= '0' && word[1] <= '9')
        return WORD_OPERAND;
    if (word[1] != '-')
        return strcmp(word, "-h") == 0 ? WORD_FOR_GETOPT : WORD_UNKNOWN_OPTION;
    if (word[2] == '\0')
        return WORD_FOR_GETOPT; /* "--" ends the options */
    size_t name_length = strcspn(word + 2, "=");
    for (const struct option *option = long_options; option->name != NULL; option++) {
        if (strlen(option->name) == name_length && strncmp(word + 2, option->name, name_length) == 0)
            return WORD_FOR_GETOPT;
    }
    return WORD_UNKNOWN_OPTION;
}

/* Takes the operand N; a second one is an error. */
static int take_operand(const char **operand, const char *word)
{
    if (*operand != NULL) {
        app_usage_error("square", "unexpected extra operand '%s'", word);
        return PARSED_USAGE_ERROR;
    }
    *operand = word;
    return PARSED_RUN;
}

/* Reads the words in order and stops at the first error, so that what square
 * reports about `square 1 2 --bogus` is the extra operand. */
static int parse_options(int argc, char **argv, settings *settings, const char **operand)
{
    opterr = 0;
    for (;;) {
        /* The word getopt_long reads next: short options never cluster, so it
         * always starts one. */
        const char *word = optind < argc ? argv[optind] : NULL;
        int kind = word != NULL ? classify_word(word) : WORD_FOR_GETOPT;
        if (kind == WORD_UNKNOWN_OPTION) {
            app_usage_error("square", "unknown option '%s'", word);
            return PARSED_USAGE_ERROR;
        }
        if (kind == WORD_OPERAND) {
            if (take_operand(operand, word) != PARSED_RUN)
                return PARSED_USAGE_ERROR;
            optind++;
            continue;
        }
        /* "-": operands come back in place, as option 1; ":": a missing value
         * is told from an unknown option. */
        int option = getopt_long(argc, argv, "-:h", long_options, NULL);
        if (option == -1)
            break;
        uint64_t number;
        switch (option) {
        case 1:
            if (take_operand(operand, optarg) != PARSED_RUN)
                return PARSED_USAGE_ERROR;
            break;
        case 'h':
            return PARSED_HELP;
        case OPTION_VERSION:
            return PARSED_VERSION;
        case OPTION_UNORDERED:
            settings->unordered = 1;
            break;
        case OPTION_SUM:
            settings->sum = 1;
            break;
        case OPTION_INPUT:
            if (optarg[0] == '\0') {
                app_usage_error("square", "%s", "--input needs a file name");
                return PARSED_USAGE_ERROR;
            }
            settings->input_path = optarg;
            break;
        case OPTION_JOURNAL:
            if (optarg[0] == '\0') {
                app_usage_error("square", "%s", "--journal needs a file name");
                return PARSED_USAGE_ERROR;
            }
            settings->journal_path = optarg;
            break;
        case OPTION_CHUNKSIZE:
            if (parse_count(optarg, SIZE_MAX, &number) != 0 || number == 0) {
                app_usage_error("square", "--chunksize must be a positive integer, not '%s'", optarg);
                return PARSED_USAGE_ERROR;
            }
            settings->chunksize = (size_t)number;
            break;
        case OPTION_THREADS:
            /* 4096, as metatags and the library's HPOOL_THREADS allow. */
            if (parse_count(optarg, 4096, &number) != 0 || number == 0) {
                app_usage_error("square", "--threads must be an integer in 1..4096, not '%s'", optarg);
                return PARSED_USAGE_ERROR;
            }
            settings->threads = (int)number;
            break;
        case ':':
            app_usage_error("square", "option '%s' needs a value", word);
            return PARSED_USAGE_ERROR;
        default: /* '?': --sum=VALUE, --help=VALUE */
            app_usage_error("square", "unknown option '%s'", word);
            return PARSED_USAGE_ERROR;
        }
    }
    /* After "--", every word is an operand. */
    for (; optind < argc; optind++) {
        if (take_operand(operand, argv[optind]) != PARSED_RUN)
            return PARSED_USAGE_ERROR;
    }
    return PARSED_RUN;
}

/* Every rank parses the same argv and so reaches the same verdict, which lets
 * all of them stop before the pool exists without talking to each other. */
static int parse_arguments(int argc, char **argv, settings *settings)
{
    const char *operand = NULL;
    int parsed = parse_options(argc, argv, settings, &operand);
    if (parsed != PARSED_RUN)
        return parsed;
    if (settings->sum && settings->unordered) {
        app_usage_error("square", "%s", "--sum and --unordered exclude each other");
        return PARSED_USAGE_ERROR;
    }
    if (settings->journal_path != NULL && settings->input_path != NULL &&
        strcmp(settings->input_path, "-") == 0) {
        /* Nothing would tell the next stdin from this one. */
        app_usage_error("square", "%s", "--journal needs a named --input file, not stdin");
        return PARSED_USAGE_ERROR;
    }
    if (settings->input_path != NULL) {
        if (operand != NULL) {
            app_usage_error("square", "N ('%s') and --input exclude each other", operand);
            return PARSED_USAGE_ERROR;
        }
        return PARSED_RUN;
    }
    if (operand == NULL) {
        app_usage_error("square", "%s", "missing operand N");
        return PARSED_USAGE_ERROR;
    }
    int64_t last;
    int code = square_parse_int64(operand, strlen(operand), &last);
    if (code == LINE_NOT_AN_INTEGER) {
        app_usage_error("square", "N must be a non-negative integer, not '%s'", operand);
        return PARSED_USAGE_ERROR;
    }
    if (code == LINE_INTEGER_OVERFLOW || last == INT64_MAX) { /* the range stops at N+1 */
        app_usage_error("square", "N is too large: '%s'", operand);
        return PARSED_USAGE_ERROR;
    }
    if (last < 0) {
        app_usage_error("square", "N must not be negative, not '%s'", operand);
        return PARSED_USAGE_ERROR;
    }
    settings->last = last;
    return PARSED_RUN;
}

int main(int argc, char **argv)
{
    app_hold_stop_signals(); /* before MPI_Init, which a forwarded signal may interrupt */
    int rc = hpool_mpi_init(&argc, &argv);
    if (rc != 0) {
        app_print_error("square", NULL, rc);
        return EXIT_SOME_FAILED;
    }
    settings settings = {0};
    int status;
    switch (parse_arguments(argc, argv, &settings)) {
    case PARSED_HELP:
        if (app_speaks_for_all_ranks())
            fputs(usage_text, stdout);
        status = EXIT_ALL_GOOD;
        break;
    case PARSED_VERSION:
        app_print_version("square");
        status = EXIT_ALL_GOOD;
        break;
    case PARSED_USAGE_ERROR:
        status = EXIT_USAGE;
        break;
    default:
        status = square_run(&settings);
        break;
    }
    hpool_mpi_finalize();
    return status;
}
