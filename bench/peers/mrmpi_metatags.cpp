// mrmpi_metatags.cpp: `metatags --count`'s job done with MR-MPI (libmrmpi) and PCRE2, the MapReduce peer of metatags_vs_peers.sh.
//
//   mpirun -n 2 mrmpi_metatags [--memsize MB] [--timing] INPUT...
//
// INPUT as for apps/metatags: an HTML file, a directory (every *.html and
// *.htm under it) or @LIST (a file whose lines are pages or directories). Every rank expands
// the inputs itself, as mrmpi_wordcount stats its files on every rank: they
// see the same files, so no list travels. The output is metatags --count's:
// COUNT<TAB>MATCH per distinct match of <meta .*?>, most frequent first, ties
// by the match's bytes (shorter first when one is a prefix of the other), so
// that the two compare with cmp. The matches are Python's
// re.findall(rb"<meta .*?>", page): leftmost, non-overlapping, `.` any byte
// but \n (PCRE2 without UTF, newline set to LF alone).
//
// The job, in MR-MPI's calls:
//   map(npages)    one task per page; mapstyle 1 (strided) deals the pages
//                  out to the ranks round-robin, which balances a sorted list
//                  of pages better than contiguous shares would. A task reads
//                  the page whole and emits (match, empty) per match, as
//                  MR-MPI's wordfreq example emits a pair per word. The
//                  pattern is compiled and JIT-compiled once per rank.
//   collate()      shuffle by hash of the match, group into (match, [values]).
//   reduce()       (match, [values]) -> key = 8-byte big-endian (2^64-1 -
//                  count) followed by the match, no value: a key whose bytes
//                  sort as count descending, then match ascending.
//   gather(1)      every pair to rank 0.
//   sort_keys()    on rank 0, with memcmp order.
//   scan()         rank 0 prints.
//
// MR-MPI settings as in mrmpi_wordcount.cpp (see there): outofcore = -1, so a
// rank whose pairs outgrow one page stops with an error instead of spilling
// to disk; memsize (--memsize, MB per page) defaults to 64, MR-MPI's own
// default and far more than the pairs here need (a few dozen bytes per match,
// a few matches per page); freepage = 1, zeropage = 0, all2all = 1.
// Exit status: 0, 1 if a page could not be read or searched (the others are
// counted), 2 usage.

#include <mpi.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "mrmpi_common.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace MAPREDUCE_NS;

namespace {

const char META_TAG_PATTERN[] = "<meta .*?>";

struct Job {
    std::vector<std::string> pages;
    pcre2_code *pattern;
    pcre2_match_data *match_data; // one rank, one thread: one match data
    std::vector<unsigned char> page_bytes;
    std::vector<char> sort_key; // reduce()'s output key
    MapReduce *mr;
    int failed; // pages this rank could not read or search
};

// Reads the whole file into bytes. Returns 0 or an errno value.
int read_page(const char *path, std::vector<unsigned char> &bytes)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return errno;
    struct stat info;
    if (fstat(fd, &info) != 0) {
        int code = errno;
        close(fd);
        return code;
    }
    // The size is a hint: read on until end of file, in case the page grows.
    bytes.resize((size_t)info.st_size + 1);
    size_t have = 0;
    for (;;) {
        if (have == bytes.size())
            bytes.resize(bytes.size() * 2);
        ssize_t got = read(fd, bytes.data() + have, bytes.size() - have);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int code = errno;
            close(fd);
            return code;
        }
        if (got == 0)
            break;
        have += (size_t)got;
    }
    close(fd);
    bytes.resize(have);
    return 0;
}

// Calls emit(match, length) for every match of pattern in text[0, size), as
// Python's findall finds them: leftmost first, each search starting where
// the last match ended; after an empty match, the next search may not match
// empty at that same place (PCRE2_NOTEMPTY_ATSTART; Python's "must
// advance"), so the scan always moves on. Returns 0 or a negative PCRE2
// error code (e.g. a match limit hit).
template <class Emit>
int for_each_match(const pcre2_code *pattern, pcre2_match_data *match_data, const unsigned char *text, size_t size,
                   Emit emit)
{
    PCRE2_SIZE start = 0;
    uint32_t options = 0;
    for (;;) {
        int code = pcre2_match(pattern, text, size, start, options, match_data, nullptr);
        if (code == PCRE2_ERROR_NOMATCH)
            return 0;
        if (code < 0)
            return code;
        const PCRE2_SIZE *match = pcre2_get_ovector_pointer(match_data);
        emit(reinterpret_cast<const char *>(text + match[0]), match[1] - match[0]);
        start = match[1];
        options = match[0] == match[1] ? PCRE2_NOTEMPTY_ATSTART : 0;
    }
}

void map_page(int task, KeyValue *kv, void *ptr)
{
    Job *job = static_cast<Job *>(ptr);
    const char *path = job->pages[task].c_str();
    int code = read_page(path, job->page_bytes);
    if (code != 0) {
        std::fprintf(stderr, "mrmpi_metatags: %s: %s\n", path, std::strerror(code));
        job->failed++;
        return;
    }
    code = for_each_match(job->pattern, job->match_data, job->page_bytes.data(), job->page_bytes.size(),
                          [kv](const char *match, size_t length) {
                              kv->add(const_cast<char *>(match), (int)length, nullptr, 0);
                          });
    if (code < 0) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(code, message, sizeof message);
        std::fprintf(stderr, "mrmpi_metatags: %s: %s\n", path, reinterpret_cast<char *>(message));
        job->failed++;
    }
}

// reduce(): (match, [empty values]) -> (sort key, nothing), the sort key being
// big-endian (2^64-1 - count) then the match, so that memcmp order is count
// descending, then match ascending. The count is the number of values; for a
// pair too big for one page (nvalues = 0), multivalue_blocks() gives it.
void count_to_sort_key(char *key, int keybytes, char *multivalue, int nvalues, int *valuebytes, KeyValue *kv,
                       void *ptr)
{
    Job *job = static_cast<Job *>(ptr);
    uint64_t count = (uint64_t)nvalues;
    if (nvalues == 0) {
        int blocks = 0;
        count = job->mr->multivalue_blocks(blocks);
    }
    add_count_sort_key(kv, key, keybytes, count, job->sort_key);
}

bool is_html(const std::string &name)
{
    auto ends_with = [&name](const char *suffix) {
        size_t length = std::strlen(suffix);
        return name.size() >= length && name.compare(name.size() - length, length, suffix) == 0;
    };
    return ends_with(".html") || ends_with(".htm");
}

// Appends the pages a page or directory names to pages, as metatags does:
// a directory's *.html and *.htm files, symbolic links followed, in bytewise
// path order; anything else as it is (map_page reports it if unreadable).
// Returns false when a directory cannot be walked, saying so on stderr if
// report is set (every rank expands the same inputs: one message is enough).
bool expand_path(const std::string &path, std::vector<std::string> &pages, bool report)
{
    namespace fs = std::filesystem;
    std::error_code error;
    if (!fs::is_directory(path, error)) {
        pages.push_back(path);
        return true;
    }
    std::vector<std::string> found;
    for (auto walk = fs::recursive_directory_iterator(path, fs::directory_options::follow_directory_symlink, error);
         !error && walk != fs::recursive_directory_iterator(); walk.increment(error)) {
        std::error_code not_a_directory; // a dangling link: listed, then reported by map_page
        if (!walk->is_directory(not_a_directory) && is_html(walk->path().filename().string()))
            found.push_back(walk->path().string());
    }
    if (error) {
        if (report)
            std::fprintf(stderr, "mrmpi_metatags: %s: %s\n", path.c_str(), error.message().c_str());
        return false;
    }
    std::sort(found.begin(), found.end()); // std::string compares as memcmp: bytewise
    pages.insert(pages.end(), found.begin(), found.end());
    return true;
}

// Appends the pages INPUT names: @LIST's lines (empty ones skipped), each a
// page or a directory as for metatags, or INPUT itself as a page or
// directory. Returns false when something named cannot be read (see
// expand_path for report).
bool expand_input(const char *input, std::vector<std::string> &pages, bool report)
{
    if (input[0] != '@')
        return expand_path(input, pages, report);
    FILE *list = std::fopen(input + 1, "rb");
    if (!list) {
        if (report)
            std::fprintf(stderr, "mrmpi_metatags: %s: %s\n", input + 1, std::strerror(errno));
        return false;
    }
    bool ok = true;
    std::string line;
    for (int c;;) {
        c = std::getc(list);
        if (c != '\n' && c != EOF) {
            line.push_back((char)c);
            continue;
        }
        if (!line.empty())
            ok = expand_path(line, pages, report) && ok;
        line.clear();
        if (c == EOF)
            break;
    }
    if (std::ferror(list)) {
        ok = false;
        if (report)
            std::fprintf(stderr, "mrmpi_metatags: %s: read error\n", input + 1);
    }
    std::fclose(list);
    return ok;
}

void usage(FILE *to)
{
    std::fprintf(to, "usage: mrmpi_metatags [--memsize MB] [--timing] INPUT...\n"
                     "Counts the <meta .*?> tags of HTML pages with MR-MPI and PCRE2 and prints\n"
                     "COUNT<TAB>MATCH lines like metatags --count. INPUT: a page, a directory (its\n"
                     "*.html and *.htm files) or @LIST (a page or directory per line).\n"
                     "--memsize: MR-MPI page size in MB (default 64; MR-MPI stops rather than spill\n"
                     "to disk when a rank's pairs outgrow one page); --timing: each phase's seconds\n"
                     "and peak memory on stderr.\n");
}

} // namespace

int main(int argc, char **argv)
{
    int memsize = 64;
    bool timing = false;
    int first = 1;
    for (; first < argc && std::strncmp(argv[first], "--", 2) == 0; first++) {
        std::string option = argv[first];
        if (option == "--") {
            first++;
            break;
        } else if (option == "--memsize" && first + 1 < argc) {
            memsize = std::atoi(argv[++first]);
            if (memsize < 1) {
                usage(stderr);
                return 2;
            }
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
    int me = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &me);

    Job job;
    job.failed = 0;
    bool inputs_ok = true;
    for (int i = first; i < argc; i++)
        inputs_ok = expand_input(argv[i], job.pages, me == 0) && inputs_ok;

    // Newline LF alone, whatever PCRE2 was built with, so that `.` is
    // Python's: any byte but \n (\r included).
    pcre2_compile_context *compile_context = pcre2_compile_context_create(nullptr);
    pcre2_set_newline(compile_context, PCRE2_NEWLINE_LF);
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    job.pattern = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(META_TAG_PATTERN), PCRE2_ZERO_TERMINATED, 0,
                                &error_code, &error_offset, compile_context);
    pcre2_compile_context_free(compile_context);
    if (!job.pattern) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(error_code, message, sizeof message);
        std::fprintf(stderr, "mrmpi_metatags: pattern: %s\n", reinterpret_cast<char *>(message));
        MPI_Finalize();
        return 1;
    }
    // Without JIT pcre2_match() interprets the pattern: still right, only
    // slower, so say so rather than fail.
    if (pcre2_jit_compile(job.pattern, PCRE2_JIT_COMPLETE) != 0 && me == 0)
        std::fprintf(stderr, "mrmpi_metatags: PCRE2 JIT unavailable, interpreting the pattern\n");
    job.match_data = pcre2_match_data_create_from_pattern(job.pattern, nullptr);

    MapReduce *mr = make_mapreduce(memsize);
    job.mr = mr;
    Phases phase("mrmpi_metatags", timing, me);

    uint64_t pairs = mr->map((int)job.pages.size(), map_page, &job);
    phase("map", pairs);
    pairs = mr->collate(nullptr);
    phase("collate", pairs);
    pairs = mr->reduce(count_to_sort_key, &job);
    phase("reduce", pairs);
    int status = gather_sort_print(mr, phase);

    // Every rank read the same lists, so only rank 0's verdict on them counts.
    job.failed += me == 0 && !inputs_ok;
    int failed = 0;
    MPI_Allreduce(&job.failed, &failed, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (failed > 0)
        status = 1;
    delete mr;
    pcre2_match_data_free(job.match_data);
    pcre2_code_free(job.pattern);
    MPI_Finalize();
    return status;
}
