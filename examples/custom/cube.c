/* cube.c: a custom map function run by hpool: the cubes of 0..N-1, in order. */
#include <hpool.h>
#include <stdio.h>
#include <stdlib.h>

static int cube(hpool_task *task, void *user)
{
    int64_t x = *(const int64_t *)task->input; /* a range item */
    *(int64_t *)task->result = x * x * x;
    return 0; /* non-zero marks this item failed */
}

int main(int argc, char **argv)
{
    static const hpool_function functions[] = {{.name = "cube", .map = cube}};
    hpool_mpi_init(&argc, &argv);
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = functions;
    options.function_count = 1;
    hpool_pool *pool;
    int rc = hpool_pool_create(&pool, &options);
    if (rc == 0 && hpool_pool_is_root(pool)) {
        int64_t n = argc > 1 ? atoll(argv[1]) : 10, *cubes = calloc(n, sizeof *cubes);
        hpool_source *range;
        hpool_source_range(&range, 0, n);
        hpool_call call = HPOOL_CALL_INIT;
        call.source = range;
        call.results = cubes;
        call.result_size = sizeof *cubes;
        rc = hpool_map(pool, &call, NULL);
        for (int64_t i = 0; rc == 0 && i < n; i++)
            printf("%lld\n", (long long)cubes[i]);
        hpool_source_free(range);
        free(cubes);
    }
    if (rc != 0) {
        char detail[512]; /* which field, rank or item, beyond the code's sentence */
        hpool_error_detail(rc, detail, sizeof detail);
        fprintf(stderr, "cube: %s\n", detail);
    }
    hpool_pool_free(pool); /* joins: the other ranks served until now */
    hpool_mpi_finalize();
    return rc == 0 ? 0 : 1;
}
