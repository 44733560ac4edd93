#!/usr/bin/env bash
# invertedindex.sh: an inverted index (word -> files) by a merge of variable-size values against a reduce function that builds the lists, same corpus, same ranks.
#
#   CORPUS=/tmp/hpool-ii-corpus MIN_MB=100 LAYOUT=concat CONCAT_FILES=48 bench/corpora/make_corpus.sh   # once
#   bench/drivers/invertedindex.sh [BUILD_DIR [TSV]]   (defaults: REPO/build, BUILD_DIR/bench-results/invertedindex.tsv)
#       TSV: the file this driver appends its result rows to, columns as in bench/README.md;
#       every other setting is an environment variable, as below.
#   CORPUS=DIR RUNS=5 BUDGET_MB=32 bench/drivers/invertedindex.sh
#
# CORPUS defaults to $TMPDIR/hpool-ii-corpus (/tmp without TMPDIR): many
# files of a few MB, so that file indexes mean something (make_corpus.sh's
# concat layout with CONCAT_FILES=48 gives 48 files of ~2 MB).
#
# examples/invertedindex emits (word, file index) for every word of every
# file, one file per item, and is run two ways: --merge (a keyed reducer
# whose merge takes the sorted union of two lists, per thread and per rank,
# before any pair travels) and --reduce (no combiner: every occurrence
# travels and a reduce function sorts and dedups each word's list). Each way
# runs as 1 rank x 2 threads (plain run, HPOOL_THREADS=2) and mpirun -n 2 x
# 1 thread, with the default memory budget and with BUDGET_MB (--budget),
# small enough that the pairs spill. Rows: whole-process wall time, median,
# min and max of RUNS interleaved runs; peak RSS (sum of the ranks' max RSS,
# largest over the runs); report.spilled_bytes (the same every run). Every
# run's output is compared with cmp to the first: both ways print the same
# index.
set -euo pipefail
. "$(dirname "$0")/common.sh" "$@"

CORPUS=${CORPUS:-${TMPDIR:-/tmp}/hpool-ii-corpus}
RUNS=${RUNS:-5}
BUDGET_MB=${BUDGET_MB:-32}
INDEX=$BUILD/examples/invertedindex
need_executable "$INDEX"
if [ ! -f "$CORPUS/files.txt" ]; then
    echo "no corpus in $CORPUS: run CORPUS=$CORPUS MIN_MB=100 LAYOUT=concat CONCAT_FILES=48 bench/corpora/make_corpus.sh first" >&2
    exit 2
fi
if [ ! -x /usr/bin/time ]; then
    echo "missing /usr/bin/time (Debian package time)" >&2
    exit 2
fi
mapfile -t FILES <"$CORPUS/files.txt"
BYTES=$(printf '%s\0' "${FILES[@]}" | xargs -0 stat -c %s | awk '{ s += $1 } END { printf "%d", s }')
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mpirun_for MPIRUN2 2

# timed NAME LAUNCHER... -- PROGRAM ARGS...: one run, every process under
# /usr/bin/time; appends "seconds rss_kb spilled_bytes" to $TMP/NAME.runs.
# Exits when the run fails or prints another index than the first run.
timed() {
    local name=$1 start end rss f
    shift
    local -a command=()
    while [ "$1" != -- ]; do
        command+=("$1")
        shift
    done
    shift
    rm -f "$TMP/proc".*
    # shellcheck disable=SC2016 # expanded by that sh, not here
    command+=(sh -c 'exec /usr/bin/time -q -f %M -o "$0.rss.$$" "$@" >"$0.out.$$"' "$TMP/proc" "$@")
    start=$(date +%s%N)
    if ! "${command[@]}" >/dev/null 2>"$TMP/$name.err"; then
        echo "failed: ${command[*]:0:8} ..." >&2
        tail -n 20 "$TMP/$name.err" >&2
        exit 1
    fi
    end=$(date +%s%N)
    cat "$TMP/proc".out.* >"$TMP/$name.out"
    rss=0
    for f in "$TMP/proc".rss.*; do
        rss=$((rss + $(tail -n 1 "$f")))
    done
    if [ ! -f "$TMP/reference.out" ]; then
        cp "$TMP/$name.out" "$TMP/reference.out"
    elif ! cmp -s "$TMP/reference.out" "$TMP/$name.out"; then
        echo "MISMATCH: $name printed another index than the first run" >&2
        exit 1
    fi
    echo "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.6f", (b - a) / 1e9 }') $rss $(field spilled_bytes "$TMP/$name.err")" \
        >>"$TMP/$name.runs"
}

cat "${FILES[@]}" >/dev/null # the page cache, warm for every run

names=()
for budget in default "$BUDGET_MB"; do
    for way in merge reduce; do
        names+=("$way-threads-$budget" "$way-ranks-$budget")
    done
done
for ((run = 0; run < RUNS; run++)); do
    for name in "${names[@]}"; do
        IFS=- read -r way layout budget <<<"$name"
        args=(--"$way")
        [ "$budget" = default ] || args+=(--budget "$budget")
        if [ "$layout" = threads ]; then
            HPOOL_THREADS=2 timed "$name" -- "$INDEX" "${args[@]}" "${FILES[@]}"
        else
            timed "$name" "${MPIRUN2[@]}" -x HPOOL_THREADS=1 -- "$INDEX" "${args[@]}" "${FILES[@]}"
        fi
    done
done

median() { sort -g -k1,1 "$TMP/$1.runs" | awk '{ s[NR] = $1 } END { print (NR % 2 ? s[(NR + 1) / 2] : (s[NR / 2] + s[NR / 2 + 1]) / 2) }'; }
lowest() { sort -g -k1,1 "$TMP/$1.runs" | awk 'NR == 1 { print $1 }'; }
highest() { sort -g -k1,1 "$TMP/$1.runs" | awk 'END { print $1 }'; }
spilled() { awk '$3 > m { m = $3 } END { printf "%d", m }' "$TMP/$1.runs"; }
config() {
    IFS=- read -r way layout budget <<<"$1"
    local who="invertedindex --$way"
    [ "$budget" = default ] || who+=" --budget $budget"
    if [ "$layout" = threads ]; then
        echo "$who, 1 rank x 2 threads"
    else
        echo "${MPIRUN2[*]} $who, 1 thread"
    fi
}

echo "== inverted index: merge vs reduce function, ${#FILES[@]} files, $BYTES bytes ($CORPUS), $RUNS interleaved runs, $CORES cores =="
echo "words: $(wc -l <"$TMP/reference.out"), postings: $(awk -F '\t' '{ n += split($2, ids, ",") } END { print n }' "$TMP/reference.out")"
printf "%-62s %8s %17s %13s %14s\n" config median "range" "peak RSS MB" "spilled MB"
for name in "${names[@]}"; do
    printf "%-62s %8.3f %8.3f-%-8.3f %13s %14.1f\n" "$(config "$name")" "$(median "$name")" "$(lowest "$name")" \
        "$(highest "$name")" "$(peak "$name")" "$(awk -v b="$(spilled "$name")" 'BEGIN { print b / 1e6 }')"
    parameters="files=${#FILES[@]} bytes=$BYTES"
    case $name in *-default) ;; *) parameters+=" budget_mb=$BUDGET_MB" ;; esac
    for statistic in median min max; do
        case $statistic in median) value=$(median "$name") ;; min) value=$(lowest "$name") ;; max) value=$(highest "$name") ;; esac
        tsv_row hpool "$(config "$name")" "$parameters" "$RUNS" "$statistic" seconds "$value"
    done
    tsv_row hpool "$(config "$name")" "$parameters" "$RUNS" max peak_rss_mb "$(peak "$name")"
    tsv_row hpool "$(config "$name")" "$parameters" "$RUNS" max spilled_bytes "$(spilled "$name")"
done
echo "outputs: all identical (cmp), $((RUNS * ${#names[@]})) runs"
tsv_report
