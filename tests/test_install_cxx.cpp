// test_install_cxx.cpp: a C++ program against the installed hpool.h, to prove the header compiles and links as C++ (extern "C", no C-only syntax).
#include <hpool.h>
#include <cstdint>
#include <cstdio>
#include <vector>

static int square(hpool_task *task, void *)
{
    std::int64_t x = *static_cast<const std::int64_t *>(task->input);
    *static_cast<std::int64_t *>(task->result) = x * x;
    return 0;
}

int main(int argc, char **argv)
{
    if (hpool_version() != HPOOL_VERSION_NUMBER) {
        std::fprintf(stderr, "hpool_version() %u, header %d\n", hpool_version(), HPOOL_VERSION_NUMBER);
        return 1;
    }
    // Members set by name, not by position: C++ before C++20 has no
    // designated initialisers, and the struct may grow.
    hpool_function function{};
    function.name = "square";
    function.map = square;
    hpool_mpi_init(&argc, &argv);
    hpool_options options = HPOOL_OPTIONS_INIT;
    options.functions = &function;
    options.function_count = 1;
    hpool_pool *pool = nullptr;
    int rc = hpool_pool_create(&pool, &options);
    int wrong = 0;
    if (rc == 0 && hpool_pool_is_root(pool)) {
        const std::int64_t n = 1000;
        std::vector<std::int64_t> squares(n);
        hpool_source *range = nullptr;
        rc = hpool_source_range(&range, 0, n);
        hpool_call call = HPOOL_CALL_INIT;
        call.source = range;
        call.results = squares.data();
        call.result_size = sizeof squares[0];
        if (rc == 0)
            rc = hpool_map(pool, &call, nullptr);
        for (std::int64_t i = 0; rc == 0 && i < n; i++) {
            if (squares[i] != i * i) {
                std::fprintf(stderr, "square(%lld) = %lld\n", (long long)i, (long long)squares[i]);
                wrong = 1;
                break;
            }
        }
        if (rc == 0 && !wrong)
            std::printf("ok %s\n", hpool_version_string());
        hpool_source_free(range);
    }
    if (rc != 0)
        std::fprintf(stderr, "test_install_cxx: %s\n", hpool_strerror(rc));
    hpool_pool_free(pool);
    hpool_mpi_finalize();
    return rc == 0 && !wrong ? 0 : 1;
}
