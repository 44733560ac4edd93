/* errors.c: error codes, their messages and names, call reports, and the library's version. */
#include "internal.h"

#include <stdio.h>

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
        return HPOOL_EINVAL;
    if (report->failed == 0 && report->status == 0)
        snprintf(buf, size, "%llu items, all succeeded", (unsigned long long)report->items);
    else if (report->failed == 0)
        snprintf(buf, size, "%s", hpool_strerror(report->status));
    else
        snprintf(buf, size, "%llu of %llu items failed (%llu canceled), the first at index %llu (code %d: %s)",
                 (unsigned long long)report->failed, (unsigned long long)report->items,
                 (unsigned long long)report->canceled, (unsigned long long)report->first_failed_index,
                 report->first_failed_code, hpool_strerror(report->first_failed_code));
    return 0;
}
