#!/usr/bin/env bash
# wordcount_vs_mrmpi.sh: hpool's examples/wordcount against MR-MPI (bench/peers/mrmpi_wordcount.cpp) on the same HTML corpus, same ranks.
#
#   bench/corpora/make_corpus.sh                            # once: >= 500 MB in $TMPDIR/hpool-corpus
#   bench/drivers/wordcount_vs_mrmpi.sh [BUILD_DIR [TSV]]   (defaults: REPO/build, BUILD_DIR/bench-results/wordcount_vs_mrmpi.tsv)
#       TSV: the file this driver appends its result rows to, columns as in bench/README.md;
#       every other setting is an environment variable, as below.
#   CORPUS=DIR RUNS=3 MRMPI_MODES="none compress map" [MRMPI_MEMSIZE=MB] bench/drivers/wordcount_vs_mrmpi.sh
#
# CORPUS defaults to make_corpus.sh's: $TMPDIR/hpool-corpus (/tmp without TMPDIR).
#
# Rows, each the best whole-process wall time of RUNS interleaved runs
# (mpirun, MPI start-up and printing the ~260,000 result lines included):
#   hpool   wordcount, 1 rank x 2 threads (plain run, HPOOL_THREADS=2)
#   hpool   mpirun -n 2 wordcount, HPOOL_THREADS=1
#   mrmpi   mpirun -n 2 mrmpi_wordcount --combine MODE, for each MODE of
#           MRMPI_MODES: none (one pair per word, as MR-MPI's wordfreq
#           example), compress (MR-MPI's compress() sums each rank's pairs
#           before the shuffle), map (the map sums its range's words in a hash
#           table first, which is what hpool's per-chunk combiner does).
#   hpool   the mpirun -n 2 hpool row again, but with rank 0's stdout left to
#           mpirun (see below); not used in the ratios.
#   mpi     mpirun -n 2 mpi_launch: the part of every mpirun row that is
#           mpirun's and MPI's own start-up (when mpi_launch is built).
# MR-MPI never spills to disk (see mrmpi_wordcount.cpp: a run that would
# have to fails instead); its page size is the smallest that fits, found by
# untimed runs first (see below), or MRMPI_MEMSIZE MB for every mode if set.
#
# Output: every process's stdout is a file of its own, as in a plain run
# redirected to a file. Left alone, mpirun gives each rank a pseudo-terminal
# as stdout and forwards it through itself: even with stdout fully buffered
# (both programs set a 1 MB buffer), forwarding rank 0's 260,000 lines costs
# ~0.25 s here. The extra hpool row shows that cost; the compared rows do
# not pay it.
#
# Peak memory: every process runs under `/usr/bin/time -f %M` (its maximum
# resident set, kB), the ranks' figures are summed; the row shows the largest
# such sum over the RUNS runs. mpirun's own memory is not counted, for
# either tool. MB/s is corpus bytes / seconds. Every run's output is
# compared with cmp to the first hpool run's: a fast wrong answer proves
# nothing. Ratios: speedup = MR-MPI seconds / hpool seconds (above 1 hpool
# is faster), memory = hpool peak RSS / MR-MPI peak RSS (below 1 hpool uses
# less). The goals (hpool at least 2x faster, at most half the memory) are
# judged against the strongest MR-MPI row: the fastest for speed, the
# smallest for memory.
set -euo pipefail
. "$(dirname "$0")/common.sh" "$@"

CORPUS=${CORPUS:-${TMPDIR:-/tmp}/hpool-corpus}
RUNS=${RUNS:-3}
MRMPI_MODES=${MRMPI_MODES:-none compress map}
WORDCOUNT=$BUILD/examples/wordcount
MRMPI=$BUILD/bench/mrmpi_wordcount
MPI_LAUNCH=$BUILD/bench/mpi_launch
need_executable "$WORDCOUNT"
if [ ! -x "$MRMPI" ]; then
    echo "missing $MRMPI: install libmrmpi-dev (Debian) and re-run cmake, which builds it only when MR-MPI is found" >&2
    exit 2
fi
if [ ! -f "$CORPUS/files.txt" ]; then
    echo "no corpus in $CORPUS: run bench/corpora/make_corpus.sh (CORPUS=$CORPUS) first" >&2
    exit 2
fi
if [ ! -x /usr/bin/time ]; then
    echo "missing /usr/bin/time (Debian package time)" >&2
    exit 2
fi
mapfile -t FILES <"$CORPUS/files.txt"
BYTES=$(printf '%s\0' "${FILES[@]}" | xargs -0 stat -c %s | awk '{ s += $1 } END { printf "%d", s }')
# Open MPI hands the whole command line to every rank in one environment
# variable (OMPI_ARGV), and Linux caps one such string at 128 KiB: more than
# that fails with "Argument list too long" whatever ARG_MAX says.
args_bytes=$(printf '%s ' "${FILES[@]}" | wc -c)
if [ "$args_bytes" -gt 120000 ]; then
    echo "the corpus's $((${#FILES[@]})) paths take $args_bytes bytes: too many for mpirun's command line" \
        "(128 KiB); rebuild it with LAYOUT=concat bench/corpora/make_corpus.sh" >&2
    exit 2
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mpirun_for MPIRUN2 2

# timed NAME COMMAND...: runs COMMAND once, every process of it under
# /usr/bin/time, and appends "seconds rss_kb" to $TMP/NAME.runs, rss_kb being
# the sum of the processes' peak RSS. COMMAND is LAUNCHER... -- PROGRAM ARGS...
# (LAUNCHER may be empty): the wrapper goes between the two. Each process
# writes its stdout to a file of its own, gathered into $TMP/NAME.out (only
# rank 0 prints); with STDOUT=mpirun, the processes' stdout is the launcher's
# instead, which under mpirun is a pseudo-terminal forwarded by mpirun (see
# the top). Exits the script when the command fails or its output differs
# from the reference (the first hpool run's).
timed() {
    local name=$1 start end rss f
    shift
    local -a command=()
    while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
        command+=("$1")
        shift
    done
    shift
    rm -f "$TMP/proc".*
    # sh execs time, so $$ is time's pid: files of their own per process, any launcher.
    # shellcheck disable=SC2016 # expanded by that sh, not here
    if [ "${STDOUT:-file}" = mpirun ]; then
        command+=(sh -c 'exec /usr/bin/time -q -f %M -o "$0.rss.$$" "$@"' "$TMP/proc" "$@")
    else
        command+=(sh -c 'exec /usr/bin/time -q -f %M -o "$0.rss.$$" "$@" >"$0.out.$$"' "$TMP/proc" "$@")
    fi
    start=$(date +%s%N)
    if ! "${command[@]}" >"$TMP/$name.out" 2>"$TMP/$name.err"; then
        echo "failed: ${command[*]:0:12} ..." >&2
        tail -n 20 "$TMP/$name.err" >&2
        exit 1
    fi
    end=$(date +%s%N)
    if [ "${STDOUT:-file}" != mpirun ]; then
        cat "$TMP/proc".out.* >"$TMP/$name.out"
    fi
    rss=0
    for f in "$TMP/proc".rss.*; do
        rss=$((rss + $(tail -n 1 "$f")))
    done
    if [ ! -f "$TMP/reference.out" ]; then
        cp "$TMP/$name.out" "$TMP/reference.out"
    elif ! cmp -s "$TMP/reference.out" "$TMP/$name.out"; then
        echo "MISMATCH: $name printed other counts than hpool's wordcount:" >&2
        cmp "$TMP/reference.out" "$TMP/$name.out" >&2 || true
        diff "$TMP/reference.out" "$TMP/$name.out" | head -n 10 >&2 || true
        exit 1
    fi
    echo "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.6f", (b - a) / 1e9 }') $rss" >>"$TMP/$name.runs"
}

# Warm the page cache so that no tool pays for the first read from disk.
cat "${FILES[@]}" >/dev/null

# MR-MPI's page size, per mode: MRMPI_MEMSIZE if set, else the smallest power
# of two from 64 MB up with which the run fits in memory (mrmpi_wordcount
# sets outofcore = -1, so a page too small for a rank's pairs stops the run
# instead of spilling to disk). Bigger is not free: collate() touches about a
# quarter of a page whatever the data (1024 MB pages: 256 MB more RSS per rank
# and ~0.6 s, even for a one-word input), so the smallest page that fits is
# MR-MPI's best setting. These runs double as warm-up.
declare -A MEMSIZE
for mode in $MRMPI_MODES; do
    memsize=${MRMPI_MEMSIZE:-64}
    until "${MPIRUN2[@]}" "$MRMPI" --combine "$mode" --memsize "$memsize" "${FILES[@]}" >/dev/null 2>"$TMP/calibrate.err"; do
        if [ -n "${MRMPI_MEMSIZE:-}" ] || [ "$memsize" -ge 16384 ]; then
            echo "mrmpi_wordcount --combine $mode --memsize $memsize failed:" >&2
            tail -n 20 "$TMP/calibrate.err" >&2
            exit 1
        fi
        memsize=$((memsize * 2))
    done
    MEMSIZE[$mode]=$memsize
done

names=(hpool-threads hpool-ranks)
for mode in $MRMPI_MODES; do
    names+=("mrmpi-$mode")
done
names+=(hpool-ranks-pty)
for ((run = 0; run < RUNS; run++)); do
    HPOOL_THREADS=2 timed hpool-threads -- "$WORDCOUNT" "${FILES[@]}"
    timed hpool-ranks "${MPIRUN2[@]}" -x HPOOL_THREADS=1 -- "$WORDCOUNT" "${FILES[@]}"
    STDOUT=mpirun timed hpool-ranks-pty "${MPIRUN2[@]}" -x HPOOL_THREADS=1 -- "$WORDCOUNT" "${FILES[@]}"
    for mode in $MRMPI_MODES; do
        timed "mrmpi-$mode" "${MPIRUN2[@]}" -- "$MRMPI" --combine "$mode" --memsize "${MEMSIZE[$mode]}" "${FILES[@]}"
    done
    if [ -x "$MPI_LAUNCH" ]; then
        start=$(date +%s%N)
        "${MPIRUN2[@]}" "$MPI_LAUNCH" >/dev/null 2>&1 || true
        end=$(date +%s%N)
        awk -v a="$start" -v b="$end" 'BEGIN { printf "%.6f\n", (b - a) / 1e9 }' >>"$TMP/launch.runs"
    fi
done

config() {
    case "$1" in
    hpool-threads) echo "wordcount, 1 rank x 2 threads (plain run)" ;;
    hpool-ranks) echo "${MPIRUN2[*]} wordcount, HPOOL_THREADS=1" ;;
    hpool-ranks-pty) echo "the same, rank 0's stdout through mpirun" ;;
    mrmpi-*) echo "${MPIRUN2[*]} mrmpi_wordcount --combine ${1#mrmpi-}" ;;
    esac
}
label() {
    case "$1" in
    hpool-threads) echo "1 rank x 2 threads" ;;
    hpool-ranks) echo "mpirun -n 2 x 1 thread" ;;
    mrmpi-*) echo "mpirun -n 2 --combine ${1#mrmpi-}" ;;
    esac
}
words=$(awk -F '\t' '{ s += $1 } END { printf "%d", s }' "$TMP/reference.out")
distinct=$(wc -l <"$TMP/reference.out")

echo "== wordcount: hpool vs MR-MPI, ${#FILES[@]} files, $BYTES bytes ($CORPUS), best of $RUNS interleaved runs, $CORES cores =="
pages=""
for mode in $MRMPI_MODES; do
    pages+="${pages:+, }$mode ${MEMSIZE[$mode]} MB"
done
echo "words: $words, distinct: $distinct; MR-MPI page size (--memsize) by mode: $pages; never spilled to disk"
printf "%-6s %-52s %8s %8s %13s  %s\n" tool config seconds MB/s "peak RSS MB" "every run's seconds"
for name in "${names[@]}"; do
    awk -v tool="${name%%-*}" -v config="$(config "$name")" -v s="$(best "$name")" -v rss="$(peak "$name")" \
        -v bytes="$BYTES" -v runs="$(every_run "$name")" \
        'BEGIN { printf "%-6s %-52s %8.3f %8.1f %13s  %s\n", tool, config, s, bytes / s / 1e6, rss, runs }'
    parameters="files=${#FILES[@]} bytes=$BYTES"
    [[ $name == mrmpi-* ]] && parameters+=" memsize_mb=${MEMSIZE[${name#mrmpi-}]}"
    tsv_row "${name%%-*}" "$(config "$name")" "$parameters" "$RUNS" best seconds "$(best "$name")"
    tsv_row "${name%%-*}" "$(config "$name")" "$parameters" "$RUNS" max peak_rss_mb "$(peak "$name")"
done
launch_row "%-6s %-52s %8.3f %8s %13s  %s\n"
launch_tsv_row
echo "outputs: all identical (cmp), $((RUNS * ${#names[@]})) runs"

echo
echo "hpool against each MR-MPI row: speedup = MR-MPI seconds / hpool seconds; memory = hpool RSS / MR-MPI RSS"
printf "%-26s %-32s %8s %8s\n" "hpool" "MR-MPI" speedup memory
for hpool in hpool-threads hpool-ranks; do
    for mode in $MRMPI_MODES; do
        awk -v h="$(label "$hpool")" -v m="$(label "mrmpi-$mode")" \
            -v hs="$(best "$hpool")" -v ms="$(best "mrmpi-$mode")" -v hr="$(peak "$hpool")" -v mr="$(peak "mrmpi-$mode")" \
            'BEGIN { printf "%-26s %-32s %7.2fx %8.3f\n", h, m, ms / hs, hr / mr }'
    done
done

# The goals, against the strongest MR-MPI row for each measure.
fastest="" fastest_s="" smallest="" smallest_rss=""
for mode in $MRMPI_MODES; do
    s=$(best "mrmpi-$mode") r=$(peak "mrmpi-$mode")
    if [ -z "$fastest" ] || awk -v a="$s" -v b="$fastest_s" 'BEGIN { exit !(a < b) }'; then
        fastest=$mode fastest_s=$s
    fi
    if [ -z "$smallest" ] || awk -v a="$r" -v b="$smallest_rss" 'BEGIN { exit !(a < b) }'; then
        smallest=$mode smallest_rss=$r
    fi
done
echo
for hpool in hpool-ranks hpool-threads; do
    awk -v who="$(config "$hpool")" -v hs="$(best "$hpool")" -v hr="$(peak "$hpool")" \
        -v fm="$fastest" -v fs="$fastest_s" -v sm="$smallest" -v sr="$smallest_rss" 'BEGIN {
        speed = fs / hs; memory = hr / sr
        printf "goals, %s:\n", who
        printf "  >= 2x faster than the fastest MR-MPI (--combine %s): %.2fx, %s\n", fm, speed, (speed >= 2 ? "met" : "NOT met")
        printf "  <= 1/2 the memory of the leanest MR-MPI (--combine %s): %.3f, %s\n", sm, memory, (memory <= 0.5 ? "met" : "NOT met") }'
done
tsv_report
