// mrmpi_wordcount.cpp: examples/wordcount's job done with MR-MPI (libmrmpi), the peer of hpool's keyed map-reduce.
//
//   mpirun -n 2 mrmpi_wordcount [--combine none|compress|map] [--memsize MB] [--all2all 0|1] [--timing] FILE...
//
// Same input, same words, same output as examples/wordcount: a word is a
// maximal run of bytes other than space, \t, \n, \v, \f, \r (Python's
// bytes.split()); the output is COUNT<TAB>WORD lines, most frequent first,
// ties by the word's bytes (shorter first when one is a prefix of the other),
// so the two outputs compare with cmp.
//
// The job, in MR-MPI's calls:
//   map(ntasks)    every file is cut into ranges of 4 MiB, as wordcount.c does
//                  (RANGE_BYTES); a word belongs to the range it starts in.
//                  One map task per range; mapstyle 1 (strided) deals them
//                  out to the ranks round-robin.
//   --combine none (default): the map emits (word, empty) per occurrence,
//                  like MR-MPI's own examples/wordfreq.cpp;
//             compress: the same, then compress() sums the pairs of each
//                  rank into (word, count) before the shuffle (MR-MPI's
//                  built-in combiner);
//             map: the map counts the words of its range in a hash table
//                  and emits (word, count) once per distinct word (in-mapper
//                  combining: what hpool's per-chunk combiner does).
//   collate()      shuffle by hash of the word, group into (word, [values]).
//   reduce()       (word, [values]) -> key = 8-byte big-endian (2^64-1 -
//                  count) followed by the word, no value: a key whose bytes
//                  sort as count descending, then word ascending.
//   gather(1)      every pair to rank 0.
//   sort_keys()    on rank 0, with memcmp order.
//   scan()         rank 0 prints.
//
// MR-MPI settings (see its doc/settings): memsize = MB per page (MR-MPI's
// default 64), and with the default outofcore = 0 any KeyValue or
// KeyMultiValue bigger than one page goes to disk files. Here outofcore = -1:
// a rank whose data does not fit in one page stops with an MR-MPI error
// instead of spilling, so a run is either wholly in memory or fails
// visibly. --memsize sets the page size (default 1024 MB: enough for ~500 MB
// of text on 2 ranks in every mode). Pages are malloc'ed and only the part
// in use is touched (zeropage = 0), except that collate() touches about a
// quarter of a page whatever the data: with 1024 MB pages that is 256 MB of
// RSS and ~0.6 s per rank even for a one-word input. So the smallest page that
// holds a rank's pairs is the best setting; wordcount_vs_mrmpi.sh finds it
// (512 MB for none and compress, 128 MB for map on its corpus). freepage = 1
// gives unused pages back after every operation; mapstyle = 1 deals the
// ranges out round-robin; all2all = 1 (MPI_Alltoallv, MR-MPI's default; 0
// with --all2all 0 made no difference here). fpath is $TMPDIR (or /tmp)
// should anything ever be written. keyalign and valuealign stay 4 (values
// are read with memcpy).
// Exit status: 0, 1 if a file could not be read (the others are counted), 2 usage.

#include <mpi.h>

#include "mrmpi_common.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace MAPREDUCE_NS;

namespace {

const uint64_t RANGE_BYTES = 4u << 20; // as in examples/wordcount/wordcount.c

enum Combine { COMBINE_NONE, COMBINE_COMPRESS, COMBINE_MAP };

bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

struct Range {
    uint32_t file;
    uint64_t offset, length;
};

struct Job {
    char **paths;
    std::vector<Range> ranges;
    Combine combine;
    MapReduce *mr;
    std::vector<unsigned char> buffer; // one rank, one thread: one buffer
    std::vector<char> sort_key;        // reduce()'s output key
    int failed;                        // ranges this rank could not read
};

// Reads size bytes at offset, fewer only at the end of the file.
int read_at(int fd, unsigned char *into, size_t size, uint64_t offset, size_t *got)
{
    *got = 0;
    while (*got < size) {
        ssize_t n = pread(fd, into + *got, size - *got, (off_t)(offset + *got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        if (n == 0)
            break;
        *got += (size_t)n;
    }
    return 0;
}

// Reads the range, plus the byte before it (to tell whether the range starts
// inside a word that belongs to the previous range) and, past its end, the
// rest of a word that starts inside it. Sets *text to the first byte the
// range owns and *size to the bytes from there to the end of its last word.
int read_range(Job *job, const Range &range, const unsigned char **text, size_t *size)
{
    int fd = open(job->paths[range.file], O_RDONLY);
    if (fd < 0)
        return errno;
    const uint64_t start = range.offset > 0 ? range.offset - 1 : 0;
    size_t have = 0, got = 0;
    std::vector<unsigned char> &buffer = job->buffer;
    buffer.resize(range.offset + range.length - start);
    int code = read_at(fd, buffer.data(), buffer.size(), start, &have);
    // Extend by 64 KiB steps while the last byte read is inside a word.
    while (code == 0 && have == buffer.size() && have > 0 && !is_space(buffer[have - 1])) {
        buffer.resize(have + 65536);
        if ((code = read_at(fd, buffer.data() + have, 65536, start + have, &got)) != 0)
            break;
        size_t end = have;
        while (end < have + got && !is_space(buffer[end]))
            end++;
        const bool ended = end < have + got || got < 65536;
        have = end;
        buffer.resize(have);
        if (ended)
            break;
    }
    close(fd);
    if (code != 0)
        return code;
    size_t skip = 0;
    if (range.offset > 0 && have > 0) {
        skip = 1;
        if (!is_space(buffer[0])) // the word began in the previous range
            while (skip < have && !is_space(buffer[skip]))
                skip++;
    }
    *text = buffer.data() + skip;
    *size = have - skip;
    return 0;
}

// Calls emit(word, length) for every word of text[0, size).
template <class Emit> void for_each_word(const unsigned char *text, size_t size, Emit emit)
{
    size_t i = 0;
    while (i < size) {
        while (i < size && is_space(text[i]))
            i++;
        size_t word = i;
        while (i < size && !is_space(text[i]))
            i++;
        if (i > word)
            emit(reinterpret_cast<const char *>(text + word), i - word);
    }
}

void map_range(int task, KeyValue *kv, void *ptr)
{
    Job *job = static_cast<Job *>(ptr);
    const Range &range = job->ranges[task];
    const unsigned char *text = nullptr;
    size_t size = 0;
    int code = read_range(job, range, &text, &size);
    if (code != 0) {
        std::fprintf(stderr, "mrmpi_wordcount: %s: %s\n", job->paths[range.file], std::strerror(code));
        job->failed++;
        return;
    }
    if (job->combine != COMBINE_MAP) {
        for_each_word(text, size, [kv](const char *word, size_t length) {
            kv->add(const_cast<char *>(word), (int)length, nullptr, 0);
        });
        return;
    }
    // In-mapper combining: the words point into the buffer, which outlives the table.
    std::unordered_map<std::string_view, uint64_t> counts;
    counts.reserve(1 << 16);
    for_each_word(text, size, [&counts](const char *word, size_t length) { counts[std::string_view(word, length)]++; });
    for (const auto &entry : counts) {
        uint64_t count = entry.second;
        kv->add(const_cast<char *>(entry.first.data()), (int)entry.first.size(), reinterpret_cast<char *>(&count),
                (int)sizeof count);
    }
}

// The number of occurrences a (word, [values]) stands for: the number of
// values when they are empty (one per occurrence), else the sum of the
// 8-byte counts. A pair too big for one page comes in blocks (nvalues = 0).
uint64_t count_values(Job *job, char *multivalue, int nvalues, int *valuebytes)
{
    auto sum = [](const char *values, int n, const int *bytes) {
        uint64_t total = 0;
        for (int i = 0; i < n; i++) {
            if (bytes[i] == 0) {
                total++;
            } else {
                uint64_t count;
                std::memcpy(&count, values, sizeof count);
                total += count;
            }
            values += bytes[i];
        }
        return total;
    };
    if (nvalues > 0)
        return sum(multivalue, nvalues, valuebytes);
    int blocks = 0;
    job->mr->multivalue_blocks(blocks);
    uint64_t total = 0;
    for (int b = 0; b < blocks; b++) {
        char *values;
        int *bytes;
        int n = job->mr->multivalue_block(b, &values, &bytes);
        total += sum(values, n, bytes);
    }
    return total;
}

// compress(): (word, [values]) on one rank -> (word, count).
void sum_locally(char *key, int keybytes, char *multivalue, int nvalues, int *valuebytes, KeyValue *kv, void *ptr)
{
    uint64_t count = count_values(static_cast<Job *>(ptr), multivalue, nvalues, valuebytes);
    kv->add(key, keybytes, reinterpret_cast<char *>(&count), (int)sizeof count);
}

// reduce(): (word, [values]) -> (sort key, nothing), the sort key being
// big-endian (2^64-1 - count) then the word, so that memcmp order is count
// descending, then word ascending.
void sum_to_sort_key(char *key, int keybytes, char *multivalue, int nvalues, int *valuebytes, KeyValue *kv,
                     void *ptr)
{
    Job *job = static_cast<Job *>(ptr);
    add_count_sort_key(kv, key, keybytes, count_values(job, multivalue, nvalues, valuebytes), job->sort_key);
}

void usage(FILE *to)
{
    std::fprintf(to, "usage: mrmpi_wordcount [--combine none|compress|map] [--memsize MB] [--all2all 0|1] [--timing] FILE...\n"
                     "Counts the words of the files with MR-MPI and prints COUNT<TAB>WORD lines like\n"
                     "examples/wordcount. --combine: where pairs are summed before the shuffle (default\n"
                     "none); --memsize: MR-MPI page size in MB (default 1024; MR-MPI stops rather than\n"
                     "spill to disk when a rank's pairs outgrow one page); --all2all 0: MR-MPI's own\n"
                     "irregular exchange instead of MPI_Alltoallv; --timing: each phase's seconds and\n"
                     "peak memory on stderr.\n");
}

} // namespace

int main(int argc, char **argv)
{
    Combine combine = COMBINE_NONE;
    int memsize = 1024;
    bool timing = false;
    int all2all = 1; // MR-MPI's default: MPI_Alltoallv in aggregate()
    int first = 1;
    for (; first < argc && std::strncmp(argv[first], "--", 2) == 0; first++) {
        std::string option = argv[first];
        if (option == "--") {
            first++;
            break;
        } else if (option == "--combine" && first + 1 < argc) {
            std::string mode = argv[++first];
            if (mode == "none")
                combine = COMBINE_NONE;
            else if (mode == "compress")
                combine = COMBINE_COMPRESS;
            else if (mode == "map")
                combine = COMBINE_MAP;
            else {
                usage(stderr);
                return 2;
            }
        } else if (option == "--memsize" && first + 1 < argc) {
            memsize = std::atoi(argv[++first]);
            if (memsize < 1) {
                usage(stderr);
                return 2;
            }
        } else if (option == "--all2all" && first + 1 < argc) {
            all2all = std::atoi(argv[++first]) != 0;
        } else if (option == "--timing") {
            timing = true;
        } else if (option == "--help") {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (first >= argc) {
        usage(stderr);
        return 2;
    }

    MPI_Init(&argc, &argv);
    int me = 0, ranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);

    Job job;
    job.paths = argv + first;
    job.combine = combine;
    job.failed = 0;
    // Every rank cuts the files the same way (they see the same files), so
    // no list of ranges travels; a file that cannot be read is named once.
    for (int f = 0; first + f < argc; f++) {
        struct stat info;
        errno = 0;
        if (stat(job.paths[f], &info) != 0 || !S_ISREG(info.st_mode)) {
            if (me == 0)
                std::fprintf(stderr, "mrmpi_wordcount: %s: %s\n", job.paths[f],
                             errno ? std::strerror(errno) : "not a regular file");
            job.failed += me == 0;
            continue;
        }
        for (uint64_t offset = 0; offset < (uint64_t)info.st_size; offset += RANGE_BYTES)
            job.ranges.push_back(Range{(uint32_t)f, offset, std::min(RANGE_BYTES, (uint64_t)info.st_size - offset)});
    }

    MapReduce *mr = make_mapreduce(memsize);
    job.mr = mr;
    mr->all2all = all2all;
    Phases phase("mrmpi_wordcount", timing, me);

    uint64_t pairs = mr->map((int)job.ranges.size(), map_range, &job);
    phase("map", pairs);
    if (combine == COMBINE_COMPRESS) {
        pairs = mr->compress(sum_locally, &job);
        phase("compress", pairs);
    }
    pairs = mr->collate(nullptr);
    phase("collate", pairs);
    pairs = mr->reduce(sum_to_sort_key, &job);
    phase("reduce", pairs);
    int status = gather_sort_print(mr, phase);

    int failed = 0;
    MPI_Allreduce(&job.failed, &failed, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (failed > 0)
        status = 1;
    delete mr;
    MPI_Finalize();
    return status;
}
