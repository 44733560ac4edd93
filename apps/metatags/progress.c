/* progress.c: the progress line on stderr (pages done / total, MB/s, ETA), and report lines that do not garble it. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "metatags.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

struct progress {
    pthread_mutex_t lock; /* the pool's thread reports progress, the main thread problems */
    const input_list *inputs;
    bool enabled, terminal, line_shown;
    uint64_t pages_done, bytes_done;
    double started, last_drawn;
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

progress *progress_create(const input_list *inputs, bool enabled)
{
    progress *progress = calloc(1, sizeof *progress);
    if (progress == NULL)
        return NULL;
    pthread_mutex_init(&progress->lock, NULL);
    progress->inputs = inputs;
    progress->enabled = enabled;
    progress->terminal = isatty(STDERR_FILENO);
    progress->started = progress->last_drawn = now();
    return progress;
}

/* On a terminal the line is redrawn in place; elsewhere (a log file) one
 * line per second at most. */
static void draw(progress *progress, double at)
{
    double elapsed = at - progress->started;
    double mb = (double)progress->bytes_done / 1e6;
    double rate = elapsed > 0 ? mb / elapsed : 0;
    uint64_t total = progress->inputs->count;
    double eta = progress->pages_done > 0 && progress->pages_done < total
                     ? elapsed * (double)(total - progress->pages_done) / (double)progress->pages_done
                     : 0;
    fprintf(stderr, "%smetatags: %llu/%llu pages, %.1f MB, %.1f MB/s, ETA %.0f s%s",
            progress->terminal ? "\r\033[K" : "", (unsigned long long)progress->pages_done,
            (unsigned long long)total, mb, rate, eta, progress->terminal ? "" : "\n");
    progress->line_shown = progress->terminal;
    progress->last_drawn = at;
}

void progress_items_done(progress *progress, uint64_t first, uint64_t count)
{
    if (progress == NULL)
        return;
    pthread_mutex_lock(&progress->lock);
    progress->pages_done += count;
    for (uint64_t i = first; i < first + count && i < progress->inputs->count; i++)
        progress->bytes_done += progress->inputs->sizes[i];
    double at = now();
    if (progress->enabled && at - progress->last_drawn >= (progress->terminal ? 0.2 : 1.0))
        draw(progress, at);
    pthread_mutex_unlock(&progress->lock);
}

void progress_report(progress *progress, const char *path, const char *message)
{
    if (progress != NULL)
        pthread_mutex_lock(&progress->lock);
    if (progress != NULL && progress->line_shown) {
        fputs("\r\033[K", stderr);
        progress->line_shown = false;
    }
    char *quoted = output_quote_name(path);
    fprintf(stderr, "metatags: %s: %s\n", quoted != NULL ? quoted : path, message);
    free(quoted);
    if (progress != NULL)
        pthread_mutex_unlock(&progress->lock);
}

void progress_finish(progress *progress)
{
    if (progress == NULL || !progress->enabled)
        return;
    pthread_mutex_lock(&progress->lock);
    draw(progress, now());
    if (progress->terminal)
        fputc('\n', stderr);
    progress->line_shown = false;
    pthread_mutex_unlock(&progress->lock);
}

void progress_free(progress *progress)
{
    if (progress == NULL)
        return;
    pthread_mutex_destroy(&progress->lock);
    free(progress);
}
