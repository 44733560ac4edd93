#!/usr/bin/env bash
# metatags_vs_peers.sh: apps/metatags against ripgrep, the seed program on Pool(2) and MR-MPI + PCRE2, on the same HTML pages.
#
#   bench/corpora/make_html_corpus.sh                      # once: 1.01 GB in $TMPDIR/hpool-html-corpus
#   bench/drivers/metatags_vs_peers.sh [BUILD_DIR [TSV]]   (defaults: REPO/build, BUILD_DIR/bench-results/metatags_vs_peers.tsv)
#       TSV: the file this driver appends its result rows to, columns as in bench/README.md;
#       every other setting is an environment variable, as below.
#   HTML_CORPUS=DIR RUNS=3 METATAGS=... MRMPI_METATAGS=... MRMPI_MEMSIZE=MB bench/drivers/metatags_vs_peers.sh
#
# HTML_CORPUS defaults to make_html_corpus.sh's: $TMPDIR/hpool-html-corpus
# (/tmp without TMPDIR). It is no longer the first argument: every driver
# takes BUILD_DIR first.
#
# Every tool searches the pages of HTML_CORPUS/files.txt for <meta .*?>, as
# Python's re.findall(rb"<meta .*?>", page) does, with 2 workers on 2 cores.
# Rows, each the best whole-process wall time of RUNS interleaved runs
# (interpreter, mpirun and MPI start-up, reading the pages and printing
# included), with the page cache warm:
#   listing, PATH<TAB>MATCH per match, pages in list order:
#     metatags  metatags --threads 2 @files.txt (1 rank x 2 threads)
#     metatags  mpirun -n 2 metatags --threads 1 @files.txt
#     python    metatags_pool.py @files.txt: the seed program,
#               Pool(2).map(get_from, paths), Pool's default chunksize
#     rg        rg -o --no-filename '<meta .*?>' HTML_CORPUS, 2 threads: the
#               matches alone, no paths, in whatever order its threads finish;
#               -uuu and -g '*.html' -g '*.htm' so that it searches exactly
#               the listed pages (by default it would skip hidden and
#               .gitignore'd files), --no-config so that no RIPGREP_CONFIG_PATH
#               changes it. It walks the directory itself: rg takes no list
#               of paths.
#   counting, COUNT<TAB>MATCH per distinct match, most frequent first:
#     metatags  metatags --count --threads 2 @files.txt
#     metatags  mpirun -n 2 metatags --count --threads 1 @files.txt
#     mrmpi     mpirun -n 2 mrmpi_metatags @files.txt (MR-MPI map, collate,
#               reduce, gather, sort; PCRE2 JIT), MR-MPI's page size the
#               smallest power of two from 1 MB that holds the pairs, found
#               by untimed runs first (or MRMPI_MEMSIZE MB if set), as
#               wordcount_vs_mrmpi.sh does: bigger pages only cost more
#     python    metatags_pool.py --count @files.txt (collections.Counter)
#   mpi         mpirun -n 2 mpi_launch: the part of every mpirun row that is
#               mpirun's and MPI's own start-up (when mpi_launch is built).
# The metatags rows are skipped, with a message, while $METATAGS (default
# BUILD_DIR/apps/metatags/metatags) does not exist; the mrmpi row while
# $MRMPI_METATAGS (default BUILD_DIR/bench/mrmpi_metatags) does not.
#
# Checks, every run: all the listings are byte-identical (cmp), and so are
# all the counts; rg prints as many lines as the listings, and the same
# matches as many times (its lines tallied with sort | uniq -c equal the
# counts); the counts add up to the listing's lines. A fast wrong answer
# proves nothing, so any difference stops the script.
#
# Peak memory: every process runs under `/usr/bin/time -f %M` (its maximum
# resident set, kB) and the ranks' figures are summed, as in
# wordcount_vs_mrmpi.sh; mpirun's own memory is not counted. The Python rows
# are the exception: Pool's workers are forked, not exec'ed, so time sees only
# the largest of the three processes; metatags_pool.py --report-rss reads the
# workers' peaks itself and the row shows parent + workers. The row shows
# the largest sum over the RUNS runs. Every process writes its stdout to a
# file of its own (rank 0's first), never to mpirun's pseudo-terminal (see
# wordcount_vs_mrmpi.sh). MB/s is corpus bytes / seconds.
set -euo pipefail
. "$(dirname "$0")/common.sh" "$@"
corpus_argument=${HTML_CORPUS:-${TMPDIR:-/tmp}/hpool-html-corpus}
CORPUS=$(cd "$corpus_argument" 2>/dev/null && pwd) || {
    echo "no corpus directory $corpus_argument: run bench/corpora/make_html_corpus.sh first, or set HTML_CORPUS" >&2
    exit 2
}

RUNS=${RUNS:-3}
METATAGS=${METATAGS:-$BUILD/apps/metatags/metatags}
MRMPI=${MRMPI_METATAGS:-$BUILD/bench/mrmpi_metatags}
MPI_LAUNCH=$BUILD/bench/mpi_launch
POOL=("$PYTHON" "$PEERS_DIR/metatags_pool.py" --processes 2 --report-rss)
RG=(rg --no-config -uuu -j 2 -o --no-filename -g '*.html' -g '*.htm' '<meta .*?>' "$CORPUS")
LIST=$CORPUS/files.txt

if [ ! -f "$LIST" ]; then
    echo "no $LIST: run bench/corpora/make_html_corpus.sh $CORPUS first" >&2
    exit 2
fi
for tool in /usr/bin/time rg; do
    if ! command -v "$tool" >/dev/null; then
        echo "missing $tool (Debian packages time, ripgrep)" >&2
        exit 2
    fi
done
have_metatags=1
if [ ! -x "$METATAGS" ]; then
    have_metatags=0
    echo "metatags not built yet ($METATAGS): its rows are skipped; set METATAGS= to point elsewhere" >&2
fi
have_mrmpi=1
if [ ! -x "$MRMPI" ]; then
    have_mrmpi=0
    echo "mrmpi_metatags not built ($MRMPI): its row is skipped; install libmrmpi-dev and libpcre2-dev and re-run cmake" >&2
fi
PAGES=$(wc -l <"$LIST")
BYTES=$(tr '\n' '\0' <"$LIST" | xargs -0 stat -c %s | awk '{ s += $1 } END { printf "%d", s }')
# Each rg run must search exactly the listed pages, or its counts mean nothing.
rg_pages=$(rg --no-config -uuu --files -g '*.html' -g '*.htm' "$CORPUS" | wc -l)
if [ "$rg_pages" -ne "$PAGES" ]; then
    echo "rg would search $rg_pages files under $CORPUS, files.txt lists $PAGES: not the same pages" >&2
    exit 1
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mpirun_for MPIRUN2 2

# timed NAME GROUP LAUNCHER... -- PROGRAM ARGS...: runs the command once,
# every process of it under /usr/bin/time, and appends "seconds rss_kb" to
# $TMP/NAME.runs, rss_kb being the sum of the processes' peak RSS (or, with
# RSS=stderr, the "peak RSS kB N" the program printed). LAUNCHER may be
# empty. Each process writes its stdout to a file named by its MPI rank,
# gathered in rank order into $TMP/NAME.out. Unless GROUP is "-", the output
# must equal the group's first (stored in $TMP/GROUP.reference); exits the
# script when it does not or the command fails.
timed() {
    local name=$1 group=$2 start end rss f rank
    shift 2
    local -a command=()
    while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
        command+=("$1")
        shift
    done
    shift
    rm -f "$TMP/proc".*
    # Open MPI tells each rank its number in OMPI_COMM_WORLD_RANK; a plain run is rank 0.
    # shellcheck disable=SC2016 # expanded by that sh, not here
    command+=(sh -c 'rank=${OMPI_COMM_WORLD_RANK:-0}
        exec /usr/bin/time -q -f %M -o "$0.rss.$rank" "$@" >"$0.out.$rank"' "$TMP/proc" "$@")
    start=$(date +%s%N)
    if ! "${command[@]}" >"$TMP/$name.launcher" 2>"$TMP/$name.err"; then
        echo "failed: ${command[*]:0:14} ..." >&2
        tail -n 20 "$TMP/$name.err" >&2
        exit 1
    fi
    end=$(date +%s%N)
    # Rank order: rank 0's lines first, as they would come on one terminal.
    : >"$TMP/$name.out"
    for ((rank = 0; ; rank++)); do
        [ -f "$TMP/proc.out.$rank" ] || break
        cat "$TMP/proc.out.$rank" >>"$TMP/$name.out"
    done
    if [ "${RSS:-time}" = stderr ]; then
        rss=$(field kB "$TMP/$name.err")
    else
        rss=0
        for f in "$TMP/proc".rss.*; do
            rss=$((rss + $(tail -n 1 "$f")))
        done
    fi
    if [ "$group" != - ]; then
        if [ ! -f "$TMP/$group.reference" ]; then
            cp "$TMP/$name.out" "$TMP/$group.reference"
            echo "$name" >"$TMP/$group.owner"
        elif ! cmp -s "$TMP/$group.reference" "$TMP/$name.out"; then
            echo "MISMATCH: $name printed other bytes than $(cat "$TMP/$group.owner"):" >&2
            cmp "$TMP/$group.reference" "$TMP/$name.out" >&2 || true
            diff "$TMP/$group.reference" "$TMP/$name.out" | head -n 10 >&2 || true
            exit 1
        fi
    fi
    echo "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.6f", (b - a) / 1e9 }') $rss" >>"$TMP/$name.runs"
}

# tally FILE: FILE's lines as COUNT<TAB>LINE, most frequent first, ties in
# bytewise order: the order of metatags --count, for rg's matches.
tally() {
    LC_ALL=C sort "$1" | uniq -c | sed -E 's/^ *([0-9]+) /\1\t/' | LC_ALL=C sort -t "$(printf '\t')" -k1,1nr -k2
}

# check_rg: rg's last run found what the listing and the counts say.
check_rg() {
    local lines expected
    lines=$(wc -l <"$TMP/rg.out")
    expected=$(wc -l <"$TMP/listing.reference")
    if [ "$lines" -ne "$expected" ]; then
        echo "MISMATCH: rg printed $lines matches, $(cat "$TMP/listing.owner") $expected" >&2
        exit 1
    fi
    tally "$TMP/rg.out" >"$TMP/rg.tally"
    if ! cmp -s "$TMP/rg.tally" "$TMP/counts.reference"; then
        echo "MISMATCH: rg's matches, tallied, differ from $(cat "$TMP/counts.owner")'s counts:" >&2
        diff "$TMP/counts.reference" "$TMP/rg.tally" | head -n 10 >&2 || true
        exit 1
    fi
}

# Warm the page cache so that no tool pays for the first read from disk.
tr '\n' '\0' <"$LIST" | xargs -0 cat >/dev/null

# MR-MPI's page size: the smallest power of two from 1 MB up that holds a
# rank's pairs (mrmpi_metatags never spills; a page too small stops the run).
# Bigger is not free: collate() touches about a quarter of a page whatever
# the data. These runs double as warm-up.
memsize=${MRMPI_MEMSIZE:-1}
if [ "$have_mrmpi" = 1 ]; then
    until "${MPIRUN2[@]}" "$MRMPI" --memsize "$memsize" "@$LIST" >/dev/null 2>"$TMP/calibrate.err"; do
        if [ -n "${MRMPI_MEMSIZE:-}" ] || [ "$memsize" -ge 16384 ]; then
            echo "mrmpi_metatags --memsize $memsize failed:" >&2
            tail -n 20 "$TMP/calibrate.err" >&2
            exit 1
        fi
        memsize=$((memsize * 2))
    done
fi

names=()
[ "$have_metatags" = 1 ] && names+=(metatags-threads metatags-ranks)
names+=(python-pool rg)
[ "$have_metatags" = 1 ] && names+=(metatags-count-threads metatags-count-ranks)
[ "$have_mrmpi" = 1 ] && names+=(mrmpi)
names+=(python-count)
for ((run = 0; run < RUNS; run++)); do
    if [ "$have_metatags" = 1 ]; then
        timed metatags-threads listing -- "$METATAGS" --threads 2 "@$LIST"
        timed metatags-ranks listing "${MPIRUN2[@]}" -- "$METATAGS" --threads 1 "@$LIST"
        timed metatags-count-threads counts -- "$METATAGS" --count --threads 2 "@$LIST"
        timed metatags-count-ranks counts "${MPIRUN2[@]}" -- "$METATAGS" --count --threads 1 "@$LIST"
    fi
    if [ "$have_mrmpi" = 1 ]; then
        timed mrmpi counts "${MPIRUN2[@]}" -- "$MRMPI" --memsize "$memsize" "@$LIST"
    fi
    RSS=stderr timed python-pool listing -- "${POOL[@]}" "@$LIST"
    RSS=stderr timed python-count counts -- "${POOL[@]}" --count "@$LIST"
    timed rg - -- "${RG[@]}"
    check_rg
    if [ -x "$MPI_LAUNCH" ]; then
        start=$(date +%s%N)
        "${MPIRUN2[@]}" "$MPI_LAUNCH" >/dev/null 2>&1 || true
        end=$(date +%s%N)
        awk -v a="$start" -v b="$end" 'BEGIN { printf "%.6f\n", (b - a) / 1e9 }' >>"$TMP/launch.runs"
    fi
done
matches=$(wc -l <"$TMP/listing.reference")
if [ "$(awk -F '\t' '{ s += $1 } END { printf "%d", s }' "$TMP/counts.reference")" -ne "$matches" ]; then
    echo "MISMATCH: the counts do not add up to the listing's $matches lines" >&2
    exit 1
fi

tool() {
    case "$1" in
    metatags-*) echo metatags ;;
    python-*) echo python ;;
    *) echo "$1" ;;
    esac
}
config() {
    case "$1" in
    metatags-threads) echo "metatags --threads 2 (1 rank x 2 threads)" ;;
    metatags-ranks) echo "${MPIRUN2[*]} metatags --threads 1" ;;
    python-pool) echo "metatags_pool.py, Pool(2).map" ;;
    rg) echo "rg -j 2 -o --no-filename (matches only)" ;;
    metatags-count-threads) echo "metatags --count --threads 2" ;;
    metatags-count-ranks) echo "${MPIRUN2[*]} metatags --count --threads 1" ;;
    mrmpi) echo "${MPIRUN2[*]} mrmpi_metatags --memsize $memsize" ;;
    python-count) echo "metatags_pool.py --count, Pool(2).map" ;;
    esac
}
row() {
    awk -v tool="$(tool "$1")" -v config="$(config "$1")" -v s="$(best "$1")" -v rss="$(peak "$1")" \
        -v bytes="$BYTES" -v runs="$(every_run "$1")" \
        'BEGIN { printf "%-9s %-46s %8.3f %8.1f %12s  %s\n", tool, config, s, bytes / s / 1e6, rss, runs }'
}

echo "== metatags: <meta .*?> in $PAGES pages, $BYTES bytes ($CORPUS), best of $RUNS interleaved runs, $CORES cores =="
echo "matches: $matches, distinct: $(wc -l <"$TMP/counts.reference")"
printf "%-9s %-46s %8s %8s %12s  %s\n" tool config seconds MB/s "peak RSS MB" "every run's seconds"
echo "listing (PATH<TAB>MATCH):"
for name in metatags-threads metatags-ranks python-pool rg; do
    if [ -f "$TMP/$name.runs" ]; then row "$name"; fi
done
echo "counting (COUNT<TAB>MATCH):"
for name in metatags-count-threads metatags-count-ranks mrmpi python-count; do
    if [ -f "$TMP/$name.runs" ]; then row "$name"; fi
done
launch_row "%-9s %-46s %8.3f %8s %12s  %s\n"
for name in "${names[@]}"; do
    parameters="pages=$PAGES bytes=$BYTES"
    [ "$name" = mrmpi ] && parameters+=" memsize_mb=$memsize"
    tsv_row "$(tool "$name")" "$(config "$name")" "$parameters" "$RUNS" best seconds "$(best "$name")"
    tsv_row "$(tool "$name")" "$(config "$name")" "$parameters" "$RUNS" max peak_rss_mb "$(peak "$name")"
done
launch_tsv_row
echo "outputs: listings identical (cmp), counts identical (cmp), rg's matches tallied equal to the counts; $((RUNS * ${#names[@]})) runs"

echo
if [ "$have_metatags" = 0 ]; then
    echo "no metatags rows (not built: $METATAGS), so no ratios against it; peers against rg (seconds / rg's seconds):"
    for name in python-pool mrmpi python-count; do
        if [ -f "$TMP/$name.runs" ]; then
            awk -v who="$(config "$name")" -v s="$(best "$name")" -v r="$(best rg)" \
                'BEGIN { printf "  %-46s %7.2fx\n", who, s / r }'
        fi
    done
    tsv_report
    exit 0
fi
echo "metatags against each peer: speedup = peer seconds / metatags seconds (above 1 metatags is faster); memory = metatags RSS / peer RSS"
printf "%-42s %-42s %8s %8s\n" metatags peer speedup memory
ratio() {
    awk -v h="$(config "$1")" -v p="$(config "$2")" -v hs="$(best "$1")" -v ps="$(best "$2")" \
        -v hr="$(peak "$1")" -v pr="$(peak "$2")" \
        'BEGIN { printf "%-42s %-42s %7.2fx %8.3f\n", h, p, ps / hs, hr / pr }'
}
for name in metatags-threads metatags-ranks; do
    for peer in python-pool rg; do
        ratio "$name" "$peer"
    done
done
for name in metatags-count-threads metatags-count-ranks; do
    for peer in mrmpi python-count; do
        if [ -f "$TMP/$peer.runs" ]; then ratio "$name" "$peer"; fi
    done
done
tsv_report
