/* fetch.c: fetches URLs with libcurl, a whole span's transfers at once on one multi handle, their bodies bounded together. */
#include "metatags.h"
#include "libcurl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct fetcher fetcher;

typedef struct transfer {
    CURL *easy;
    fetcher *owner;
    size_t slot;
    page_buffer body;
    bool active, done, too_big, out_of_memory, paused;
    CURLcode result;
    char error[CURL_ERROR_SIZE];
} transfer;

/* How the bodies are bounded together: a task's 32 transfers once held 32
 * bodies at once (four gzip bombs of 0.9 MB took 3.9 GB). Now the body
 * being waited for may grow to max_body, and the others only while the
 * buffers of all bodies (their capacity: what is allocated) stay within
 * max_body: one that would go over is paused
 * (CURL_WRITEFUNC_PAUSE; libcurl gives the same bytes again on resume) until
 * a scanned body is released. Pausing rather than failing keeps the output
 * independent of which pages share a task. */
struct fetcher {
    CURLM *multi;
    transfer **transfers; /* each apart: libcurl holds pointers to them */
    size_t capacity;
    long timeout_ms;
    size_t max_body;
    size_t held;    /* bytes allocated to the bodies not yet released */
    size_t awaited; /* the slot fetcher_wait waits for, or SIZE_MAX */
};

int fetcher_create(fetcher **created, long timeout_ms, size_t max_body, char *message, size_t size)
{
    *created = NULL;
    if (libcurl_load(message, size) != 0)
        return -1;
    fetcher *fetcher = calloc(1, sizeof *fetcher);
    if (fetcher == NULL)
        return HPOOL_ENOMEM;
    fetcher->multi = libcurl.multi_init();
    if (fetcher->multi == NULL) {
        free(fetcher);
        return HPOOL_ENOMEM;
    }
    fetcher->timeout_ms = timeout_ms;
    fetcher->max_body = max_body;
    fetcher->awaited = SIZE_MAX;
    *created = fetcher;
    return 0;
}

void fetcher_reset(fetcher *fetcher)
{
    for (size_t i = 0; i < fetcher->capacity; i++) {
        transfer *t = fetcher->transfers[i];
        if (t == NULL)
            continue;
        if (t->active)
            libcurl.multi_remove_handle(fetcher->multi, t->easy);
        t->active = t->done = t->too_big = t->out_of_memory = t->paused = false;
        free(t->body.data);
        t->body.data = NULL;
        t->body.size = t->body.capacity = 0;
    }
    fetcher->held = 0;
    fetcher->awaited = SIZE_MAX;
}

/* Lets the paused transfers try again; each pauses anew if still no room. */
static void resume_paused(fetcher *fetcher)
{
    for (size_t i = 0; i < fetcher->capacity; i++) {
        transfer *t = fetcher->transfers[i];
        if (t != NULL && t->active && t->paused) {
            t->paused = false;
            libcurl.easy_pause(t->easy, CURLPAUSE_CONT);
        }
    }
}

void fetcher_release(fetcher *fetcher, size_t slot)
{
    if (slot >= fetcher->capacity || fetcher->transfers[slot] == NULL)
        return;
    transfer *t = fetcher->transfers[slot];
    fetcher->held -= t->body.capacity < fetcher->held ? t->body.capacity : fetcher->held;
    free(t->body.data);
    t->body.data = NULL;
    t->body.size = t->body.capacity = 0;
    if (fetcher->awaited == slot)
        fetcher->awaited = SIZE_MAX;
    resume_paused(fetcher);
}

void fetcher_free(fetcher *fetcher)
{
    if (fetcher == NULL)
        return;
    fetcher_reset(fetcher);
    for (size_t i = 0; i < fetcher->capacity; i++) {
        transfer *t = fetcher->transfers[i];
        if (t == NULL)
            continue;
        if (t->easy != NULL)
            libcurl.easy_cleanup(t->easy);
        free(t->body.data);
        free(t);
    }
    free(fetcher->transfers);
    libcurl.multi_cleanup(fetcher->multi);
    free(fetcher);
}

/* libcurl's write callback: the bytes after decompression. Returning
 * fewer than given stops the transfer with a write error, whose message
 * ("Failure writing output to destination") fetcher_wait replaces. */
static size_t receive(char *data, size_t one, size_t count, void *user)
{
    transfer *t = user;
    fetcher *fetcher = t->owner;
    size_t size = one * count;
    page_buffer *body = &t->body;
    if (size > fetcher->max_body - body->size) {
        t->too_big = true;
        return 0;
    }
    size_t before = body->capacity;
    size_t growth = page_buffer_grown_capacity(body, size, fetcher->max_body) - before;
    if (t->slot != fetcher->awaited && growth > 0 && fetcher->held + growth > fetcher->max_body) {
        t->paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    if (page_buffer_append_at_most(body, data, size, fetcher->max_body) != 0) {
        t->out_of_memory = true;
        return 0;
    }
    fetcher->held += body->capacity - before;
    return size;
}

int fetcher_start(fetcher *fetcher, size_t slot, const char *url)
{
    if (slot >= fetcher->capacity) {
        size_t capacity = fetcher->capacity > 0 ? fetcher->capacity : 16;
        while (capacity <= slot)
            capacity *= 2;
        transfer **grown = realloc(fetcher->transfers, capacity * sizeof *grown);
        if (grown == NULL)
            return HPOOL_ENOMEM;
        memset(grown + fetcher->capacity, 0, (capacity - fetcher->capacity) * sizeof *grown);
        fetcher->transfers = grown;
        fetcher->capacity = capacity;
    }
    if (fetcher->transfers[slot] == NULL && (fetcher->transfers[slot] = calloc(1, sizeof(transfer))) == NULL)
        return HPOOL_ENOMEM;
    transfer *t = fetcher->transfers[slot];
    if (t->easy == NULL && (t->easy = libcurl.easy_init()) == NULL)
        return HPOOL_ENOMEM;
    libcurl.easy_reset(t->easy);
    fetcher_release(fetcher, slot);
    t->owner = fetcher;
    t->slot = slot;
    t->done = t->too_big = t->out_of_memory = t->paused = false;
    t->error[0] = '\0';
    CURL *easy = t->easy;
    libcurl.easy_setopt(easy, CURLOPT_URL, url);
    libcurl.easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    libcurl.easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    libcurl.easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);
    libcurl.easy_setopt(easy, CURLOPT_MAXREDIRS, 10L);
    libcurl.easy_setopt(easy, CURLOPT_TIMEOUT_MS, fetcher->timeout_ms);
    libcurl.easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, fetcher->timeout_ms < 10000 ? fetcher->timeout_ms : 10000L);
    libcurl.easy_setopt(easy, CURLOPT_NOSIGNAL, 1L); /* signals and threads do not mix */
    libcurl.easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
    libcurl.easy_setopt(easy, CURLOPT_USERAGENT, "metatags (hpool)");
    libcurl.easy_setopt(easy, CURLOPT_WRITEFUNCTION, receive);
    libcurl.easy_setopt(easy, CURLOPT_WRITEDATA, t);
    libcurl.easy_setopt(easy, CURLOPT_ERRORBUFFER, t->error);
    libcurl.easy_setopt(easy, CURLOPT_PRIVATE, t);
    if (libcurl.multi_add_handle(fetcher->multi, easy) != CURLM_OK)
        return HPOOL_ENOMEM;
    t->active = true;
    return 0;
}

/* Marks the transfers libcurl reports finished. */
static void collect_finished(fetcher *fetcher)
{
    CURLMsg *message;
    int left;
    while ((message = libcurl.multi_info_read(fetcher->multi, &left)) != NULL) {
        if (message->msg != CURLMSG_DONE)
            continue;
        transfer *t = NULL;
        libcurl.easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        t->result = message->data.result;
        t->done = true;
        libcurl.multi_remove_handle(fetcher->multi, t->easy);
        t->active = false;
    }
}

int fetcher_wait(fetcher *fetcher, size_t slot, page_buffer **body, char *message, size_t size)
{
    transfer *t = fetcher->transfers[slot];
    fetcher->awaited = slot;
    if (t->paused) {
        t->paused = false;
        libcurl.easy_pause(t->easy, CURLPAUSE_CONT);
    }
    while (!t->done) {
        int running = 0;
        CURLMcode rc = libcurl.multi_perform(fetcher->multi, &running);
        collect_finished(fetcher);
        if (t->done)
            break;
        if (rc != CURLM_OK || (rc = libcurl.multi_poll(fetcher->multi, NULL, 0, 1000, NULL)) != CURLM_OK) {
            snprintf(message, size, "fetch failed: %s", libcurl.multi_strerror(rc));
            return -1;
        }
    }
    if (t->too_big) {
        snprintf(message, size, "larger than --max-page-size (more than %zu bytes, decompressed); skipped",
                 fetcher->max_body);
        return -1;
    }
    if (t->out_of_memory) {
        snprintf(message, size, "fetch failed: out of memory after %zu bytes of the page", t->body.size);
        return -1;
    }
    if (t->result != CURLE_OK) {
        const char *why = t->error[0] != '\0' ? t->error : libcurl.easy_strerror(t->result);
        snprintf(message, size, "fetch failed: %s", why);
        return -1;
    }
    long status = 0;
    libcurl.easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 400) {
        snprintf(message, size, "fetch failed: HTTP status %ld", status);
        return -1;
    }
    *body = &t->body;
    return 0;
}
