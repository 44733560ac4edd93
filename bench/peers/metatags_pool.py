"""metatags_pool.py: the seed program as metatags's peer and reference: Pool(2).map of re.findall(rb"<meta .*?>") over HTML pages.

    metatags_pool.py [--count] [--processes P] [--report-rss] INPUT...

INPUT as for apps/metatags: an HTML file, a directory (every *.html and *.htm
under it, in bytewise-sorted path order) or @LIST (a file whose lines are
pages or directories). URLs, which metatags also takes, are not. Prints PATH<TAB>MATCH per match, pages in input order and matches in
page order; with --count, COUNT<TAB>MATCH per distinct match, most frequent
first, ties by the match's bytes. The output is meant to be byte-identical to
metatags's, so that the benchmark can cmp them.
"""
import argparse
import collections
import multiprocessing
import os
import re
import sys


def get_from(path):
    with open(path, "rb") as page:
        data = page.read()
    # As the seed program wrote it; re caches compiled patterns, so each worker compiles it once.
    return re.compile(rb"<meta .*?>").findall(data)


def pages_of(inputs):
    """The pages INPUT... names, as bytes (printed as given, whatever their encoding)."""
    pages = []
    for given in map(os.fsencode, inputs):
        if given.startswith(b"@"):
            # As in metatags, each line is a page or a directory (not another list).
            with open(given[1:], "rb") as listing:
                for line in listing.read().split(b"\n"):
                    if line:
                        pages.extend(pages_under(line))
        else:
            pages.extend(pages_under(given))
    return pages


def pages_under(path):
    """[path] for a page; for a directory, its *.html and *.htm files, symbolic links
    followed as metatags follows them (a loop of links is not caught here)."""
    if not os.path.isdir(path):
        return [path]
    found = []
    for root, _, names in os.walk(path, followlinks=True):
        found.extend(os.path.join(root, name) for name in names if name.endswith((b".html", b".htm")))
    # Bytewise order of whole paths, as LC_ALL=C sort orders files.txt.
    return sorted(found)


def peak_rss_kb(pid="self"):
    """A process's peak resident set (VmHWM) in kB, 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", action="store_true", help="print COUNT<TAB>MATCH per distinct match")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--report-rss", action="store_true",
                        help="print on stderr the peak RSS of this process and its workers, summed")
    parser.add_argument("inputs", nargs="+", metavar="INPUT")
    args = parser.parse_args()

    pages = pages_of(args.inputs)
    with multiprocessing.Pool(args.processes) as pool:
        matches_by_page = pool.map(get_from, pages)
        # The workers are forked, so /usr/bin/time around this process sees the
        # largest of them, not their sum: read their peaks while they are alive
        # (idle now, their work done).
        workers_rss_kb = sum(peak_rss_kb(child.pid) for child in multiprocessing.active_children())

    out = sys.stdout.buffer
    if args.count:
        counts = collections.Counter(match for matches in matches_by_page for match in matches)
        for match, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            out.write(b"%d\t%s\n" % (count, match))
    else:
        for page, matches in zip(pages, matches_by_page):
            for match in matches:
                out.write(b"%s\t%s\n" % (page, match))
    out.flush()
    if args.report_rss:
        print(f"peak RSS kB {peak_rss_kb() + workers_rss_kb} (this process and {args.processes} workers)",
              file=sys.stderr)


if __name__ == "__main__":
    main()
