/* libcurl.c: loads libcurl when the first URL comes (dlopen), so that a run over local pages skips its start-up. */
#include "metatags.h"
#include "libcurl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

/* Linked, libcurl and the 35 libraries it pulls in (OpenSSL, GnuTLS,
 * Kerberos, LDAP...) cost every run 3.3 ms of CPU and 4.4 ms of wall time
 * before main (an empty program linked with -lcurl, here), and
 * curl_global_init 0.5 ms more: a tenth of a 100 ms run over 10,600 local
 * pages, which never fetch. */
libcurl_api libcurl;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[256];
static bool loaded;

static void load(void)
{
    void *library = dlopen(METATAGS_LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        snprintf(load_error, sizeof load_error, "cannot load %s: %s", METATAGS_LIBCURL_SONAME, dlerror());
        return;
    }
    /* Every function fetch.c calls, by the name libcurl exports. */
    struct {
        const char *name;
        void **slot;
    } symbols[] = {
#define LIBCURL_SYMBOL(name) {"curl_" #name, (void **)&libcurl.name}
        LIBCURL_SYMBOL(global_init),    LIBCURL_SYMBOL(global_cleanup),       LIBCURL_SYMBOL(easy_init),
        LIBCURL_SYMBOL(easy_cleanup),   LIBCURL_SYMBOL(easy_reset),           LIBCURL_SYMBOL(easy_setopt),
        LIBCURL_SYMBOL(easy_getinfo),   LIBCURL_SYMBOL(easy_pause),           LIBCURL_SYMBOL(easy_strerror),
        LIBCURL_SYMBOL(multi_init),     LIBCURL_SYMBOL(multi_cleanup),        LIBCURL_SYMBOL(multi_add_handle),
        LIBCURL_SYMBOL(multi_remove_handle), LIBCURL_SYMBOL(multi_perform),   LIBCURL_SYMBOL(multi_poll),
        LIBCURL_SYMBOL(multi_info_read), LIBCURL_SYMBOL(multi_strerror),
#undef LIBCURL_SYMBOL
    };
    for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
        *symbols[i].slot = dlsym(library, symbols[i].name);
        if (*symbols[i].slot == NULL) {
            snprintf(load_error, sizeof load_error, "cannot load %s: no %s in it", METATAGS_LIBCURL_SONAME,
                     symbols[i].name);
            return;
        }
    }
    /* Once, under pthread_once. libcurl 7.84 and later say that
     * curl_global_init is thread-safe (CURL_VERSION_THREADSAFE); before,
     * it was not safe while other threads used libcurl or its TLS library,
     * and no thread of metatags does until this returns. */
    if (libcurl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(load_error, sizeof load_error, "curl_global_init failed");
        return;
    }
    loaded = true;
}

int libcurl_load(char *message, size_t size)
{
    pthread_once(&load_once, load);
    if (loaded)
        return 0;
    snprintf(message, size, "%s", load_error);
    return -1;
}

void libcurl_unload(void)
{
    /* Nothing when no URL came: the library was never loaded. */
    if (loaded)
        libcurl.global_cleanup();
}
