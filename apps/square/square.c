/* square.c: squares 1..N or a file's integers on an hpool pool: in order, as they complete, or summed. */
#define _POSIX_C_SOURCE 200809L /* getline, ssize_t */
#include <hpool.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Exit statuses, as documented by --help. */
enum {
    EXIT_ALL_GOOD = 0,
    EXIT_SOME_FAILED = 1, /* bad input lines, or a run-time error */
    EXIT_USAGE = 2        /* bad options or operand, unreadable --input file */
};

/* Codes our map functions return for a bad input line. */
enum {
    LINE_NOT_AN_INTEGER = 1,
    LINE_INTEGER_OVERFLOW = 2
};

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
    "                  order, instead of squares in input order\n"
    "  --sum           print only the sum of the squares, modulo 2^64 (unsigned\n"
    "                  64-bit wrap-around); no per-item output\n"
    "  --input FILE    square the integers in FILE instead of 1..N. Each line\n"
    "                  holds one integer in -9223372036854775808..\n"
    "                  9223372036854775807, optionally signed and surrounded by\n"
    "                  spaces or tabs; CRLF line ends are accepted. The file is\n"
    "                  read lazily, so it may be larger than memory. Squares are\n"
    "                  printed exactly, even beyond 2^64.\n"
    "  --chunksize C   items per task sent to a worker (C >= 1); by default the\n"
    "                  pool adapts it to the cost of an item\n"
    "  --threads T     worker threads per rank (T >= 1)\n"
    "  -h, --help      print this help and exit\n"
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
    "  1  some input lines were not integers or overflowed (each is reported on\n"
    "     stderr as FILE:LINE, and every good line is still printed), or a\n"
    "     run-time error occurred\n"
    "  2  usage error: unknown option, bad option value, N missing, negative or\n"
    "     not an integer, or the --input file cannot be opened\n"
    "  mpirun and srun pass these statuses on.\n";

/* ======================================================================
 * Parsing integers strictly
 * ====================================================================== */

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Parses bytes [text, text+size) as a decimal int64 with an optional sign and
 * optional surrounding blanks. Hand-written instead of strtoll because an item
 * is not NUL-terminated and strtoll accepts more than we want (0x, newlines).
 * Returns 0, LINE_NOT_AN_INTEGER or LINE_INTEGER_OVERFLOW. */
static int parse_int64(const char *text, size_t size, int64_t *value)
{
    size_t at = 0;
    while (at < size && is_blank(text[at]))
        at++;
    int negative = 0;
    if (at < size && (text[at] == '+' || text[at] == '-')) {
        negative = text[at] == '-';
        at++;
    }
    /* The magnitude of INT64_MIN is one more than INT64_MAX. */
    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t magnitude = 0;
    size_t digits = 0;
    int overflow = 0;
    for (; at < size && text[at] >= '0' && text[at] <= '9'; at++, digits++) {
        unsigned digit = (unsigned)(text[at] - '0');
        if (magnitude > (limit - digit) / 10)
            overflow = 1; /* keep scanning: trailing junk still makes it "not an integer" */
        else
            magnitude = magnitude * 10 + digit;
    }
    while (at < size && is_blank(text[at]))
        at++;
    if (digits == 0 || at != size)
        return LINE_NOT_AN_INTEGER;
    if (overflow)
        return LINE_INTEGER_OVERFLOW;
    /* Negate in unsigned arithmetic so INT64_MIN does not overflow. */
    *value = negative ? (int64_t)(0 - magnitude) : (int64_t)magnitude;
    return 0;
}

static uint64_t magnitude_of(int64_t x)
{
    return x < 0 ? 0 - (uint64_t)x : (uint64_t)x;
}

/* ======================================================================
 * Map functions: the same table, in the same order, on every rank
 * ====================================================================== */

/* What --input delivers per line. Plain 64-bit fields rather than an
 * unsigned __int128 member, so that the struct needs only 8-byte alignment
 * and has no padding; results are still copied with memcpy because the
 * framework promises no alignment for result slots. */
typedef struct square_of_line {
    int64_t x;
    uint64_t square_low;
    uint64_t square_high;
} square_of_line;

/* Squares a span of a range source. The caller asks for 8-byte results when
 * every square fits in 64 bits (N < 2^32), halving what travels between
 * ranks, and for 16-byte unsigned __int128 results otherwise. */
static int square_range_span(hpool_span *span, void *user)
{
    (void)user;
    unsigned char *results = span->results;
    int64_t first = span->range_first;
    if (span->result_size == sizeof(uint64_t)) {
        for (size_t i = 0; i < span->count; i++) {
            uint64_t x = magnitude_of(first + (int64_t)i);
            uint64_t square = x * x;
            memcpy(results + i * sizeof square, &square, sizeof square);
        }
    } else {
        for (size_t i = 0; i < span->count; i++) {
            uint64_t x = magnitude_of(first + (int64_t)i);
            unsigned __int128 square = (unsigned __int128)x * x;
            memcpy(results + i * sizeof square, &square, sizeof square);
        }
    }
    return 0;
}

/* Adds the squares of a span of a range source into a uint64 accumulator,
 * modulo 2^64. This loop is the whole cost of `square --sum N`, hence one
 * call per span rather than per item, and a plain counted loop over uint64
 * that the compiler vectorises where the target multiplies 64-bit lanes
 * (GCC does at -O3 -mavx2; at baseline x86-64 it stays a tight scalar loop). */
static int sum_squares_range_span(hpool_span *span, void *user)
{
    (void)user;
    uint64_t first = (uint64_t)span->range_first;
    size_t count = span->count;
    uint64_t sum = 0;
    for (size_t i = 0; i < count; i++) {
        uint64_t x = first + i;
        sum += x * x;
    }
    uint64_t accumulated;
    memcpy(&accumulated, span->accumulator, sizeof accumulated);
    accumulated += sum;
    memcpy(span->accumulator, &accumulated, sizeof accumulated);
    return 0;
}

/* Parses one --input line and squares it exactly. */
static int square_line(hpool_task *task, void *user)
{
    (void)user;
    square_of_line result;
    int code = parse_int64(task->input, task->input_size, &result.x);
    if (code != 0)
        return code;
    uint64_t x = magnitude_of(result.x);
    unsigned __int128 square = (unsigned __int128)x * x;
    result.square_low = (uint64_t)square;
    result.square_high = (uint64_t)(square >> 64);
    memcpy(task->result, &result, sizeof result);
    return 0;
}

/* Parses one --input line and yields its square modulo 2^64, for --sum. */
static int square_line_mod_2_64(hpool_task *task, void *user)
{
    (void)user;
    int64_t x;
    int code = parse_int64(task->input, task->input_size, &x);
    if (code != 0)
        return code;
    uint64_t square = (uint64_t)x * (uint64_t)x;
    memcpy(task->result, &square, sizeof square);
    return 0;
}

enum {
    FUNCTION_SQUARE_RANGE,
    FUNCTION_SUM_SQUARES_RANGE,
    FUNCTION_SQUARE_LINE,
    FUNCTION_SQUARE_LINE_MOD_2_64
};
static const hpool_function functions[] = {
    [FUNCTION_SQUARE_RANGE] = {.name = "square_range", .span = square_range_span},
    [FUNCTION_SUM_SQUARES_RANGE] = {.name = "sum_squares_range", .span = sum_squares_range_span},
    [FUNCTION_SQUARE_LINE] = {.name = "square_line", .map = square_line},
    [FUNCTION_SQUARE_LINE_MOD_2_64] = {.name = "square_line_mod_2_64", .map = square_line_mod_2_64},
};

static void add_uint64(void *accumulator, const void *value, void *user)
{
    (void)user;
    uint64_t sum, addend;
    memcpy(&sum, accumulator, sizeof sum);
    memcpy(&addend, value, sizeof addend);
    sum += addend; /* wraps modulo 2^64, which is what --sum promises */
    memcpy(accumulator, &sum, sizeof sum);
}

static const uint64_t zero_uint64 = 0;
enum { REDUCER_SUM_UINT64 };
static const hpool_reducer reducers[] = {
    [REDUCER_SUM_UINT64] = {.name = "sum_u64",
                            .value_size = sizeof(uint64_t),
                            .identity = &zero_uint64,
                            .combine = add_uint64},
};

/* ======================================================================
 * Output: numbers formatted by hand into a buffer written in large blocks,
 * because printf per line would cost more than the squaring
 * ====================================================================== */

typedef struct output {
    char buffer[1 << 16];
    size_t used;
    int failed; /* a write failed: errno was saved in write_errno */
    int write_errno;
} output;

/* The longest line we append: a 20-character int64, a tab, a 39-digit
 * unsigned __int128 and a newline. */
enum { LONGEST_LINE = 64 };

static void output_flush(output *out)
{
    if (out->used > 0 && !out->failed && fwrite(out->buffer, 1, out->used, stdout) != out->used) {
        out->failed = 1;
        out->write_errno = errno;
    }
    out->used = 0;
}

/* Makes room for one more line. */
static void output_reserve_line(output *out)
{
    if (sizeof out->buffer - out->used < LONGEST_LINE)
        output_flush(out);
}

/* Two digits per division: formatting is most of the time `square N` spends
 * on the root, so it halves what the ordered stream costs. */
static const char digit_pairs[201] = "00010203040506070809"
                                     "10111213141516171819"
                                     "20212223242526272829"
                                     "30313233343536373839"
                                     "40414243444546474849"
                                     "50515253545556575859"
                                     "60616263646566676869"
                                     "70717273747576777879"
                                     "80818283848586878889"
                                     "90919293949596979899";

static size_t decimal_digits(uint64_t value)
{
    size_t digits = 1;
    for (uint64_t power = 10; value >= power; power *= 10) {
        digits++;
        if (digits == 20) /* 10^20 would overflow power */
            break;
    }
    return digits;
}

/* Writes the digits in place from the last one back, so no copy follows. */
static void output_uint64(output *out, uint64_t value)
{
    size_t length = decimal_digits(value);
    char *end = out->buffer + out->used + length;
    while (value >= 100) {
        unsigned pair = (unsigned)(value % 100);
        value /= 100;
        end -= 2;
        memcpy(end, digit_pairs + 2 * pair, 2);
    }
    if (value >= 10)
        memcpy(end - 2, digit_pairs + 2 * value, 2);
    else
        end[-1] = (char)('0' + value);
    out->used += length;
}

static void output_int64(output *out, int64_t value)
{
    if (value < 0)
        out->buffer[out->used++] = '-';
    output_uint64(out, magnitude_of(value));
}

static void output_uint128(output *out, unsigned __int128 value)
{
    /* Print in base 10^19, the largest power of ten below 2^64: the high part
     * first, then each lower part padded to 19 digits. */
    const uint64_t ten_to_19 = UINT64_C(10000000000000000000);
    if (value <= UINT64_MAX) {
        output_uint64(out, (uint64_t)value);
        return;
    }
    uint64_t parts[3]; /* 2^128 < 10^57: at most three parts */
    size_t part_count = 0;
    while (value > UINT64_MAX) {
        parts[part_count++] = (uint64_t)(value % ten_to_19);
        value /= ten_to_19;
    }
    output_uint64(out, (uint64_t)value);
    while (part_count > 0) {
        uint64_t part = parts[--part_count];
        for (int digit = 18; digit >= 0; digit--) {
            out->buffer[out->used + (size_t)digit] = (char)('0' + part % 10);
            part /= 10;
        }
        out->used += 19;
    }
}

static void output_char(output *out, char c)
{
    out->buffer[out->used++] = c;
}

/* ======================================================================
 * The command line
 * ====================================================================== */

typedef struct settings {
    int unordered;
    int sum;
    const char *input_path; /* NULL: square 1..last */
    int64_t last;
    size_t chunksize; /* 0: let the pool adapt it */
    int threads;      /* 0: from the environment */
} settings;

enum { PARSED_RUN, PARSED_HELP, PARSED_USAGE_ERROR };

/* Parses an option value: unsigned decimal digits, no greater than maximum. */
static int parse_count(const char *text, uint64_t maximum, uint64_t *value)
{
    int64_t parsed;
    int starts_with_digit = text[0] >= '0' && text[0] <= '9';
    if (!starts_with_digit || parse_int64(text, strlen(text), &parsed) != 0 ||
        (uint64_t)parsed > maximum)
        return -1;
    *value = (uint64_t)parsed;
    return 0;
}

/* Usage errors are printed by one rank only, or a run under mpirun -n 64
 * would repeat each one 64 times. */
static int speaks_for_all_ranks(void)
{
    int initialized = 0;
    if (MPI_Initialized(&initialized) != MPI_SUCCESS || !initialized)
        return 1;
    int rank = 0;
    if (MPI_Comm_rank(MPI_COMM_WORLD, &rank) != MPI_SUCCESS)
        return 1;
    return rank == 0;
}

static int usage_error(int speaker, const char *format, const char *argument)
{
    if (speaker) {
        fputs("square: ", stderr);
        fprintf(stderr, format, argument);
        fputs("\nTry 'square --help' for more information.\n", stderr);
    }
    return PARSED_USAGE_ERROR;
}

/* Every rank parses the same argv and so reaches the same verdict, which lets
 * all of them stop before the pool exists without talking to each other. */
static int parse_arguments(int argc, char **argv, settings *settings, int speaker)
{
    const char *operand = NULL;
    int options_ended = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        /* A leading '-' followed by a digit is a (negative) operand, not an
         * option, so that `square -5` says N must not be negative. */
        int is_option = !options_ended && arg[0] == '-' && arg[1] != '\0' &&
                        !(arg[1] >= '0' && arg[1] <= '9');
        if (!is_option) {
            if (operand != NULL)
                return usage_error(speaker, "unexpected extra operand '%s'", arg);
            operand = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            options_ended = 1;
            continue;
        }
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
            return PARSED_HELP;
        if (strcmp(arg, "--unordered") == 0) {
            settings->unordered = 1;
            continue;
        }
        if (strcmp(arg, "--sum") == 0) {
            settings->sum = 1;
            continue;
        }

        /* The options that take a value: --name VALUE or --name=VALUE. */
        static const char *const valued[] = {"--input", "--chunksize", "--threads"};
        const char *name = NULL, *value = NULL;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++) {
            size_t length = strlen(valued[k]);
            int matches = strncmp(arg, valued[k], length) == 0 &&
                          (arg[length] == '\0' || arg[length] == '=');
            if (matches) {
                name = valued[k];
                value = arg[length] == '=' ? arg + length + 1 : NULL;
            }
        }
        if (name == NULL)
            return usage_error(speaker, "unknown option '%s'", arg);
        if (value == NULL) {
            if (i + 1 >= argc)
                return usage_error(speaker, "option '%s' needs a value", name);
            value = argv[++i];
        }
        uint64_t number;
        if (strcmp(name, "--input") == 0) {
            if (value[0] == '\0')
                return usage_error(speaker, "%s", "--input needs a file name");
            settings->input_path = value;
        } else if (strcmp(name, "--chunksize") == 0) {
            if (parse_count(value, SIZE_MAX, &number) != 0 || number == 0)
                return usage_error(speaker, "--chunksize must be a positive integer, not '%s'",
                                   value);
            settings->chunksize = (size_t)number;
        } else {
            if (parse_count(value, 1 << 20, &number) != 0 || number == 0)
                return usage_error(speaker, "--threads must be a positive integer, not '%s'",
                                   value);
            settings->threads = (int)number;
        }
    }

    if (settings->sum && settings->unordered)
        return usage_error(speaker, "%s", "--sum and --unordered exclude each other");
    if (settings->input_path != NULL) {
        if (operand != NULL)
            return usage_error(speaker, "N ('%s') and --input exclude each other", operand);
        return PARSED_RUN;
    }
    if (operand == NULL)
        return usage_error(speaker, "%s", "missing operand N");
    int64_t last;
    int code = parse_int64(operand, strlen(operand), &last);
    if (code == LINE_NOT_AN_INTEGER)
        return usage_error(speaker, "N must be a non-negative integer, not '%s'", operand);
    if (code == LINE_INTEGER_OVERFLOW || last == INT64_MAX) /* the range stops at N+1 */
        return usage_error(speaker, "N is too large: '%s'", operand);
    if (last < 0)
        return usage_error(speaker, "N must not be negative, not '%s'", operand);
    settings->last = last;
    return PARSED_RUN;
}

/* ======================================================================
 * Reading --input lazily
 * ====================================================================== */

typedef struct line_reader {
    FILE *file;
    char *line;
    size_t capacity;
    int read_errno; /* set when getline failed for a reason other than EOF */
} line_reader;

/* The producer: yields each line without its newline or a trailing \r. It
 * runs on one pool thread at a time, so the single line buffer is safe. */
static int produce_line(const void **data, size_t *size, void *user)
{
    line_reader *reader = user;
    errno = 0;
    ssize_t length = getline(&reader->line, &reader->capacity, reader->file);
    if (length < 0) {
        if (ferror(reader->file)) {
            reader->read_errno = errno != 0 ? errno : EIO;
            return HPOOL_EIO;
        }
        return HPOOL_EOF;
    }
    if (length > 0 && reader->line[length - 1] == '\n')
        length--;
    if (length > 0 && reader->line[length - 1] == '\r')
        length--;
    *data = reader->line;
    *size = (size_t)length;
    return 0;
}

/* ======================================================================
 * The work, on the root rank
 * ====================================================================== */

/* Where failures are reported: a file's lines, or a range's values. */
typedef struct failure_context {
    const char *input_path;     /* NULL for a range */
    const line_reader *reader;  /* NULL for a range */
} failure_context;

static const char *line_failure_text(int code)
{
    switch (code) {
    case LINE_NOT_AN_INTEGER:
        return "not an integer";
    case LINE_INTEGER_OVERFLOW:
        return "integer overflow";
    default:
        return code < 0 ? hpool_strerror(code) : "failed";
    }
}

static void report_item_failure(const failure_context *context, uint64_t index, int code)
{
    if (context->input_path != NULL)
        fprintf(stderr, "square: %s:%" PRIu64 ": %s\n", context->input_path, index + 1,
                line_failure_text(code));
    else
        fprintf(stderr, "square: item %" PRIu64 " (x = %" PRIu64 "): %s\n", index, index + 1,
                line_failure_text(code));
}

/* The reduce reports failures through this callback, on a pool thread. */
static void report_reduce_failure(uint64_t index, int code, void *user)
{
    report_item_failure(user, index, code);
}

static int status_of_call(int rc, const failure_context *context)
{
    if (rc == 0)
        return EXIT_ALL_GOOD;
    /* Failed items were reported one by one; a read error of ours is reported
     * with the file name and errno by run_input, which says more. */
    int reported = rc == HPOOL_EFAILED ||
                   (rc == HPOOL_EIO && context->reader != NULL && context->reader->read_errno != 0);
    if (!reported)
        fprintf(stderr, "square: %s\n", hpool_strerror(rc));
    return EXIT_SOME_FAILED;
}

static int run_sum(hpool_pool *pool, hpool_call *call, const failure_context *context)
{
    uint64_t sum = 0;
    call->reducer = REDUCER_SUM_UINT64;
    call->reduction = &sum;
    call->result_size = sizeof sum;
    call->error_callback = report_reduce_failure;
    call->user = (void *)context;
    hpool_report report;
    int rc = hpool_map_reduce(pool, call, &report);
    if (rc != 0 && rc != HPOOL_EFAILED)
        return status_of_call(rc, context);
    printf("%" PRIu64 "\n", sum); /* the sum of the good items, even if some failed */
    return status_of_call(rc, context);
}

/* Prints one delivered result, or reports it if its item failed. */
static void print_result(output *out, const settings *settings, const failure_context *context,
                         const hpool_result *result)
{
    if (result->status != 0) {
        report_item_failure(context, result->index, result->status);
        return;
    }
    output_reserve_line(out);
    if (settings->input_path != NULL) {
        square_of_line line;
        memcpy(&line, result->data, sizeof line);
        if (settings->unordered) {
            output_int64(out, line.x);
            output_char(out, '\t');
        }
        output_uint128(out, (unsigned __int128)line.square_high << 64 | line.square_low);
    } else {
        if (settings->unordered) {
            output_uint64(out, result->index + 1); /* a range 1..N: x = 1 + index */
            output_char(out, '\t');
        }
        if (result->size == sizeof(uint64_t)) {
            uint64_t square;
            memcpy(&square, result->data, sizeof square);
            output_uint64(out, square);
        } else {
            unsigned __int128 square;
            memcpy(&square, result->data, sizeof square);
            output_uint128(out, square);
        }
    }
    output_char(out, '\n');
}

static int run_stream(hpool_pool *pool, hpool_call *call, const settings *settings,
                      const failure_context *context)
{
    output *out = malloc(sizeof *out);
    if (out == NULL) {
        fprintf(stderr, "square: %s\n", hpool_strerror(HPOOL_ENOMEM));
        return EXIT_SOME_FAILED;
    }
    out->used = 0;
    out->failed = 0;

    hpool_iter *iter;
    int rc = settings->unordered ? hpool_imap_unordered(pool, call, &iter)
                                 : hpool_imap(pool, call, &iter);
    if (rc != 0) {
        free(out);
        return status_of_call(rc, context);
    }
    hpool_result result;
    while ((rc = hpool_iter_next(iter, &result, -1)) == 0) {
        print_result(out, settings, context, &result);
        if (out->failed)
            break; /* freeing the iterator below cancels the rest */
    }
    output_flush(out);
    int status;
    if (out->failed) {
        fprintf(stderr, "square: write error: %s\n", strerror(out->write_errno));
        status = EXIT_SOME_FAILED;
    } else if (rc != HPOOL_EOF) {
        status = status_of_call(rc, context);
    } else {
        hpool_report report;
        status = status_of_call(hpool_iter_report(iter, &report), context);
    }
    hpool_iter_free(iter);
    free(out);
    return status;
}

static int run_range(hpool_pool *pool, const settings *settings)
{
    failure_context context = {.input_path = NULL, .reader = NULL};
    hpool_source *range;
    int rc = hpool_source_range(&range, 1, settings->last + 1);
    if (rc != 0)
        return status_of_call(rc, &context);
    hpool_call call = HPOOL_CALL_INIT;
    call.source = range;
    call.chunksize = settings->chunksize;
    int status;
    if (settings->sum) {
        call.function = FUNCTION_SUM_SQUARES_RANGE;
        status = run_sum(pool, &call, &context);
    } else {
        call.function = FUNCTION_SQUARE_RANGE;
        /* Every square of 1..2^32-1 fits in 64 bits. */
        call.result_size = settings->last <= (int64_t)UINT32_MAX ? sizeof(uint64_t)
                                                                 : sizeof(unsigned __int128);
        status = run_stream(pool, &call, settings, &context);
    }
    hpool_source_free(range);
    return status;
}

static int run_input(hpool_pool *pool, const settings *settings)
{
    line_reader reader = {.file = fopen(settings->input_path, "r")};
    if (reader.file == NULL) {
        fprintf(stderr, "square: %s: %s\n", settings->input_path, strerror(errno));
        return EXIT_USAGE;
    }
    /* fopen accepts a directory; only reading it fails. Saying so now keeps
     * every unusable FILE a usage error. */
    struct stat file_status;
    if (fstat(fileno(reader.file), &file_status) == 0 && S_ISDIR(file_status.st_mode)) {
        fprintf(stderr, "square: %s: %s\n", settings->input_path, strerror(EISDIR));
        fclose(reader.file);
        return EXIT_USAGE;
    }
    failure_context context = {.input_path = settings->input_path, .reader = &reader};
    hpool_source *lines;
    int rc = hpool_source_producer(&lines, produce_line, &reader);
    if (rc != 0) {
        fclose(reader.file);
        return status_of_call(rc, &context);
    }
    hpool_call call = HPOOL_CALL_INIT;
    call.source = lines;
    call.chunksize = settings->chunksize;
    int status;
    if (settings->sum) {
        call.function = FUNCTION_SQUARE_LINE_MOD_2_64;
        status = run_sum(pool, &call, &context);
    } else {
        call.function = FUNCTION_SQUARE_LINE;
        call.result_size = sizeof(square_of_line);
        status = run_stream(pool, &call, settings, &context);
    }
    if (reader.read_errno != 0) {
        fprintf(stderr, "square: %s: %s\n", settings->input_path, strerror(reader.read_errno));
        status = EXIT_SOME_FAILED;
    }
    hpool_source_free(lines);
    free(reader.line);
    fclose(reader.file);
    return status;
}

static int run(const settings *settings)
{
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.threads = settings->threads;
    options.functions = functions;
    options.function_count = sizeof functions / sizeof functions[0];
    options.reducers = reducers;
    options.reducer_count = sizeof reducers / sizeof reducers[0];
    hpool_pool *pool;
    int rc = hpool_pool_create(&pool, &options);
    if (rc != 0) {
        fprintf(stderr, "square: cannot start the pool: %s\n", hpool_strerror(rc));
        return EXIT_SOME_FAILED;
    }
    int status = EXIT_ALL_GOOD;
    if (hpool_pool_is_root(pool))
        status = settings->input_path != NULL ? run_input(pool, settings)
                                              : run_range(pool, settings);
    rc = hpool_pool_join(pool);
    if (rc != 0) {
        fprintf(stderr, "square: %s\n", hpool_strerror(rc));
        if (status == EXIT_ALL_GOOD)
            status = EXIT_SOME_FAILED;
    }
    hpool_pool_free(pool);
    if (fflush(stdout) != 0 && status == EXIT_ALL_GOOD) {
        fprintf(stderr, "square: write error: %s\n", strerror(errno));
        status = EXIT_SOME_FAILED;
    }
    return status;
}

int main(int argc, char **argv)
{
    int rc = hpool_mpi_init(&argc, &argv);
    if (rc != 0) {
        fprintf(stderr, "square: %s\n", hpool_strerror(rc));
        return EXIT_SOME_FAILED;
    }
    int speaker = speaks_for_all_ranks();
    settings settings = {0};
    int status;
    switch (parse_arguments(argc, argv, &settings, speaker)) {
    case PARSED_HELP:
        if (speaker)
            fputs(usage_text, stdout);
        status = EXIT_ALL_GOOD;
        break;
    case PARSED_USAGE_ERROR:
        status = EXIT_USAGE;
        break;
    default:
        status = run(&settings);
        break;
    }
    hpool_mpi_finalize();
    return status;
}
