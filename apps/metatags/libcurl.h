/* libcurl.h: libcurl's functions, loaded by the first fetcher (libcurl.c), for fetch.c: a run without URLs never loads it. */
#ifndef METATAGS_LIBCURL_H
#define METATAGS_LIBCURL_H

#include <stddef.h>

#define CURL_DISABLE_TYPECHECK /* its checks are macros named as the functions */
#include <curl/curl.h>

/* curl_NAME is called as libcurl.NAME, each of the type curl.h declares. */
typedef struct libcurl_api {
    __typeof__(curl_global_init) *global_init;
    __typeof__(curl_global_cleanup) *global_cleanup;
    __typeof__(curl_easy_init) *easy_init;
    __typeof__(curl_easy_cleanup) *easy_cleanup;
    __typeof__(curl_easy_reset) *easy_reset;
    __typeof__(curl_easy_setopt) *easy_setopt;
    __typeof__(curl_easy_getinfo) *easy_getinfo;
    __typeof__(curl_easy_pause) *easy_pause;
    __typeof__(curl_easy_strerror) *easy_strerror;
    __typeof__(curl_multi_init) *multi_init;
    __typeof__(curl_multi_cleanup) *multi_cleanup;
    __typeof__(curl_multi_add_handle) *multi_add_handle;
    __typeof__(curl_multi_remove_handle) *multi_remove_handle;
    __typeof__(curl_multi_perform) *multi_perform;
    __typeof__(curl_multi_poll) *multi_poll;
    __typeof__(curl_multi_info_read) *multi_info_read;
    __typeof__(curl_multi_strerror) *multi_strerror;
} libcurl_api;
extern libcurl_api libcurl;
/* Loads libcurl and runs curl_global_init, once per process, from any
 * thread. 0, or -1 with why in message (every later call says the same). */
int libcurl_load(char *message, size_t size);

#endif
