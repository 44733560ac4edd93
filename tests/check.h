/* check.h: a tiny assertion helper for hpool's test programs. */
#ifndef HPOOL_TEST_CHECK_H
#define HPOOL_TEST_CHECK_H

#include <stdio.h>

static int check_failures;

/* Records a failure with file and line, and goes on, so one run shows all. */
#define CHECK(condition)                                                                  \
    do {                                                                                  \
        if (!(condition)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
            check_failures++;                                                             \
        }                                                                                 \
    } while (0)

#define CHECK_RC(expected, actual)                                                                 \
    do {                                                                                           \
        int check_rc_ = (actual);                                                                  \
        if (check_rc_ != (expected)) {                                                             \
            fprintf(stderr, "%s:%d: %s returned %s (%d), expected %s\n", __FILE__, __LINE__, #actual, \
                    hpool_err_name(check_rc_), check_rc_, hpool_err_name(expected));               \
            check_failures++;                                                                      \
        }                                                                                          \
    } while (0)

#endif
