/* inputs.c: turns the command line's INPUTs (files, directories, @LIST files, URLs) into the list of pages. */
#define _GNU_SOURCE /* strndup */
#include "metatags.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

bool input_is_url(const char *name)
{
    /* Asked three times a page: paths fail at the first byte. */
    if ((name[0] | 0x20) != 'h')
        return false;
    return strncasecmp(name, "http://", 7) == 0 || strncasecmp(name, "https://", 8) == 0;
}

static void report(input_list *list, const char *name, const char *why)
{
    char *quoted = output_quote_name(name);
    fprintf(stderr, "metatags: %s: %s\n", quoted != NULL ? quoted : name, why);
    free(quoted);
    list->failures++;
}

static void report_not_regular(input_list *list, const char *name, unsigned mode)
{
    char why[128];
    snprintf(why, sizeof why, "not a regular file (%s); skipped", pages_file_kind(mode));
    report(list, name, why);
}

/* Takes name (malloc'd) into the list. */
static int append(input_list *list, char *name, uint64_t size)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity > 0 ? 2 * list->capacity : 256;
        char **names = realloc(list->names, capacity * sizeof *names);
        if (names != NULL)
            list->names = names;
        size_t *lengths = realloc(list->lengths, capacity * sizeof *lengths);
        if (lengths != NULL)
            list->lengths = lengths;
        uint64_t *sizes = realloc(list->sizes, capacity * sizeof *sizes);
        if (sizes != NULL)
            list->sizes = sizes;
        if (names == NULL || lengths == NULL || sizes == NULL) {
            free(name);
            return -1;
        }
        list->capacity = capacity;
    }
    list->names[list->count] = name;
    list->lengths[list->count] = strlen(name);
    list->sizes[list->count] = size;
    list->count++;
    return 0;
}

static bool is_page_name(const char *name)
{
    size_t length = strlen(name);
    return (length >= 5 && strcmp(name + length - 5, ".html") == 0) ||
           (length >= 4 && strcmp(name + length - 4, ".htm") == 0);
}

static char *join(const char *directory, const char *name)
{
    size_t length = strlen(directory);
    bool slash = length > 0 && directory[length - 1] == '/';
    char *path = malloc(length + strlen(name) + 2);
    if (path != NULL)
        sprintf(path, slash ? "%s%s" : "%s/%s", directory, name);
    return path;
}

/* The file type of a directory entry that is never a page, or 0. */
static unsigned mode_of_type(unsigned char type)
{
    switch (type) {
    case DT_FIFO: return S_IFIFO;
    case DT_SOCK: return S_IFSOCK;
    case DT_CHR: return S_IFCHR;
    case DT_BLK: return S_IFBLK;
    default: return 0;
    }
}

/* The directories from the walk's top down to the one being read, to tell
 * a symbolic link back to one of them (a loop) from a new directory. */
typedef struct ancestor {
    dev_t device;
    ino_t inode;
    const char *path;
    const struct ancestor *parent;
} ancestor;

static int compare_paths(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds the pages under path to list, sorted later by the caller. */
static int walk(input_list *list, const char *path, const ancestor *parent)
{
    DIR *directory = opendir(path);
    if (directory == NULL) {
        char why[256];
        snprintf(why, sizeof why, "cannot read directory: %s", strerror(errno));
        report(list, path, why);
        return 0;
    }
    /* Reading every name first keeps one directory handle open at a time
     * per level, however deep the tree. */
    char **names = NULL;
    unsigned char *types = NULL;
    size_t count = 0, capacity = 0;
    struct dirent *entry;
    int rc = 0;
    while ((entry = readdir(directory)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        if (count == capacity) {
            capacity = capacity > 0 ? 2 * capacity : 64;
            char **grown = realloc(names, capacity * sizeof *grown);
            if (grown != NULL)
                names = grown;
            unsigned char *grown_types = realloc(types, capacity);
            if (grown_types != NULL)
                types = grown_types;
            if (grown == NULL || grown_types == NULL) {
                rc = -1;
                break;
            }
        }
        if ((names[count] = join(path, entry->d_name)) == NULL) {
            rc = -1;
            break;
        }
        types[count++] = entry->d_type;
    }
    closedir(directory);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        char *child = names[i];
        names[i] = NULL;
        /* A regular file needs no stat: its size, when wanted, is read after sorting. */
        if (types[i] == DT_REG) {
            if (is_page_name(child))
                rc = append(list, child, 0);
            else
                free(child);
            continue;
        }
        /* A FIFO named like a page would hang its reader, a device would
         * never end: only regular files are pages. */
        unsigned mode = mode_of_type(types[i]);
        if (mode != 0) {
            if (is_page_name(child))
                report_not_regular(list, child, mode);
            free(child);
            continue;
        }
        struct stat status;
        if (stat(child, &status) != 0) {
            /* A page, or what may hold pages (a directory, or a name too
             * long to tell), is reported; a dangling link to anything
             * else is not an input. */
            if (is_page_name(child) || types[i] == DT_DIR || errno == ENAMETOOLONG) {
                char why[256];
                snprintf(why, sizeof why, "cannot open: %s", strerror(errno));
                report(list, child, why);
            }
            free(child);
            continue;
        }
        if (S_ISDIR(status.st_mode)) {
            const ancestor *seen = parent;
            while (seen != NULL && !(seen->device == status.st_dev && seen->inode == status.st_ino))
                seen = seen->parent;
            if (seen != NULL) {
                char *quoted = output_quote_name(seen->path);
                char why[17000];
                snprintf(why, sizeof why, "directory loop: this is %s again; not walked twice",
                         quoted != NULL ? quoted : seen->path);
                free(quoted);
                report(list, child, why);
            } else {
                ancestor here = {status.st_dev, status.st_ino, child, parent};
                rc = walk(list, child, &here);
            }
            free(child);
        } else if (!is_page_name(child)) {
            free(child);
        } else if (S_ISREG(status.st_mode)) {
            rc = append(list, child, 0);
        } else {
            report_not_regular(list, child, status.st_mode);
            free(child);
        }
    }
    free(types);
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
    return rc;
}

static uint64_t size_if_wanted(const input_list *list, const char *path)
{
    struct stat status;
    return list->want_sizes && stat(path, &status) == 0 ? (uint64_t)status.st_size : 0;
}

static int add_input(input_list *list, const char *name, bool listed)
{
    if (input_is_url(name)) {
        char *copy = strdup(name);
        if (copy == NULL)
            return -1;
        list->has_urls = true;
        return append(list, copy, 0);
    }
    /* A list of pages is usually long (thousands of paths, made by find),
     * and checking each name before the pool starts was 15-20% of a
     * 10,600-page run: the stat walks the whole path again, one core
     * alone. The worker opens and checks the page anyway. */
    if (listed && is_page_name(name)) {
        char *copy = strdup(name);
        return copy != NULL ? append(list, copy, size_if_wanted(list, name)) : -1;
    }
    struct stat status;
    if (stat(name, &status) != 0) {
        char why[256];
        snprintf(why, sizeof why, "cannot open: %s", strerror(errno));
        report(list, name, why);
        return 0;
    }
    if (S_ISREG(status.st_mode)) {
        char *copy = strdup(name);
        return copy != NULL ? append(list, copy, (uint64_t)status.st_size) : -1;
    }
    if (!S_ISDIR(status.st_mode)) {
        report_not_regular(list, name, status.st_mode);
        return 0;
    }
    size_t first = list->count;
    ancestor top = {status.st_dev, status.st_ino, name, NULL};
    if (walk(list, name, &top) != 0)
        return -1;
    /* Bytewise order of whole paths, as `LC_ALL=C sort` gives. */
    qsort(list->names + first, list->count - first, sizeof *list->names, compare_paths);
    for (size_t i = first; i < list->count; i++) {
        list->lengths[i] = strlen(list->names[i]);
        list->sizes[i] = size_if_wanted(list, list->names[i]);
    }
    return 0;
}

/* Reads a @LIST through a buffer of its own rather than getline, so that a
 * line too long to be a name (a file of zeros, say, under ulimit -v) is
 * skipped without being held, and a read error is told from the end. */
typedef struct list_reader {
    int fd;
    char buffer[64 * 1024];
    size_t start, end;
    bool at_end;
} list_reader;

enum { LINE_READ = 0, LINE_END = -1, LINE_TOO_LONG = -2, LINE_HAS_NUL = -3, LINE_READ_ERROR = -4,
       LINE_NO_MEMORY = -5, LINE_STOPPED = -6 };

/* The pool whose stop (a signal) ends the reading of lists: one from an
 * idle pipe, or an endless one (@/dev/zero), would otherwise hold the
 * program, since the handler restarts the read (SA_RESTART). */
static const hpool_pool *stopping_pool;

void inputs_stop_with(const struct hpool_pool *pool)
{
    stopping_pool = pool;
}

/* Whether to stop reading fd: waits until fd is readable, looking for the
 * pool's stop before each read and every 200 ms while fd has nothing. A
 * signal interrupts the poll (poll is never restarted), and is looked at
 * again before the read. The wait also covers a named FIFO that no writer
 * has opened yet: opened without blocking, it reads as ended until one has,
 * but poll waits for it. */
static bool stop_before_read(int fd)
{
    struct pollfd ready = {.fd = fd, .events = POLLIN};
    for (;;) {
        if (stopping_pool != NULL && hpool_pool_stopped(stopping_pool, NULL) != 0)
            return true;
        int polled = poll(&ready, 1, stopping_pool != NULL ? 200 : -1);
        if (polled > 0 || (polled < 0 && errno != EINTR))
            return false; /* readable, ended, or an error the read will report */
    }
}

/* The next line, without its LF, into *line (a buffer grown as needed);
 * LINE_READ, or one of the others (errno set for LINE_READ_ERROR). A line
 * over METATAGS_MAX_LIST_LINE or with a NUL byte is read to its end and
 * refused. */
static int next_line(list_reader *reader, char **line, size_t *capacity, size_t *length)
{
    size_t used = 0;
    bool too_long = false, has_nul = false, any = false;
    for (;;) {
        if (reader->start == reader->end) {
            if (reader->at_end)
                break;
            if (stop_before_read(reader->fd))
                return LINE_STOPPED;
            ssize_t got = read(reader->fd, reader->buffer, sizeof reader->buffer);
            if (got < 0 && errno == EINTR)
                continue;
            if (got < 0)
                return LINE_READ_ERROR;
            reader->start = 0;
            reader->end = (size_t)got;
            reader->at_end = got == 0;
            continue;
        }
        any = true;
        const char *from = reader->buffer + reader->start;
        size_t available = reader->end - reader->start;
        const char *newline = memchr(from, '\n', available);
        size_t take = newline != NULL ? (size_t)(newline - from) : available;
        reader->start += take + (newline != NULL);
        if (memchr(from, '\0', take) != NULL)
            has_nul = true;
        if (!too_long && used + take > METATAGS_MAX_LIST_LINE)
            too_long = true;
        if (!too_long) {
            if (used + take + 1 > *capacity) {
                size_t grown_capacity = *capacity > 0 ? *capacity : 256;
                while (grown_capacity < used + take + 1)
                    grown_capacity *= 2;
                char *grown = realloc(*line, grown_capacity);
                if (grown == NULL)
                    return LINE_NO_MEMORY;
                *line = grown;
                *capacity = grown_capacity;
            }
            memcpy(*line + used, from, take);
            used += take;
        }
        if (newline != NULL)
            break;
    }
    if (!any)
        return LINE_END;
    if (too_long)
        return LINE_TOO_LONG;
    if (has_nul)
        return LINE_HAS_NUL;
    (*line)[used] = '\0';
    *length = used;
    return LINE_READ;
}

/* One name per line; blank lines are skipped and a CR before the LF goes.
 * A bad line is reported with its number and the list read on; a list that
 * cannot be read (a directory, a read error) is reported as such. */
static int add_list(input_list *list, const char *list_name)
{
    char shown[4200];
    snprintf(shown, sizeof shown, "@%s", list_name);
    bool from_stdin = strcmp(list_name, "-") == 0;
    /* A FIFO is a fine list (find ... | metatags @/dev/stdin): it is read
     * here, once, on the root, and waiting for its writer is right, but in
     * stop_before_read, where a signal's stop ends the wait: a blocking
     * open of a FIFO would wait for the writer where nothing can see the
     * stop. The reads after it block. */
    int fd = from_stdin ? STDIN_FILENO : open(list_name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd >= 0 && !from_stdin) {
        int flags = fcntl(fd, F_GETFL);
        if (flags >= 0)
            fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    }
    char why[256];
    if (fd < 0) {
        snprintf(why, sizeof why, "cannot open list: %s", strerror(errno));
        report(list, shown, why);
        return 0;
    }
    struct stat status;
    if (fstat(fd, &status) == 0 && S_ISDIR(status.st_mode)) {
        report(list, shown, "cannot read list: is a directory (give it without the @ to walk it)");
        if (!from_stdin)
            close(fd);
        return 0;
    }
    list_reader *reader = malloc(sizeof *reader);
    if (reader == NULL) {
        if (!from_stdin)
            close(fd);
        return -1;
    }
    reader->fd = fd;
    reader->start = reader->end = 0;
    reader->at_end = false;
    char *line = NULL;
    size_t capacity = 0, length = 0;
    int rc = 0;
    for (size_t number = 1; rc == 0; number++) {
        int got = next_line(reader, &line, &capacity, &length);
        if (got == LINE_END)
            break;
        if (got == LINE_STOPPED) {
            rc = 1;
            break;
        }
        if (got == LINE_NO_MEMORY) {
            rc = -1;
            break;
        }
        if (got == LINE_READ_ERROR) {
            snprintf(why, sizeof why, "cannot read list at line %zu: %s; the rest of the list is not read", number,
                     strerror(errno));
            report(list, shown, why);
            break;
        }
        if (got == LINE_TOO_LONG || got == LINE_HAS_NUL) {
            if (got == LINE_TOO_LONG)
                snprintf(why, sizeof why, "line %zu: longer than %zu bytes, not a name; skipped", number,
                         METATAGS_MAX_LIST_LINE);
            else
                snprintf(why, sizeof why, "line %zu: has a NUL byte, not a name; skipped", number);
            report(list, shown, why);
            continue;
        }
        while (length > 0 && line[length - 1] == '\r')
            line[--length] = '\0';
        if (length > 0)
            rc = add_input(list, line, true);
    }
    free(line);
    free(reader);
    if (!from_stdin)
        close(fd);
    return rc;
}

int inputs_expand(input_list *list, char **arguments, int count)
{
    for (int i = 0; i < count; i++) {
        int rc = arguments[i][0] == '@' ? add_list(list, arguments[i] + 1) : add_input(list, arguments[i], false);
        if (rc != 0)
            return rc < 0 ? -1 : 1;
    }
    return 0;
}

void inputs_free(input_list *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->names[i]);
    free(list->names);
    free(list->lengths);
    free(list->sizes);
    memset(list, 0, sizeof *list);
}
