/* lines.h: the --input file: which kinds square reads, and its lines read in bounded memory; no hpool, so the fuzz target links it alone. */
#ifndef SQUARE_LINES_H
#define SQUARE_LINES_H

#include "parse.h"

#include <stddef.h>
#include <stdint.h>

/* Reads one file descriptor line by line in 64 KiB + 4 KiB of memory,
 * however long a line is. */
typedef struct line_reader {
    int fd;
    int owns_fd;          /* closed by line_reader_close; stdin is not */
    int ended;            /* read() returned 0 */
    int read_errno;       /* set when a read failed: the input ends there */
    /* Asked while it waits for input (an idle pipe) and before each read:
     * true ends the input (a signal stopped the pool), so that the call
     * can end as stopped. NULL: never. */
    int (*should_stop)(void *user);
    void *should_stop_user;
    int stopped;          /* the input was ended so, not by its end */
    uint64_t line_number; /* lines handed out so far */
    size_t start, end;    /* the unread bytes of buffer */
    char buffer[1 << 16];
    char line[SQUARE_LINE_LIMIT + 1];
} line_reader;

/* How long line_reader_open waits for a process to open a FIFO for writing. */
enum { LINE_READER_FIFO_WAIT_MS = 1000 };

/* Opens --input PATH for reading, "-" meaning stdin, and sets *name to what
 * messages call it (PATH, or "(standard input)"). Takes regular files, pipes
 * and FIFOs, sockets, terminals and /dev/null; refuses directories and other
 * devices (/dev/zero, /dev/urandom, disks), which have no lines to read or
 * no end. A named FIFO is opened without blocking, so that one with no
 * writer cannot hang the run: square waits up to LINE_READER_FIFO_WAIT_MS
 * for a writer (enough for one started just before or after square) and
 * then refuses it; once it has a writer it is read like a pipe.
 * @return : 0; or -1, after one line "square: NAME: CAUSE" on stderr. */
int line_reader_open(line_reader *reader, const char *path, const char **name);

/* Reads from fd, which the caller keeps open (the fuzz target's file). */
void line_reader_init(line_reader *reader, int fd);

/* The next line, without its "\n" or "\r\n": *line and *size are valid until
 * the next call. A line longer than SQUARE_LINE_LIMIT comes back cut to
 * SQUARE_LINE_LIMIT + 1 bytes (square_parse_line says LINE_TOO_LONG), the
 * rest of it read and dropped. The last line needs no newline.
 * @return : 1 for a line; 0 at the end of the input; -1 if a read failed
 * (reader->read_errno says why; the line being read was line_number + 1). */
int line_reader_next(line_reader *reader, const char **line, size_t *size);

/* Closes what line_reader_open opened. */
void line_reader_close(line_reader *reader);

#endif
