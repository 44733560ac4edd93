#!/usr/bin/env bash
# journal.sh: what --journal costs on the main benchmarks, how big the journal is against the output, and how much work a resume redoes after kill -9 or a drain (issue 15).
#
#   bench/drivers/journal.sh [BUILD_DIR [TSV]]     (defaults: REPO/build, BUILD_DIR/bench-results/journal.tsv)
#       TSV: the file this driver appends its result rows to, columns as in bench/README.md;
#       every other setting is an environment variable, as below.
#   MIN_MB=100 CORPUS=/tmp/hpool-corpus-100 bench/corpora/make_corpus.sh          # once
#   bench/corpora/make_html_corpus.sh /tmp/hpool-html-corpus-2 2                     # once
#   RUNS=9 N=1000000000 INTS=FILE CORPUS=DIR HTML_CORPUS=DIR KILLS=10 REDO_N=10000 \
#       REDO_ITEM_US=500 KEYED_TRIALS=5 PARTS="cost redo keyed" CASES="input wordcount" bench/drivers/journal.sh
#
# Part "cost": six runs, each plain and with --journal (deleted before every
# run, .keyed files too, so every run writes a whole journal), interleaved,
# the pair's order alternating from round to round, RUNS rounds:
# square --sum N (1 rank x 2 threads, and mpirun -n 2 x 1 thread), the
# ordered square --input listing of INTS (seq 1 10000000, made if missing),
# examples/wordcount over CORPUS (make_corpus.sh, concat), metatags --count
# and the metatags PATH<TAB>MATCH listing over HTML_CORPUS/files.txt; all
# plain ones 1 x 2 threads (CASES: sum-threads sum-ranks input wordcount
# metatags-count metatags-list, or some of them). After each journaled run the same command runs
# again with the completed journal (the "replay" column). Whole-process
# wall time, median [min-max]; overhead = journaled median / plain median.
# Every journaled and replayed run's stdout is compared with cmp to the
# plain run's. Sizes: the journal (plus its .keyed files) and stdout, bytes.
# CPU: user + system seconds of the process and its children (mpirun's
# ranks included), from /usr/bin/time: on a shared machine it moves less
# with the load than wall time does.
#
# Part "redo": bench/journal_redo (REDO_N items of REDO_ITEM_US µs, a
# counter that survives kill -9) is killed at a random moment (when a share
# of the items, uniform in 10-80 %, has run), KILLS times, each time with a fresh journal,
# then rerun with the same journal until it exits 0: redone = counter - N.
# Four ways: kill -9 of the process group (run under setsid) and a drain by
# SIGTERM, each as 1 rank x 2 threads and mpirun -n 2 x 1 thread (SIGTERM
# goes to the ranks themselves: mpirun would kill them, and journal_redo
# stops only on SIGTERM). A drain should redo 0.
#
# Part "keyed": wordcount over CORPUS stopped by SIGTERM at a random moment
# (10-80 % of a full run), KEYED_TRIALS times. Its stop line says how many
# of the file ranges were done; the resume is timed, then the stopped
# journal is restored and the resume run again under strace, counting the
# ranges it opens: redone = opened - (ranges - done), 0 expected.
set -euo pipefail
. "$(dirname "$0")/common.sh" "$@"

RUNS=${RUNS:-9}
N=${N:-1000000000}
INTS=${INTS:-${TMPDIR:-/tmp}/hpool-ints-1e7.txt}
CORPUS=${CORPUS:-${TMPDIR:-/tmp}/hpool-corpus-100}
HTML_CORPUS=${HTML_CORPUS:-${TMPDIR:-/tmp}/hpool-html-corpus-2}
KILLS=${KILLS:-10}
REDO_N=${REDO_N:-10000}
REDO_ITEM_US=${REDO_ITEM_US:-500}
KEYED_TRIALS=${KEYED_TRIALS:-5}
PARTS=${PARTS:-cost redo keyed}
SQUARE=$BUILD/apps/square/square
METATAGS=$BUILD/apps/metatags/metatags
WORDCOUNT=$BUILD/examples/wordcount
REDO=$BUILD/bench/journal_redo
for executable in "$SQUARE" "$METATAGS" "$WORDCOUNT" "$REDO"; do
    need_executable "$executable"
done
for corpus in "$CORPUS" "$HTML_CORPUS"; do
    if [ ! -f "$corpus/files.txt" ]; then
        echo "no corpus in $corpus: see $0 -h for the commands that make them" >&2
        exit 2
    fi
done
if [ ! -f "$INTS" ]; then
    seq 1 10000000 >"$INTS"
fi
mapfile -t FILES <"$CORPUS/files.txt"
export HPOOL_PLACEMENT=quiet
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mpirun_for MPIRUN2 2
# A directory of its own, so that its size is the journal's and nothing else's.
mkdir "$TMP/journal.d"
JOURNAL=$TMP/journal.d/journal

journal_bytes() { find "$TMP/journal.d" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
fresh_journal() { rm -f "$JOURNAL" "$JOURNAL".*.keyed; }

# The runs of part "cost": NAME, then the command; JOURNAL_ARGS marks where
# --journal FILE goes (wordcount wants it first).
case_command() { # NAME JOURNALED(0/1): sets the array CMD
    local journal_args=()
    [ "$2" = 1 ] && journal_args=(--journal "$JOURNAL")
    case $1 in
    sum-threads) CMD=(env HPOOL_THREADS=2 "$SQUARE" --sum --threads 2 "${journal_args[@]}" "$N") ;;
    sum-ranks) CMD=("${MPIRUN2[@]}" -x HPOOL_THREADS=1 "$SQUARE" --sum --threads 1 "${journal_args[@]}" "$N") ;;
    input) CMD=(env HPOOL_THREADS=2 "$SQUARE" --threads 2 "${journal_args[@]}" --input "$INTS") ;;
    wordcount) CMD=(env HPOOL_THREADS=2 "$WORDCOUNT" "${journal_args[@]}" "${FILES[@]}") ;;
    metatags-count) CMD=(env HPOOL_THREADS=2 "$METATAGS" --count --threads 2 "${journal_args[@]}" "@$HTML_CORPUS/files.txt") ;;
    metatags-list) CMD=(env HPOOL_THREADS=2 "$METATAGS" --threads 2 "${journal_args[@]}" "@$HTML_CORPUS/files.txt") ;;
    esac
}
case_label() {
    case $1 in
    sum-threads) echo "square --sum $N, 1 x 2" ;;
    sum-ranks) echo "square --sum $N, ${MPIRUN2[*]} x 1" ;;
    input) echo "square --input, $(wc -l <"$INTS") lines, in order, 1 x 2" ;;
    wordcount) echo "wordcount, ${#FILES[@]} files, $(cat "${FILES[@]}" | wc -c) bytes, 1 x 2" ;;
    metatags-count) echo "metatags --count, $(wc -l <"$HTML_CORPUS/files.txt") pages, 1 x 2" ;;
    metatags-list) echo "metatags listing, $(wc -l <"$HTML_CORPUS/files.txt") pages, 1 x 2" ;;
    esac
}
read -r -a CASES <<<"${CASES:-sum-threads sum-ranks input wordcount metatags-count metatags-list}"

# same NAME WHAT OUT: stdout OUT must be the plain run's, byte for byte.
same() {
    if ! cmp -s "$TMP/$1.reference" "$3"; then
        echo "MISMATCH: $1 $2 printed other bytes than the plain run" >&2
        exit 1
    fi
}

# cpu_seconds: user + system seconds of the last run under /usr/bin/time.
cpu_seconds() { tail -n 1 "$TMP/cpu" | awk '{ printf "%.3f\n", $1 + $2 }'; }

cost_part() {
    local run name order seconds
    cat "${FILES[@]}" "$INTS" >/dev/null
    xargs -d '\n' cat <"$HTML_CORPUS/files.txt" >/dev/null # the page cache, warm for every run
    for ((run = 0; run < RUNS; run++)); do
        for name in "${CASES[@]}"; do
            # Alternate which goes first, so a trend of the machine's load
            # favours neither.
            if ((run % 2)); then order="1 0"; else order="0 1"; fi
            for journaled in $order; do
                case_command "$name" "$journaled"
                CMD=(/usr/bin/time -q -f '%U %S' -o "$TMP/cpu" "${CMD[@]}")
                if [ "$journaled" = 0 ]; then
                    seconds=$(wall_once "$TMP/out" "${CMD[@]}")
                    [ -f "$TMP/$name.reference" ] || cp "$TMP/out" "$TMP/$name.reference"
                    same "$name" "plain run" "$TMP/out"
                    echo "$seconds" >>"$TMP/$name.plain"
                    cpu_seconds >>"$TMP/$name.plain_cpu"
                    wc -c <"$TMP/out" >"$TMP/$name.stdout_bytes"
                else
                    fresh_journal
                    seconds=$(wall_once "$TMP/out" "${CMD[@]}")
                    cp "$TMP/out" "$TMP/journaled.out"
                    echo "$seconds" >>"$TMP/$name.journaled"
                    cpu_seconds >>"$TMP/$name.journaled_cpu"
                    journal_bytes >"$TMP/$name.journal_bytes"
                    seconds=$(wall_once "$TMP/out" "${CMD[@]}")
                    echo "$seconds" >>"$TMP/$name.replay"
                    # Round 0 runs the plain one first, so the reference is there.
                    same "$name" "journaled run" "$TMP/journaled.out"
                    same "$name" "rerun with the completed journal" "$TMP/out"
                fi
            done
        done
    done
    echo "== --journal: cost, $RUNS interleaved rounds, whole-process seconds, median [min-max], $CORES cores, load $(cut -d ' ' -f 1-3 /proc/loadavg) =="
    printf "%-58s %-24s %-24s %8s %-24s %12s %12s\n" run plain journaled overhead "replay (completed journal)" journal_B stdout_B
    local plain journaled replay parameters
    for name in "${CASES[@]}"; do
        read -r -a plain <<<"$(stats "$TMP/$name.plain")"
        read -r -a journaled <<<"$(stats "$TMP/$name.journaled")"
        read -r -a replay <<<"$(stats "$TMP/$name.replay")"
        printf "%-58s %7.3f [%.3f-%.3f] %7.3f [%.3f-%.3f] %8.3f %7.3f [%.3f-%.3f] %12d %12d\n" "$(case_label "$name")" \
            "${plain[@]}" "${journaled[@]}" "$(awk -v a="${journaled[0]}" -v b="${plain[0]}" 'BEGIN { print a / b }')" \
            "${replay[@]}" "$(cat "$TMP/$name.journal_bytes")" "$(cat "$TMP/$name.stdout_bytes")"
    done
    echo "-- the same runs' CPU (user + system) seconds, median [min-max] --"
    printf "%-58s %-24s %-24s %8s\n" run plain journaled overhead
    for name in "${CASES[@]}"; do
        read -r -a plain <<<"$(stats "$TMP/$name.plain_cpu")"
        read -r -a journaled <<<"$(stats "$TMP/$name.journaled_cpu")"
        printf "%-58s %7.3f [%.3f-%.3f] %7.3f [%.3f-%.3f] %8.3f\n" "$(case_label "$name")" \
            "${plain[@]}" "${journaled[@]}" "$(awk -v a="${journaled[0]}" -v b="${plain[0]}" 'BEGIN { print a / b }')"
    done
    for name in "${CASES[@]}"; do
        parameters="case=$name"
        local variant statistic i values metric
        for variant in plain journaled replay plain_cpu journaled_cpu; do
            read -r -a values <<<"$(stats "$TMP/$name.$variant")"
            metric=seconds
            case $variant in *_cpu) metric=cpu_seconds ;; esac
            i=0
            for statistic in median min max; do
                tsv_row hpool "$(case_label "$name"), ${variant%_cpu}" "$parameters" "$RUNS" "$statistic" "$metric" "${values[i]}"
                i=$((i + 1))
            done
        done
        tsv_row hpool "$(case_label "$name"), journaled" "$parameters" 1 value journal_bytes "$(cat "$TMP/$name.journal_bytes")"
        tsv_row hpool "$(case_label "$name"), plain" "$parameters" 1 value stdout_bytes "$(cat "$TMP/$name.stdout_bytes")"
    done
    echo "outputs: every journaled run and every replay printed the plain run's bytes (cmp), $((RUNS * ${#CASES[@]} * 3)) runs"
}

# redo_command LAYOUT: the array CMD for journal_redo.
redo_command() {
    if [ "$1" = threads ]; then
        CMD=(env HPOOL_THREADS=2 "$REDO" "$JOURNAL" "$TMP/counter" "$REDO_N" "$REDO_ITEM_US")
    else
        CMD=("${MPIRUN2[@]}" -x HPOOL_THREADS=1 "$REDO" "$JOURNAL" "$TMP/counter" "$REDO_N" "$REDO_ITEM_US")
    fi
}
counter() { od -An -tu8 "$TMP/counter" 2>/dev/null | tr -d ' ' | grep . || echo 0; }

# redo_trial LAYOUT SIGNAL: one kill, then reruns to the end;
# appends "redone stopped_status reruns" to $TMP/redo.LAYOUT.SIGNAL.
redo_trial() {
    local layout=$1 signal=$2 target pid status=0 reruns=0 child
    fresh_journal
    rm -f "$TMP/counter"
    redo_command "$layout"
    # The moment: when a random share of the items, 10-80 %, has run. A
    # delay from a timed run would land after the end whenever the
    # machine's load drops.
    target=$(awk -v n="$REDO_N" -v r="$RANDOM" 'BEGIN { printf "%d", n * (0.1 + 0.7 * r / 32768) }')
    # Its own session and process group, so that kill -9 reaches mpirun and
    # its ranks alike, and nothing of this script.
    setsid "${CMD[@]}" >"$TMP/redo.out" 2>"$TMP/redo.err" &
    pid=$!
    while kill -0 "$pid" 2>/dev/null && [ "$(counter)" -lt "$target" ]; do
        sleep 0.005
    done
    if [ "$signal" = KILL ]; then
        kill -KILL -- "-$pid" 2>/dev/null || true
    elif [ "$layout" = threads ]; then
        kill -TERM "$pid" 2>/dev/null || true
    else
        # The ranks: mpirun's children (the setsid'd process is mpirun).
        for child in $(pgrep -P "$pid"); do
            kill -TERM "$child" 2>/dev/null || true
        done
    fi
    # (braces: bash's "Killed" notice of the kill -9 is not news)
    { wait "$pid"; } 2>/dev/null || status=$?
    if [ "$signal" = TERM ] && [ "$status" != 75 ] && [ "$status" != 0 ]; then
        echo "journal_redo ($layout) stopped by SIGTERM exited $status, not 75:" >&2
        cat "$TMP/redo.err" >&2
        exit 1
    fi
    # status 0 here: it completed before the kill, and nothing is redone.
    while [ "$status" != 0 ]; do
        reruns=$((reruns + 1))
        status=0
        "${CMD[@]}" >"$TMP/redo.out" 2>"$TMP/redo.err" || status=$?
        if [ "$reruns" -gt 5 ]; then
            echo "journal_redo ($layout, after $signal) did not complete in 5 reruns:" >&2
            cat "$TMP/redo.err" >&2
            exit 1
        fi
    done
    if [ "$(cat "$TMP/redo.out")" != "$REDO_SUM" ]; then
        echo "journal_redo ($layout, after $signal) printed $(cat "$TMP/redo.out"), not $REDO_SUM" >&2
        exit 1
    fi
    echo "$(($(counter) - REDO_N)) $status $reruns" >>"$TMP/redo.$layout.$signal"
}

redo_part() {
    local layout signal trial full start
    IN_FLIGHT_CHUNK=$(awk -v us="$REDO_ITEM_US" 'BEGIN { c = int(1000 / us); print c < 1 ? 1 : c }')
    # sum of x^2 for x < n: (n-1) n (2n-1) / 6
    REDO_SUM=$(awk -v n="$REDO_N" 'BEGIN { printf "%.0f", (n - 1) * n * (2 * n - 1) / 6 }')
    echo "== journal_redo: $REDO_N items of $REDO_ITEM_US us, $KILLS kills each, load $(cut -d ' ' -f 1-3 /proc/loadavg) =="
    printf "%-44s %10s %28s %14s %14s\n" way full_s "redone per kill: median [min-max]" "items/record" "1 rerun ended"
    for layout in threads ranks; do
        fresh_journal
        rm -f "$TMP/counter"
        redo_command "$layout"
        start=$(date +%s%N)
        "${CMD[@]}" >"$TMP/redo.out" 2>"$TMP/redo.err"
        full=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
        # A journal of a complete map: a 134-byte header, then per record a
        # 64-byte frame and 8 bytes a result.
        local per_record
        per_record=$(awk -v s="$(journal_bytes)" -v n="$REDO_N" 'BEGIN { printf "%.1f", n / ((s - 134 - 8 * n) / 64) }')
        for ((trial = 0; trial < KILLS; trial++)); do
            for signal in KILL TERM; do
                redo_trial "$layout" "$signal"
            done
        done
        for signal in KILL TERM; do
            local file=$TMP/redo.$layout.$signal values way
            read -r -a values <<<"$(stats "$file")"
            if [ "$layout" = threads ]; then way="1 rank x 2 threads"; else way="${MPIRUN2[*]} x 1 thread"; fi
            way+=", $([ "$signal" = KILL ] && echo "kill -9" || echo "SIGTERM (drain)")"
            printf "%-44s %10.3f %12s [%s-%s] %14s %14s\n" "$way" "$full" "${values[0]}" "${values[1]}" "${values[2]}" \
                "$per_record" "$(awk '$2 == 0 && $3 == 1 { n++ } END { print n + 0 }' "$file")/$KILLS"
            local i=0 statistic
            for statistic in median min max; do
                tsv_row journal_redo "$way" "n=$REDO_N item_us=$REDO_ITEM_US" "$KILLS" "$statistic" items_redone "${values[i]}"
                i=$((i + 1))
            done
            tsv_row journal_redo "$way" "n=$REDO_N item_us=$REDO_ITEM_US" 1 value full_run_seconds "$full"
            tsv_row journal_redo "$way" "n=$REDO_N item_us=$REDO_ITEM_US" 1 mean items_per_journal_record "$per_record"
            echo "  every kill (redone, status of the last rerun, reruns): $(awk '{ printf "%s%s", (NR > 1 ? "; " : ""), $0 }' "$file")"
            # What was running at the kill: a chunk per worker thread, and
            # hpool sizes chunks to about 1 ms (TARGET_CHUNK_NS in
            # framework/scheduler.c).
            echo "  median redone / (2 workers x chunk of $IN_FLIGHT_CHUNK items): $(awk -v r="${values[0]}" -v c="$IN_FLIGHT_CHUNK" 'BEGIN { printf "%.2f", r / (2 * c) }')"
        done
    done
}

keyed_part() {
    local trial full start pid status delay done_ranges total_ranges opened resume
    fresh_journal
    CMD=(env HPOOL_THREADS=2 "$WORDCOUNT" "${FILES[@]}")
    wall_once "$TMP/wc.reference" "${CMD[@]}" >/dev/null
    full=$(for trial in 1 2 3; do wall_once "$TMP/out" "${CMD[@]}"; echo; done | median_of)
    echo "== wordcount stopped by SIGTERM, then resumed: $KEYED_TRIALS trials, full run ${full} s (median of 3) =="
    printf "%-8s %12s %14s %14s %12s\n" trial "done ranges" "resume s" "resume/full" "redone"
    CMD=(env HPOOL_THREADS=2 "$WORDCOUNT" --journal "$JOURNAL" "${FILES[@]}")
    for ((trial = 1; trial <= KEYED_TRIALS; trial++)); do
        fresh_journal
        delay=$(awk -v f="$full" -v r="$RANDOM" 'BEGIN { printf "%.3f", f * (0.1 + 0.7 * r / 32768) }')
        "${CMD[@]}" >"$TMP/out" 2>"$TMP/err" &
        pid=$!
        sleep "$delay"
        kill -TERM "$pid" 2>/dev/null || true
        status=0
        wait "$pid" || status=$?
        if [ "$status" != 75 ]; then
            echo "  trial $trial: exited $status before the stop (delay $delay s): not counted"
            continue
        fi
        read -r done_ranges total_ranges < <(sed -n 's/.* after \([0-9]*\) of \([0-9]*\) file ranges.*/\1 \2/p' "$TMP/err")
        mkdir -p "$TMP/stopped" && rm -f "$TMP/stopped"/*
        cp "$JOURNAL" "$JOURNAL".*.keyed "$TMP/stopped/"
        resume=$(wall_once "$TMP/out" "${CMD[@]}")
        cmp -s "$TMP/wc.reference" "$TMP/out" || { echo "MISMATCH: wordcount's resume printed other counts" >&2; exit 1; }
        # The same resume again, from the same stopped journal, under strace:
        # each range a map task reads opens its file once.
        fresh_journal
        cp "$TMP/stopped"/* "$TMP/journal.d/"
        strace -f -qq -e trace=openat -o "$TMP/strace" "${CMD[@]}" >"$TMP/out" 2>/dev/null
        cmp -s "$TMP/wc.reference" "$TMP/out" || { echo "MISMATCH: wordcount's resume under strace printed other counts" >&2; exit 1; }
        opened=$(grep -c -F "\"$CORPUS/" "$TMP/strace" || true)
        printf "%-8s %5s of %-5s %14.3f %14.2f %12d\n" "$trial" "$done_ranges" "$total_ranges" "$resume" \
            "$(awk -v a="$resume" -v b="$full" 'BEGIN { print a / b }')" "$((opened - (total_ranges - done_ranges)))"
        echo "$resume $done_ranges $total_ranges $((opened - (total_ranges - done_ranges)))" >>"$TMP/keyed.runs"
        tsv_row wordcount "SIGTERM then resume, trial $trial" "files=${#FILES[@]} ranges=$total_ranges done=$done_ranges" 1 value \
            resume_seconds "$resume"
        tsv_row wordcount "SIGTERM then resume, trial $trial" "files=${#FILES[@]} ranges=$total_ranges done=$done_ranges" 1 value \
            ranges_redone "$((opened - (total_ranges - done_ranges)))"
    done
    tsv_row wordcount "full run" "files=${#FILES[@]}" 3 median seconds "$full"
}

for part in $PARTS; do
    case $part in
    cost) cost_part ;;
    redo) redo_part ;;
    keyed) keyed_part ;;
    *) echo "unknown part '$part' in PARTS (cost, redo, keyed)" >&2 && exit 2 ;;
    esac
done
tsv_report
