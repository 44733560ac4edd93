/* inputs.c: turns the command line's INPUTs (files, directories, @LIST files, URLs) into the list of pages. */
#define _GNU_SOURCE /* strndup, getline */
#include "metatags.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

bool input_is_url(const char *name)
{
    return strncasecmp(name, "http://", 7) == 0 || strncasecmp(name, "https://", 8) == 0;
}

static void report(input_list *list, const char *name, const char *why)
{
    fprintf(stderr, "metatags: %s: %s\n", name, why);
    list->failures++;
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
        struct stat status;
        if (stat(child, &status) != 0) {
            if (is_page_name(child)) {
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
                char why[4200];
                snprintf(why, sizeof why, "directory loop: this is %s again; not walked twice", seen->path);
                report(list, child, why);
            } else {
                ancestor here = {status.st_dev, status.st_ino, child, parent};
                rc = walk(list, child, &here);
            }
            free(child);
        } else if (is_page_name(child)) {
            rc = append(list, child, 0);
        } else {
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
    if (!S_ISDIR(status.st_mode)) {
        char *copy = strdup(name);
        return copy != NULL ? append(list, copy, (uint64_t)status.st_size) : -1;
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

/* One name per line; blank lines are skipped and a CR before the LF goes. */
static int add_list(input_list *list, const char *list_name)
{
    bool from_stdin = strcmp(list_name, "-") == 0;
    FILE *file = from_stdin ? stdin : fopen(list_name, "r");
    if (file == NULL) {
        char why[256];
        snprintf(why, sizeof why, "cannot open list: %s", strerror(errno));
        char shown[4200];
        snprintf(shown, sizeof shown, "@%s", list_name);
        report(list, shown, why);
        return 0;
    }
    char *line = NULL;
    size_t capacity = 0;
    ssize_t length;
    int rc = 0;
    while (rc == 0 && (length = getline(&line, &capacity, file)) >= 0) {
        while (length > 0 && (line[length - 1] == '\n' || line[length - 1] == '\r'))
            line[--length] = '\0';
        if (length > 0)
            rc = add_input(list, line, true);
    }
    free(line);
    if (!from_stdin)
        fclose(file);
    return rc;
}

int inputs_expand(input_list *list, char **arguments, int count)
{
    for (int i = 0; i < count; i++) {
        int rc = arguments[i][0] == '@' ? add_list(list, arguments[i] + 1) : add_input(list, arguments[i], false);
        if (rc != 0)
            return -1;
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
