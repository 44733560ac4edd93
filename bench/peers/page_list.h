/* page_list.h: the pages of metatags-style INPUTs (files, directories, @LIST files) and a bare whole-file read, for read_floor.c and scan_floor.c. */
#ifndef PAGE_LIST_H
#define PAGE_LIST_H

/* The includer defines _GNU_SOURCE (or _POSIX_C_SOURCE) first. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The same pages, in the same order, as apps/metatags reads for the same
 * INPUTs (see its inputs.c), URLs aside:
 *   FILE       a regular file, whatever its name;
 *   DIRECTORY  every regular file under it named *.html or *.htm,
 *              symbolic links followed, a directory loop walked once, in
 *              bytewise order of the whole paths;
 *   @LIST      each line an INPUT (not an @LIST); a CR before the LF goes,
 *              blank lines are skipped, and a line ending in .html or .htm
 *              is taken as a page without a look at it (metatags does not
 *              stat them either: the read says what is wrong).
 * A bad INPUT gets a line on stderr and is counted in failures. */
typedef struct page_list {
    char **names;
    size_t *lengths;
    size_t count, capacity;
    int failures;
} page_list;

static void page_list_report(page_list *list, const char *name, const char *why)
{
    fprintf(stderr, "%s: %s\n", name, why);
    list->failures++;
}

/* Takes name (malloc'd); -1 when out of memory. */
static int page_list_add(page_list *list, char *name)
{
    if (name == NULL)
        return -1;
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? 2 * list->capacity : 1024;
        char **names = realloc(list->names, capacity * sizeof *names);
        if (names == NULL) {
            free(name);
            return -1;
        }
        list->names = names;
        size_t *lengths = realloc(list->lengths, capacity * sizeof *lengths);
        if (lengths == NULL) {
            free(name);
            return -1;
        }
        list->lengths = lengths;
        list->capacity = capacity;
    }
    list->lengths[list->count] = strlen(name);
    list->names[list->count++] = name;
    return 0;
}

static bool page_list_is_page_name(const char *name)
{
    size_t n = strlen(name);
    return (n >= 5 && strcmp(name + n - 5, ".html") == 0) || (n >= 4 && strcmp(name + n - 4, ".htm") == 0);
}

static char *page_list_join(const char *directory, const char *name)
{
    size_t n = strlen(directory), m = strlen(name);
    bool slash = n > 0 && directory[n - 1] == '/';
    char *path = malloc(n + m + 2);
    if (path != NULL) {
        memcpy(path, directory, n);
        if (!slash)
            path[n++] = '/';
        memcpy(path + n, name, m + 1);
    }
    return path;
}

/* A directory on the way down, to know a link back up (a loop) when one
 * comes. */
typedef struct page_list_ancestor {
    dev_t device;
    ino_t inode;
    const struct page_list_ancestor *parent;
} page_list_ancestor;

static int page_list_walk(page_list *list, const char *path, const page_list_ancestor *parent)
{
    DIR *directory = opendir(path);
    if (directory == NULL) {
        page_list_report(list, path, "cannot read directory");
        return 0;
    }
    /* The names first, then the directory closed: one handle open per
     * level, however deep the tree. */
    char **children = NULL;
    unsigned char *types = NULL;
    size_t count = 0, capacity = 0;
    int rc = 0;
    struct dirent *entry;
    while (rc == 0 && (entry = readdir(directory)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        if (count == capacity) {
            capacity = capacity ? 2 * capacity : 64;
            char **more = realloc(children, capacity * sizeof *more);
            unsigned char *more_types = more != NULL ? realloc(types, capacity) : NULL;
            if (more != NULL)
                children = more;
            if (more_types == NULL) {
                rc = -1;
                break;
            }
            types = more_types;
        }
        if ((children[count] = page_list_join(path, entry->d_name)) == NULL)
            rc = -1;
        else
            types[count++] = entry->d_type;
    }
    closedir(directory);
    for (size_t i = 0; i < count; i++) {
        char *child = children[i];
        children[i] = NULL;
        if (rc != 0) {
            free(child);
            continue;
        }
        bool page_name = page_list_is_page_name(child);
        if (types[i] == DT_REG) {
            if (page_name)
                rc = page_list_add(list, child);
            else
                free(child);
            continue;
        }
        if (types[i] == DT_FIFO || types[i] == DT_SOCK || types[i] == DT_CHR || types[i] == DT_BLK) {
            if (page_name)
                page_list_report(list, child, "not a regular file; skipped");
            free(child);
            continue;
        }
        /* A directory, a link or an unknown type: stat says which. */
        struct stat status;
        if (stat(child, &status) != 0) {
            if (page_name)
                page_list_report(list, child, "cannot open");
        } else if (S_ISDIR(status.st_mode)) {
            const page_list_ancestor *seen = parent;
            while (seen != NULL && !(seen->device == status.st_dev && seen->inode == status.st_ino))
                seen = seen->parent;
            if (seen != NULL) {
                page_list_report(list, child, "directory loop; not walked twice");
            } else {
                page_list_ancestor here = {status.st_dev, status.st_ino, parent};
                rc = page_list_walk(list, child, &here);
            }
        } else if (page_name && S_ISREG(status.st_mode)) {
            rc = page_list_add(list, child);
            continue;
        } else if (page_name) {
            page_list_report(list, child, "not a regular file; skipped");
        }
        free(child);
    }
    free(children);
    free(types);
    return rc;
}

static int page_list_compare(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int page_list_add_input(page_list *list, const char *name, bool listed)
{
    if (listed && page_list_is_page_name(name))
        return page_list_add(list, strdup(name));
    struct stat status;
    if (stat(name, &status) != 0) {
        page_list_report(list, name, "cannot open");
        return 0;
    }
    if (S_ISREG(status.st_mode))
        return page_list_add(list, strdup(name));
    if (!S_ISDIR(status.st_mode)) {
        page_list_report(list, name, "not a regular file; skipped");
        return 0;
    }
    size_t first = list->count;
    page_list_ancestor top = {status.st_dev, status.st_ino, NULL};
    if (page_list_walk(list, name, &top) != 0)
        return -1;
    qsort(list->names + first, list->count - first, sizeof *list->names, page_list_compare);
    for (size_t i = first; i < list->count; i++)
        list->lengths[i] = strlen(list->names[i]);
    return 0;
}

static int page_list_add_list(page_list *list, const char *list_name)
{
    FILE *file = strcmp(list_name, "-") == 0 ? stdin : fopen(list_name, "rb");
    if (file == NULL) {
        page_list_report(list, list_name, "cannot open list");
        return 0;
    }
    char *line = NULL;
    size_t capacity = 0;
    ssize_t length;
    int rc = 0;
    while (rc == 0 && (length = getline(&line, &capacity, file)) >= 0) {
        if (length > 0 && line[length - 1] == '\n')
            line[--length] = '\0';
        while (length > 0 && line[length - 1] == '\r')
            line[--length] = '\0';
        if (length > 0)
            rc = page_list_add_input(list, line, true);
    }
    free(line);
    if (file != stdin)
        fclose(file);
    return rc;
}

/* Expands every INPUT; -1 only when out of memory. */
static int page_list_expand(page_list *list, char **inputs, int count)
{
    for (int i = 0; i < count; i++) {
        int rc = inputs[i][0] == '@' ? page_list_add_list(list, inputs[i] + 1)
                                     : page_list_add_input(list, inputs[i], false);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* A thread's buffer, reused page after page; PAGE_PADDING bytes after
 * the data may be read by vector loads. */
#define PAGE_PADDING 64

typedef struct page_buffer {
    uint8_t *data;
    size_t capacity; /* bytes for data, PAGE_PADDING more allocated */
} page_buffer;

static int page_buffer_grow(page_buffer *buffer, size_t have)
{
    size_t capacity = buffer->capacity ? 2 * buffer->capacity : (1u << 20);
    /* Page-aligned: the kernel's copy out of the page cache into a buffer
     * that is not 64-byte aligned runs 3x slower on AMD Zen. */
    uint8_t *grown = aligned_alloc(4096, capacity + 4096);
    if (grown == NULL)
        return -1;
    if (have > 0)
        memcpy(grown, buffer->data, have);
    free(buffer->data);
    buffer->data = grown;
    buffer->capacity = capacity;
    return 0;
}

/* open, read, close and nothing else: no fstat, no check of the file's
 * kind, and a short read ends the file (true of regular files, which is
 * all a list of pages holds), so a page that fits the buffer costs one
 * read. This is the floor, not a tool: metatags does more on purpose.
 * The page's size, or -1 with errno set. */
static int64_t page_read(const char *path, page_buffer *buffer)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    size_t have = 0;
    for (;;) {
        if (have == buffer->capacity && page_buffer_grow(buffer, have) != 0) {
            close(fd);
            errno = ENOMEM;
            return -1;
        }
        size_t want = buffer->capacity - have;
        ssize_t got = read(fd, buffer->data + have, want);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
        have += (size_t)got;
        if ((size_t)got < want)
            break;
    }
    close(fd);
    return (int64_t)have;
}

#endif
