/* lines.c: the --input file: opening it (files, pipes, terminals; never a device or a FIFO with no writer) and its lines in bounded memory. */
#define _POSIX_C_SOURCE 200809L /* O_CLOEXEC, clock_gettime */
#include "lines.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- Opening ---------------------------------------------------------------- */

static void refuse(const char *name, const char *cause)
{
    fprintf(stderr, "square: %s: %s\n", name, cause);
}

/* /dev/null is a character device too, and `square --input - </dev/null` is
 * how scripts and batch jobs say "no input". */
static int is_dev_null(const struct stat *file_status)
{
    struct stat null_status;
    return stat("/dev/null", &null_status) == 0 && S_ISCHR(null_status.st_mode) &&
           file_status->st_rdev == null_status.st_rdev;
}

static long long milliseconds_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* A FIFO opened with O_NONBLOCK: read() says EAGAIN while a writer is
 * connected (even one still blocked in its own open) and 0 while none is.
 * On Linux, poll() says POLLHUP only once a writer has come and gone since
 * this open, which is an empty input, not a missing writer. Bytes read while
 * looking are kept in the reader's buffer. Returns 0 once there is a writer
 * (or was), else -1 after a message. */
static int wait_for_writer(line_reader *reader, const char *name)
{
    long long deadline = milliseconds_now() + LINE_READER_FIFO_WAIT_MS;
    for (;;) {
        ssize_t got = read(reader->fd, reader->buffer, sizeof reader->buffer);
        if (got > 0) {
            reader->end = (size_t)got;
            return 0;
        }
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (got < 0 && errno != EINTR) {
            refuse(name, strerror(errno));
            return -1;
        }
        struct pollfd wait = {.fd = reader->fd, .events = POLLIN};
        int ready = poll(&wait, 1, 10);
        if (ready > 0 && !(wait.revents & POLLIN) && (wait.revents & POLLHUP))
            return 0; /* a writer came, wrote nothing and left */
        if (milliseconds_now() >= deadline) {
            refuse(name, "a FIFO that no process opened for writing within 1 s"); /* LINE_READER_FIFO_WAIT_MS */
            return -1;
        }
    }
}

/* Says whether square reads this kind of file, and why not. */
static const char *refused_kind(int fd, const struct stat *file_status)
{
    if (S_ISREG(file_status->st_mode) || S_ISFIFO(file_status->st_mode) || S_ISSOCK(file_status->st_mode))
        return NULL;
    if (S_ISDIR(file_status->st_mode))
        return strerror(EISDIR);
    if (S_ISCHR(file_status->st_mode) && (isatty(fd) || is_dev_null(file_status)))
        return NULL;
    if (S_ISCHR(file_status->st_mode))
        return "a character device, not a file, pipe or terminal";
    if (S_ISBLK(file_status->st_mode))
        return "a block device, not a file, pipe or terminal";
    return "not a file, pipe or terminal";
}

void line_reader_init(line_reader *reader, int fd)
{
    reader->fd = fd;
    reader->owns_fd = 0;
    reader->ended = 0;
    reader->read_errno = 0;
    reader->should_stop = NULL;
    reader->stopped = 0;
    reader->line_number = 0;
    reader->start = 0;
    reader->end = 0;
}

int line_reader_open(line_reader *reader, const char *path, const char **name)
{
    int is_stdin = strcmp(path, "-") == 0;
    *name = is_stdin ? "(standard input)" : path;
    /* O_NONBLOCK so that a FIFO with no writer cannot block here; it does
     * nothing to a regular file, and is cleared below. */
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        refuse(*name, strerror(errno));
        return -1;
    }
    line_reader_init(reader, fd);
    reader->owns_fd = !is_stdin;
    struct stat file_status;
    const char *refusal = fstat(fd, &file_status) != 0 ? strerror(errno) : refused_kind(fd, &file_status);
    if (refusal != NULL) {
        refuse(*name, refusal);
        line_reader_close(reader);
        return -1;
    }
    if (S_ISREG(file_status.st_mode)) {
        /* A file whose first 64 KiB hold a NUL is binary, as grep judges:
         * /proc/self/pagemap would otherwise be read for hours, bad line
         * after bad line. The bytes read stay in the buffer as its first. */
        ssize_t got;
        while ((got = read(fd, reader->buffer, sizeof reader->buffer)) < 0 && errno == EINTR)
            ;
        const char *nul = got > 0 ? memchr(reader->buffer, '\0', (size_t)got) : NULL;
        if (nul != NULL) {
            char why[96];
            snprintf(why, sizeof why, "binary data (a NUL byte at byte %zu), not lines of integers",
                     (size_t)(nul - reader->buffer));
            refuse(*name, why);
            line_reader_close(reader);
            return -1;
        }
        /* a failed read is left to line_reader_next, which reports it as
         * the read error of line 1 */
        reader->end = got > 0 ? (size_t)got : 0;
        reader->ended = got == 0;
    }
    if (!is_stdin) {
        if (S_ISFIFO(file_status.st_mode) && wait_for_writer(reader, *name) != 0) {
            line_reader_close(reader);
            return -1;
        }
        int flags = fcntl(fd, F_GETFL);
        if (flags >= 0)
            (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK); /* if this fails, next() polls */
    }
    return 0;
}

void line_reader_close(line_reader *reader)
{
    if (reader->owns_fd)
        close(reader->fd);
    reader->owns_fd = 0;
}

/* ---- Reading ------------------------------------------------------------- */

/* Refills the buffer: 1 for bytes, 0 at the end, -1 on an error. A
 * non-blocking stdin (inherited so) is waited on rather than failed. */
static int fill(line_reader *reader)
{
    if (reader->ended)
        return 0;
    for (;;) {
        /* Before each read, and every 200 ms while an idle pipe has
         * nothing: a signal's stop is seen even though the handler
         * restarts the read (SA_RESTART), and an endless input stops too. */
        struct pollfd ready = {.fd = reader->fd, .events = POLLIN};
        while (reader->should_stop != NULL) {
            if (reader->should_stop(reader->should_stop_user)) {
                reader->ended = reader->stopped = 1; /* the lines so far are all the call gets */
                return 0;
            }
            int polled = poll(&ready, 1, 200); /* a signal ends it with EINTR: look again */
            if (polled > 0 || (polled < 0 && errno != EINTR))
                break; /* readable, or an error the read will report */
        }
        ssize_t got = read(reader->fd, reader->buffer, sizeof reader->buffer);
        if (got > 0) {
            reader->start = 0;
            reader->end = (size_t)got;
            return 1;
        }
        if (got == 0) {
            reader->ended = 1;
            return 0;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            struct pollfd wait = {.fd = reader->fd, .events = POLLIN};
            (void)poll(&wait, 1, -1);
        } else if (errno != EINTR) {
            reader->read_errno = errno;
            reader->ended = 1; /* nothing after an error is read: the input ends there */
            return -1;
        }
    }
}

int line_reader_next(line_reader *reader, const char **line, size_t *size)
{
    size_t kept = 0;    /* bytes in reader->line, at most SQUARE_LINE_LIMIT + 1 */
    int dropped = 0;    /* bytes of the line beyond those */
    int started = 0;
    for (;;) {
        if (reader->start == reader->end) {
            int filled = fill(reader);
            if (filled < 0)
                return -1;
            if (filled == 0) {
                if (!started)
                    return 0;
                break; /* a last line without a newline */
            }
        }
        started = 1;
        const char *from = reader->buffer + reader->start;
        size_t available = reader->end - reader->start;
        const char *newline = memchr(from, '\n', available);
        size_t length = newline != NULL ? (size_t)(newline - from) : available;
        size_t room = sizeof reader->line - kept;
        size_t copied = length < room ? length : room;
        memcpy(reader->line + kept, from, copied);
        kept += copied;
        dropped |= copied < length;
        reader->start += length;
        if (newline != NULL) {
            reader->start++;
            break;
        }
    }
    /* A "\r" is part of the line end only if it is the line's last byte,
     * which a line cut short does not hold. */
    if (!dropped && kept > 0 && reader->line[kept - 1] == '\r')
        kept--;
    reader->line_number++;
    *line = reader->line;
    *size = kept;
    return 1;
}
