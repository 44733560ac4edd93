#!/usr/bin/env bash
# limits.sh: examples/wordcount and metatags against hand-written limits (issue 16): omp_wordcount, read_floor (plain and --touch) and scan_floor, in one interleaved run.
#
#   bench/drivers/limits.sh [BUILD_DIR [TSV]]     (defaults: REPO/build, BUILD_DIR/bench-results/limits.tsv)
#       TSV: the file this driver appends its result rows to, columns as in bench/README.md;
#       every other setting is an environment variable, as below.
#   RUNS=5 CORPUS=DIR HTML_CORPUS=DIR PYTHON_CHECK=1 bench/drivers/limits.sh
#
# CORPUS is make_corpus.sh's (default $TMPDIR/hpool-corpus: 507 MB in 20
# files), HTML_CORPUS make_html_corpus.sh's (default $TMPDIR/hpool-html-corpus:
# 10,600 pages, 1.01 GB); /tmp without TMPDIR. A corpus that is missing is
# built first by its script, which keeps it for the next run.
#
# Every run is a plain process, 1 rank x 2 threads (HPOOL_THREADS=2 or
# --threads 2 for hpool's, OMP_NUM_THREADS=2 for the baselines), page cache
# warm, stdout to a file:
#   wordcount       examples/wordcount CORPUS's files (hpool_map_reduce_keyed)
#   omp_wordcount   bench/peers/omp_wordcount.c: the same counts by hand, per-
#                   thread tables with short words inline, AVX2 tokenizer,
#                   prefetch, huge pages, merged by hash partition
#   metatags-count  metatags --count --threads 2 @HTML_CORPUS/files.txt
#   metatags-list   metatags --threads 2 @HTML_CORPUS/files.txt (PATH<TAB>MATCH)
#   read_floor      bench/peers/read_floor.c: open, read and close every page
#                   and nothing else, the floor of any scanner
#   read_floor-touch
#                   read_floor --touch: the same reads, and an OR of every
#                   byte of each page once read, the least any scan of
#                   every byte (a UTF-8 check, a search) adds to the floor
#   scan_floor-count, scan_floor-list
#                   bench/peers/scan_floor.c: read_floor's reads plus an AVX2
#                   search for <meta .*?>, printing metatags' bytes
# RUNS rounds (default 5); each round runs all eight, its order rotated by
# one from round to round, so that neither a trend of the machine's load
# nor a place in the round favours a program. Each cell is median
# [min-max] over the rounds: wall seconds (date around the process), CPU
# seconds (user + system, /usr/bin/time) and peak RSS (MB, /usr/bin/time
# %M, the largest of the rounds). Ratios are hpool's median / the
# baseline's median; the goals of issue 16 are wordcount <= 1.25x
# omp_wordcount and metatags (both outputs) <= 1.15x read_floor.
#
# Checks, before any timed run (PYTHON_CHECK=0 skips the Python side):
# Python's outputs are the references: wordcount_counter.py
# (collections.Counter over bytes.split()), metatags_pool.py --count and
# its listing (re.findall(rb"<meta .*?>")), and the pages and bytes of the
# list read by Python for read_floor. Then every timed run's stdout must be
# its reference, byte for byte (cmp); the first difference prints a line
# "MISMATCH: ..." and stops the script with status 1, before any figure.
set -euo pipefail
. "$(dirname "$0")/common.sh" "$@"

RUNS=${RUNS:-5}
CORPUS=${CORPUS:-${TMPDIR:-/tmp}/hpool-corpus}
HTML_CORPUS=${HTML_CORPUS:-${TMPDIR:-/tmp}/hpool-html-corpus}
PYTHON_CHECK=${PYTHON_CHECK:-1}
WORDCOUNT=$BUILD/examples/wordcount
METATAGS=$BUILD/apps/metatags/metatags
OMP_WORDCOUNT=$BUILD/bench/omp_wordcount
READ_FLOOR=$BUILD/bench/read_floor
SCAN_FLOOR=$BUILD/bench/scan_floor
for executable in "$WORDCOUNT" "$METATAGS" "$OMP_WORDCOUNT" "$READ_FLOOR" "$SCAN_FLOOR"; do
    need_executable "$executable"
done
if [ ! -x /usr/bin/time ]; then
    echo "missing /usr/bin/time (Debian package time)" >&2
    exit 2
fi
# Built once, then kept: both scripts do nothing when their corpus is there.
if [ ! -f "$CORPUS/files.txt" ]; then
    CORPUS=$CORPUS "$BENCH_DIR/corpora/make_corpus.sh"
fi
if [ ! -f "$HTML_CORPUS/files.txt" ]; then
    "$BENCH_DIR/corpora/make_html_corpus.sh" "$HTML_CORPUS"
fi
mapfile -t FILES <"$CORPUS/files.txt"
LIST=$HTML_CORPUS/files.txt
WORD_BYTES=$(printf '%s\0' "${FILES[@]}" | xargs -0 stat -c %s | awk '{ s += $1 } END { printf "%d", s }')
PAGES=$(wc -l <"$LIST")
PAGE_BYTES=$(tr '\n' '\0' <"$LIST" | xargs -0 stat -c %s | awk '{ s += $1 } END { printf "%d", s }')

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

NAMES=(wordcount omp_wordcount metatags-count metatags-list read_floor read_floor-touch scan_floor-count scan_floor-list)
# command NAME: sets the array CMD to NAME's command line.
command_of() {
    case $1 in
    wordcount) CMD=(env HPOOL_THREADS=2 "$WORDCOUNT" "${FILES[@]}") ;;
    omp_wordcount) CMD=(env OMP_NUM_THREADS=2 "$OMP_WORDCOUNT" "${FILES[@]}") ;;
    metatags-count) CMD=(env HPOOL_THREADS=2 "$METATAGS" --count --threads 2 "@$LIST") ;;
    metatags-list) CMD=(env HPOOL_THREADS=2 "$METATAGS" --threads 2 "@$LIST") ;;
    read_floor) CMD=(env OMP_NUM_THREADS=2 "$READ_FLOOR" "@$LIST") ;;
    read_floor-touch) CMD=(env OMP_NUM_THREADS=2 "$READ_FLOOR" --touch "@$LIST") ;;
    scan_floor-count) CMD=(env OMP_NUM_THREADS=2 "$SCAN_FLOOR" --count "@$LIST") ;;
    scan_floor-list) CMD=(env OMP_NUM_THREADS=2 "$SCAN_FLOOR" "@$LIST") ;;
    esac
}
# The output each program must print, shared with its peers.
group_of() {
    case $1 in
    wordcount | omp_wordcount) echo words ;;
    metatags-count | scan_floor-count) echo counts ;;
    metatags-list | scan_floor-list) echo listing ;;
    read_floor | read_floor-touch) echo read ;;
    esac
}
label_of() {
    case $1 in
    wordcount) echo "examples/wordcount (hpool)" ;;
    omp_wordcount) echo "omp_wordcount" ;;
    metatags-count) echo "metatags --count (hpool)" ;;
    metatags-list) echo "metatags, listing (hpool)" ;;
    read_floor) echo "read_floor" ;;
    read_floor-touch) echo "read_floor --touch" ;;
    scan_floor-count) echo "scan_floor --count" ;;
    scan_floor-list) echo "scan_floor, listing" ;;
    esac
}
tool_of() {
    case $1 in
    wordcount) echo hpool ;;
    metatags-*) echo metatags ;;
    *) echo "${1%%-*}" ;;
    esac
}

# same GROUP FILE WHO: FILE must be GROUP's reference, byte for byte.
same() {
    if [ ! -f "$TMP/$1.reference" ]; then
        cp "$2" "$TMP/$1.reference"
        echo "$3" >"$TMP/$1.owner"
    elif ! cmp -s "$TMP/$1.reference" "$2"; then
        echo "MISMATCH: $3 printed other bytes than $(cat "$TMP/$1.owner") ($1):" >&2
        cmp "$TMP/$1.reference" "$2" >&2 || true
        diff "$TMP/$1.reference" "$2" | head -n 6 >&2 || true
        exit 1
    fi
}

# The page cache, warm for every program.
cat "${FILES[@]}" >/dev/null
tr '\n' '\0' <"$LIST" | xargs -0 cat >/dev/null

if [ "$PYTHON_CHECK" = 1 ]; then
    echo "references: Python's counts and listings (untimed) ..." >&2
    "$PYTHON" "$PEERS_DIR/wordcount_counter.py" "${FILES[@]}" >"$TMP/python.out"
    same words "$TMP/python.out" "Python (wordcount_counter.py)"
    "$PYTHON" "$PEERS_DIR/metatags_pool.py" --count "@$LIST" >"$TMP/python.out"
    same counts "$TMP/python.out" "Python (metatags_pool.py --count)"
    "$PYTHON" "$PEERS_DIR/metatags_pool.py" "@$LIST" >"$TMP/python.out"
    same listing "$TMP/python.out" "Python (metatags_pool.py)"
    PYTHONPATH=$PEERS_DIR "$PYTHON" -c '
import sys, metatags_pool
pages = metatags_pool.pages_of(sys.argv[1:])
size = 0
for page in pages:
    with open(page, "rb") as file:
        size += len(file.read())
print("pages %d bytes %d" % (len(pages), size))' "@$LIST" >"$TMP/python.out"
    same read "$TMP/python.out" "Python (every page read)"
fi

LOAD_BEFORE=$(cut -d ' ' -f 1-3 /proc/loadavg)
for ((run = 0; run < RUNS; run++)); do
    for ((i = 0; i < ${#NAMES[@]}; i++)); do
        name=${NAMES[(i + run) % ${#NAMES[@]}]}
        command_of "$name"
        seconds=$(wall_once "$TMP/out" /usr/bin/time -q -f '%U %S %M' -o "$TMP/time" "${CMD[@]}")
        same "$(group_of "$name")" "$TMP/out" "$(label_of "$name")"
        echo "$seconds" >>"$TMP/$name.wall"
        awk '{ printf "%.3f\n", $1 + $2 }' "$TMP/time" >>"$TMP/$name.cpu"
        awk '{ print $3 }' "$TMP/time" >>"$TMP/$name.rss"
    done
done
LOAD_AFTER=$(cut -d ' ' -f 1-3 /proc/loadavg)

peak_mb() { sort -g "$TMP/$1.rss" | tail -n 1 | awk '{ printf "%.1f", $1 / 1024 }'; }

echo "== limits: hpool against hand-written baselines, 1 rank x 2 threads, $RUNS interleaved rounds, median [min-max], $CORES cores =="
echo "wordcount: ${#FILES[@]} files, $WORD_BYTES bytes ($CORPUS); metatags: $PAGES pages, $PAGE_BYTES bytes ($HTML_CORPUS)"
echo "load average before: $LOAD_BEFORE, after: $LOAD_AFTER"
printf "%-28s %-24s %-24s %12s\n" run "wall s" "CPU s (user+sys)" "peak RSS MB"
for name in "${NAMES[@]}"; do
    read -r -a wall <<<"$(stats "$TMP/$name.wall")"
    read -r -a cpu <<<"$(stats "$TMP/$name.cpu")"
    printf "%-28s %7.3f [%.3f-%.3f]    %6.2f [%.2f-%.2f]    %12s\n" "$(label_of "$name")" "${wall[@]}" "${cpu[@]}" "$(peak_mb "$name")"
    case $(group_of "$name") in
    words) parameters="files=${#FILES[@]} bytes=$WORD_BYTES" ;;
    *) parameters="pages=$PAGES bytes=$PAGE_BYTES" ;;
    esac
    variant="$(label_of "$name"), 1 rank x 2 threads"
    i=0
    for statistic in median min max; do
        tsv_row "$(tool_of "$name")" "$variant" "$parameters" "$RUNS" "$statistic" seconds "${wall[i]}"
        tsv_row "$(tool_of "$name")" "$variant" "$parameters" "$RUNS" "$statistic" cpu_seconds "${cpu[i]}"
        i=$((i + 1))
    done
    tsv_row "$(tool_of "$name")" "$variant" "$parameters" "$RUNS" max peak_rss_mb "$(peak_mb "$name")"
done
checked="every run's output identical to its peers' (cmp)"
[ "$PYTHON_CHECK" = 1 ] && checked+=" and to Python's"
echo "outputs: $checked, $((RUNS * ${#NAMES[@]})) runs"

echo
echo "hpool / baseline, medians (above 1: hpool slower, or bigger)"
printf "%-28s %-22s %8s %8s %8s  %s\n" hpool baseline wall CPU RSS goal
ratio() { # HPOOL BASELINE GOAL
    local goal=$3
    awk -v h="$(label_of "$1")" -v b="$(label_of "$2")" -v hw="$(median_of <"$TMP/$1.wall")" \
        -v bw="$(median_of <"$TMP/$2.wall")" -v hc="$(median_of <"$TMP/$1.cpu")" -v bc="$(median_of <"$TMP/$2.cpu")" \
        -v hr="$(peak_mb "$1")" -v br="$(peak_mb "$2")" -v goal="$goal" 'BEGIN {
        wall = hw / bw
        verdict = goal == "" ? "" : sprintf("wall <= %.2fx: %s", goal, wall <= goal ? "met" : "NOT met")
        printf "%-28s %-22s %7.2fx %7.2fx %7.2fx  %s\n", h, b, wall, (bc > 0 ? hc / bc : 0), hr / br, verdict }'
}
ratio wordcount omp_wordcount 1.25
ratio metatags-count read_floor 1.15
ratio metatags-list read_floor 1.15
ratio metatags-count scan_floor-count ""
ratio metatags-list scan_floor-list ""
ratio scan_floor-count read_floor ""
ratio read_floor-touch read_floor ""
tsv_report
