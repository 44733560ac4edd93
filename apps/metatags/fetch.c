/* fetch.c: fetches URLs with libcurl, a whole span's transfers at once on one multi handle. */
#include "metatags.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

/* Bodies beyond this are cut off and reported rather than filling memory. */
#define FETCH_MAX_BODY ((size_t)1 << 30)

typedef struct transfer {
    CURL *easy;
    page_buffer body;
    bool active, done, too_big;
    CURLcode result;
    char error[CURL_ERROR_SIZE];
} transfer;

struct fetcher {
    CURLM *multi;
    transfer **transfers; /* each apart: libcurl holds pointers to them */
    size_t capacity;
    long timeout_ms;
};

fetcher *fetcher_create(long timeout_ms)
{
    fetcher *fetcher = calloc(1, sizeof *fetcher);
    if (fetcher == NULL)
        return NULL;
    fetcher->multi = curl_multi_init();
    if (fetcher->multi == NULL) {
        free(fetcher);
        return NULL;
    }
    fetcher->timeout_ms = timeout_ms;
    return fetcher;
}

void fetcher_reset(fetcher *fetcher)
{
    for (size_t i = 0; i < fetcher->capacity; i++) {
        transfer *t = fetcher->transfers[i];
        if (t == NULL)
            continue;
        if (t->active)
            curl_multi_remove_handle(fetcher->multi, t->easy);
        t->active = t->done = t->too_big = false;
        t->body.size = 0;
    }
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
            curl_easy_cleanup(t->easy);
        free(t->body.data);
        free(t);
    }
    free(fetcher->transfers);
    curl_multi_cleanup(fetcher->multi);
    free(fetcher);
}

static size_t receive(char *data, size_t one, size_t count, void *user)
{
    transfer *t = user;
    size_t size = one * count;
    page_buffer *body = &t->body;
    if (body->size + size > FETCH_MAX_BODY) {
        t->too_big = true;
        return 0; /* makes libcurl stop with a write error */
    }
    return page_buffer_append(body, data, size) == 0 ? size : 0;
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
    if (t->easy == NULL && (t->easy = curl_easy_init()) == NULL)
        return HPOOL_ENOMEM;
    curl_easy_reset(t->easy);
    t->body.size = 0;
    t->done = t->too_big = false;
    t->error[0] = '\0';
    CURL *easy = t->easy;
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(easy, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, fetcher->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, fetcher->timeout_ms < 10000 ? fetcher->timeout_ms : 10000L);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L); /* signals and threads do not mix */
    curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "metatags (hpool)");
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, receive);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->error);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
    if (curl_multi_add_handle(fetcher->multi, easy) != CURLM_OK)
        return HPOOL_ENOMEM;
    t->active = true;
    return 0;
}

/* Marks the transfers libcurl reports finished. */
static void collect_finished(fetcher *fetcher)
{
    CURLMsg *message;
    int left;
    while ((message = curl_multi_info_read(fetcher->multi, &left)) != NULL) {
        if (message->msg != CURLMSG_DONE)
            continue;
        transfer *t = NULL;
        curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        t->result = message->data.result;
        t->done = true;
        curl_multi_remove_handle(fetcher->multi, t->easy);
        t->active = false;
    }
}

int fetcher_wait(fetcher *fetcher, size_t slot, page_buffer **body, char *message, size_t size)
{
    transfer *t = fetcher->transfers[slot];
    while (!t->done) {
        int running = 0;
        CURLMcode rc = curl_multi_perform(fetcher->multi, &running);
        collect_finished(fetcher);
        if (t->done)
            break;
        if (rc != CURLM_OK || (rc = curl_multi_poll(fetcher->multi, NULL, 0, 1000, NULL)) != CURLM_OK) {
            snprintf(message, size, "fetch failed: %s", curl_multi_strerror(rc));
            return -1;
        }
    }
    if (t->too_big) {
        snprintf(message, size, "fetch failed: page larger than %zu bytes", FETCH_MAX_BODY);
        return -1;
    }
    if (t->result != CURLE_OK) {
        const char *why = t->error[0] != '\0' ? t->error : curl_easy_strerror(t->result);
        snprintf(message, size, "fetch failed: %s", why);
        return -1;
    }
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 400) {
        snprintf(message, size, "fetch failed: HTTP status %ld", status);
        return -1;
    }
    *body = &t->body;
    return 0;
}
