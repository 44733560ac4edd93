/* errors.c: error codes, their messages, names and details, call reports, versioned structs, and the library's version. */
#include "internal.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* The detail of the last error an hpool function returned on this thread,
 * with its code: thread-local, so concurrent callers never see each
 * other's, and copied out into the caller's buffer (as PCRE2's
 * pcre2_get_error_message), so nothing points into hpool's memory. */
static _Thread_local struct {
    int code;
    char text[512];
} last_detail;

int hpool__fail(int code, const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(last_detail.text, sizeof last_detail.text, format, arguments);
    va_end(arguments);
    last_detail.code = code;
    return code;
}

void hpool__detail_clear(void)
{
    last_detail.code = 0;
    last_detail.text[0] = '\0';
}

const char *hpool__detail_text(int code)
{
    return last_detail.code == code && code != 0 ? last_detail.text : "";
}

void hpool__detail_restore(int code, const char *text)
{
    if (text == NULL || text[0] == '\0') {
        hpool__detail_clear();
        return;
    }
    last_detail.code = code;
    snprintf(last_detail.text, sizeof last_detail.text, "%s", text);
}

int hpool_error_detail(int code, char *buf, size_t size)
{
    if (buf == NULL || size == 0)
        return HPOOL_EINVAL;
    const char *text = last_detail.code == code && code != 0 && last_detail.text[0] ? last_detail.text
                                                                                      : hpool_strerror(code);
    int length = snprintf(buf, size, "%s", text);
    return length < 0 ? 0 : length;
}

/* A field added to a struct must start at or after the old struct's end:
 * it must not fall into the old layout's tail padding, which an older
 * caller leaves undefined and this copy would take as the field. So the
 * public structs end without padding, and growing one means appending
 * fields after its last. */
_Static_assert(sizeof(hpool_options) == offsetof(hpool_options, journal_checkpoint) + sizeof(double),
               "hpool_options must end without padding");
_Static_assert(sizeof(hpool_call) == offsetof(hpool_call, journal_key_size) + sizeof(size_t),
               "hpool_call must end without padding");

int hpool__accept_struct(void *ours, size_t our_size, size_t oldest_size, const void *theirs, size_t their_size,
                         const char *name, const char *init_macro)
{
    /* A struct_size far beyond any layout is not a newer header but an
     * uninitialised struct: refuse it before reading past its end. */
    const size_t largest_plausible = 16 * our_size;
    if (their_size < oldest_size || their_size > largest_plausible)
        return hpool__fail(HPOOL_EINVAL,
                           "%s.struct_size is %zu, not the size of any hpool_%s layout (%zu in hpool %s): "
                           "start it from %s",
                           name, their_size, name, our_size, hpool_version_string(), init_macro);
    const unsigned char *bytes = theirs;
    for (size_t at = our_size; at < their_size; at++)
        if (bytes[at] != 0)
            return hpool__fail(HPOOL_EINVAL,
                               "%s sets a field at byte %zu that hpool %s does not know: the program was built "
                               "against a newer hpool.h than the library it runs with",
                               name, at, hpool_version_string());
    memcpy(ours, theirs, their_size < our_size ? their_size : our_size);
    /* ours keeps the library's own size from here on */
    memcpy(ours, &our_size, sizeof our_size);
    return 0;
}

#define HPOOL__STRINGIFY(x) #x
#define HPOOL__VERSION_TEXT(major, minor, patch) HPOOL__STRINGIFY(major) "." HPOOL__STRINGIFY(minor) "." HPOOL__STRINGIFY(patch)

unsigned hpool_version(void)
{
    return HPOOL_VERSION_NUMBER;
}

const char *hpool_version_string(void)
{
    return HPOOL__VERSION_TEXT(HPOOL_VERSION_MAJOR, HPOOL_VERSION_MINOR, HPOOL_VERSION_PATCH);
}

const char *hpool_strerror(int code)
{
    switch (code) {
    case HPOOL_OK:
        return "success";
#define HPOOL__ERRNO_TEXT(name, value, text) \
    case HPOOL_##name:                       \
        return text;
        HPOOL_ERRNO_MAP(HPOOL__ERRNO_TEXT)
#undef HPOOL__ERRNO_TEXT
    }
    return code > 0 ? "the map function reported a failure" : "unknown error";
}

const char *hpool_err_name(int code)
{
    switch (code) {
    case HPOOL_OK:
        return "HPOOL_OK";
#define HPOOL__ERRNO_NAME(name, value, text) \
    case HPOOL_##name:                       \
        return "HPOOL_" #name;
        HPOOL_ERRNO_MAP(HPOOL__ERRNO_NAME)
#undef HPOOL__ERRNO_NAME
    }
    return "unknown";
}

int hpool_report_format(const hpool_report *report, char *buf, size_t size)
{
    if (report == NULL || buf == NULL || size == 0)
        return hpool__fail(HPOOL_EINVAL, "hpool_report_format: %s is NULL or empty",
                           report == NULL ? "report" : "buf");
    unsigned long long items = report->items, failed = report->failed, canceled = report->canceled;
    if (failed == 0 && report->status == 0) {
        snprintf(buf, size, "%llu items, all succeeded", items);
    } else if (failed == 0) {
        snprintf(buf, size, "%llu items, and the call failed: %s (%s)", items, hpool_err_name(report->status),
                 hpool_strerror(report->status));
    } else {
        char of_them[64] = "";
        if (canceled > 0)
            snprintf(of_them, sizeof of_them, " (%llu of them canceled)", canceled);
        snprintf(buf, size, "%llu of %llu items failed%s, the first at index %llu (code %d: %s)", failed, items,
                 of_them, (unsigned long long)report->first_failed_index, report->first_failed_code,
                 hpool_strerror(report->first_failed_code));
    }
    return 0;
}
