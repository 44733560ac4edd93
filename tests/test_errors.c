/* test_errors.c: every error code has a name and a message, and bad options are refused. */
#include "hpool.h"
#include "check.h"

#include <string.h>

static int noop(hpool_task *task, void *user)
{
    return 0;
}

static int noop_span(hpool_span *span, void *user)
{
    return 0;
}

int main(void)
{
    int codes[] = {
#define CODE(name, value, text) HPOOL_##name,
        HPOOL_ERRNO_MAP(CODE)
#undef CODE
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        CHECK(codes[i] < 0);
        CHECK(strncmp(hpool_err_name(codes[i]), "HPOOL_E", 7) == 0);
        CHECK(strcmp(hpool_strerror(codes[i]), "unknown error") != 0);
        for (size_t j = 0; j < i; j++)
            CHECK(codes[i] != codes[j]);
    }
    CHECK(strcmp(hpool_err_name(HPOOL_OK), "HPOOL_OK") == 0);
    CHECK(strcmp(hpool_err_name(-999), "unknown") == 0);
    CHECK(strcmp(hpool_strerror(-999), "unknown error") == 0);
    CHECK(strstr(hpool_strerror(HPOOL_EFAILED), "failed") != NULL);

    hpool_report report = {.items = 14, .failed = 3, .first_failed_index = 4, .first_failed_code = 2,
                           .status = HPOOL_EFAILED};
    char text[160];
    /* The lines hpool.h shows, exactly. */
    CHECK_RC(0, hpool_report_format(&report, text, sizeof text));
    CHECK(strcmp(text, "3 of 14 items failed, the first at index 4 (code 2: the map function reported a failure)") == 0);
    report.canceled = 2;
    report.first_failed_code = HPOOL_ECANCELED;
    CHECK_RC(0, hpool_report_format(&report, text, sizeof text));
    CHECK(strcmp(text, "3 of 14 items failed (2 of them canceled), the first at index 4 (code -8: canceled before "
                       "it ran (hpool_pool_terminate, or its call failed))") == 0);
    report = (hpool_report){.items = 14};
    CHECK_RC(0, hpool_report_format(&report, text, sizeof text));
    CHECK(strcmp(text, "14 items, all succeeded") == 0);
    report.status = HPOOL_EMPI;
    CHECK_RC(0, hpool_report_format(&report, text, sizeof text));
    CHECK(strcmp(text, "14 items, and the call failed: HPOOL_EMPI (MPI call failed)") == 0);
    char tiny[6];
    CHECK_RC(0, hpool_report_format(&report, tiny, sizeof tiny));
    CHECK(strcmp(tiny, "14 it") == 0);
    CHECK_RC(HPOOL_EINVAL, hpool_report_format(NULL, text, sizeof text));

    /* Misuse is refused with HPOOL_EINVAL and no pool. */
    hpool_pool *pool = (hpool_pool *)&report;
    hpool_function both = {.name = "both", .map = noop, .span = noop_span};
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = &both;
    options.function_count = 1;
    CHECK_RC(HPOOL_EINVAL, hpool_pool_create(&pool, &options));
    CHECK(pool == NULL);
    hpool_function unnamed = {.map = noop};
    options.functions = &unnamed;
    CHECK_RC(HPOOL_EINVAL, hpool_pool_create(&pool, &options));
    options.functions = NULL;
    CHECK_RC(HPOOL_EINVAL, hpool_pool_create(&pool, &options));
    hpool_reducer no_identity = {.name = "r", .value_size = 8};
    options.function_count = 0;
    options.reducers = &no_identity;
    options.reducer_count = 1;
    CHECK_RC(HPOOL_EINVAL, hpool_pool_create(&pool, &options));
    /* The built-in sum adds 8-byte values, and no others. */
    uint64_t zero = 0;
    hpool_reducer narrow_sum = {.name = "n", .value_size = 4, .identity = &zero, .combine = hpool_combine_sum_u64};
    options.reducers = &narrow_sum;
    CHECK_RC(HPOOL_EINVAL, hpool_pool_create(&pool, &options));
    options.reducers = NULL;
    options.reducer_count = 0;
    hpool_keyed_reducer narrow_count = {.name = "k", .value_size = 4, .combine = hpool_combine_sum_u64};
    options.keyed_reducers = &narrow_count;
    options.keyed_reducer_count = 1;
    CHECK_RC(HPOOL_EINVAL, hpool_pool_create(&pool, &options));
    narrow_count.value_size = 8; /* fine */
    CHECK_RC(0, hpool_pool_create(&pool, &options));
    hpool_pool_free(pool);
    options = (hpool_options)HPOOL_OPTIONS_INIT;
    options.threads = -1;
    CHECK_RC(HPOOL_EINVAL, hpool_pool_create(&pool, &options));
    options.threads = 1;
    options.root = 5; /* a plain run has one rank */
    CHECK_RC(HPOOL_EINVAL, hpool_pool_create(&pool, &options));
    CHECK_RC(HPOOL_EINVAL, hpool_pool_create(NULL, &options));
    hpool_pool_free(NULL);
    hpool_source_free(NULL);
    hpool_records_free(NULL);
    hpool_async_free(NULL);
    hpool_iter_free(NULL);
    return check_failures ? 1 : 0;
}
