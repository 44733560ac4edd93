// mrmpi_common.h: what both MR-MPI peers share: MR-MPI's settings, phase timing, and the count-sorted output on rank 0.
#ifndef HPOOL_BENCH_MRMPI_COMMON_H
#define HPOOL_BENCH_MRMPI_COMMON_H

#include <mpi.h>

#include "keyvalue.h"
#include "mapreduce.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

using MAPREDUCE_NS::KeyValue;
using MAPREDUCE_NS::MapReduce;

// Peak resident set of this process, kB (VmHWM), or 0.
inline long peak_rss_kb()
{
    long kb = 0;
    if (FILE *status = std::fopen("/proc/self/status", "r")) {
        char line[256];
        while (std::fgets(line, sizeof line, status))
            if (std::sscanf(line, "VmHWM: %ld", &kb) == 1)
                break;
        std::fclose(status);
    }
    return kb;
}

// MR-MPI set up as the comments at the top of each peer explain: pages of
// memsize MB, never spilling (a run fits in memory or fails visibly), map
// tasks dealt out round-robin, files (should any be written) in $TMPDIR.
inline MapReduce *make_mapreduce(int memsize)
{
    MapReduce *mr = new MapReduce(MPI_COMM_WORLD);
    mr->memsize = memsize;
    mr->outofcore = -1;
    mr->freepage = 1;
    mr->zeropage = 0;
    mr->mapstyle = 1;
    mr->verbosity = 0;
    mr->timer = 0;
    const char *tmpdir = std::getenv("TMPDIR");
    mr->set_fpath(tmpdir && *tmpdir ? tmpdir : "/tmp");
    return mr;
}

// --timing: each phase's time (with a barrier after it), the pairs it left,
// and the largest peak RSS (VmHWM) and MR-MPI page memory of any rank.
class Phases {
  public:
    Phases(const char *program, bool timing, int rank)
        : program_(program), timing_(timing), rank_(rank), last_(MPI_Wtime()) {}
    void operator()(const char *name, uint64_t pairs)
    {
        if (!timing_)
            return;
        MPI_Barrier(MPI_COMM_WORLD);
        double now = MPI_Wtime();
        double mine[2] = {(double)peak_rss_kb() / 1024.0, (double)MapReduce::msizemax / 1048576.0}, most[2];
        MPI_Reduce(mine, most, 2, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
        if (rank_ == 0)
            std::fprintf(stderr, "%s: %-9s %8.3f s  %9llu pairs  peak RSS %7.1f MB, pages %7.1f MB (max of ranks)\n",
                         program_, name, now - last_, (unsigned long long)pairs, most[0], most[1]);
        last_ = MPI_Wtime();
    }

  private:
    const char *program_;
    bool timing_;
    int rank_;
    double last_;
};

// A reduce() output key whose bytes sort as count descending, then key
// ascending: 8-byte big-endian (2^64-1 - count), then the key; no value.
inline void add_count_sort_key(KeyValue *kv, const char *key, int keybytes, uint64_t count,
                               std::vector<char> &sort_key)
{
    uint64_t inverted = UINT64_MAX - count;
    sort_key.resize(8 + (size_t)keybytes);
    for (int i = 0; i < 8; i++)
        sort_key[i] = (char)(inverted >> (56 - 8 * i));
    std::memcpy(sort_key.data() + 8, key, (size_t)keybytes);
    kv->add(sort_key.data(), (int)sort_key.size(), nullptr, 0);
}

inline int by_bytes(char *a, int a_size, char *b, int b_size)
{
    int order = std::memcmp(a, b, (size_t)std::min(a_size, b_size));
    return order ? order : (a_size > b_size) - (a_size < b_size);
}

inline void print_count_sort_key(char *key, int keybytes, char *value, int valuebytes, void *ptr)
{
    uint64_t inverted = 0;
    for (int i = 0; i < 8; i++)
        inverted = inverted << 8 | (unsigned char)key[i];
    std::printf("%llu\t", (unsigned long long)(UINT64_MAX - inverted));
    std::fwrite(key + 8, 1, (size_t)keybytes - 8, stdout);
    std::putchar('\n');
}

// gather(1), sort_keys() and print COUNT<TAB>KEY lines on rank 0. Returns 0,
// or 1 if stdout could not be written.
inline int gather_sort_print(MapReduce *mr, Phases &phase)
{
    uint64_t pairs = mr->gather(1);
    phase("gather", pairs);
    pairs = mr->sort_keys(by_bytes);
    phase("sort", pairs);
    // A 1 MB stdout buffer: under mpirun stdout is a pseudo-terminal, which
    // stdio would otherwise flush at every newline (one write() per line).
    static char out[1 << 20];
    std::setvbuf(stdout, out, _IOFBF, sizeof out);
    mr->scan(print_count_sort_key, nullptr);
    int status = std::fflush(stdout) == 0 ? 0 : 1;
    phase("print", pairs);
    return status;
}

#endif
