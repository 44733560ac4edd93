#!/usr/bin/env bash
# scaling.sh: strong scaling from 1 to 2 cores, and ranks against threads on the same cores, for square --sum and wordcount; prints a table and writes it as TSV for plot_scaling.py.
#
#   bench/drivers/scaling.sh [BUILD_DIR [TSV]]   (defaults: REPO/build, BUILD_DIR/bench-results/scaling.tsv)
#       TSV: the file this driver appends its result rows to, columns as in bench/README.md;
#       every other setting is an environment variable, as below.
#   N=2000000000 CORPUS_MB=200 RUNS=3 TABLE=FILE SCALING_CORPUS=DIR bench/drivers/scaling.sh build
#   /usr/bin/python3 bench/drivers/plot_scaling.py BUILD_DIR/bench-results/scaling-table.tsv bench/results/scaling.png
#
# Besides the TSV rows every driver appends, the table plot_scaling.py draws
# (speedups and efficiencies, one row per configuration) is written afresh
# to TABLE (default BUILD_DIR/bench-results/scaling-table.tsv). The corpus
# is made once in SCALING_CORPUS (default $TMPDIR/hpool-scaling-corpus-MB,
# /tmp without TMPDIR); its own name, so that wordcount_vs_mrmpi.sh's CORPUS
# in the same shell (run_all.sh) is never taken for it.
#
# The same fixed problem on each configuration (strong scaling):
#   1 core   1 rank  × 1 thread   taskset to one CPU
#   2 cores  1 rank  × 2 threads  taskset to two CPUs
#   2 cores  2 ranks × 1 thread   mpirun -n 2 (each rank bound to a core)
#   2 cores  2 ranks × 2 threads  mpirun -n 2 --bind-to none: 4 threads on 2 cores
# Workloads: `square --sum N` (compute-bound: a nanosecond per item, no
# traffic but one value per batch) and `examples/wordcount` over a synthetic
# corpus of CORPUS_MB MB (keyed map-reduce: hashing, memory, a shuffle
# between ranks). Each figure is the best whole-process wall time of RUNS
# interleaved runs, MPI start-up included; the mpi-start-up row (mpirun -n 2
# of a program that only initialises MPI) says how much of an MPI row that
# is. speedup = the 1-core time / this time; efficiency = speedup / cores.
# Every run of a workload must print the same bytes.
set -euo pipefail
. "$(dirname "$0")/common.sh" "$@"

N=${N:-2000000000}
CORPUS_MB=${CORPUS_MB:-200}
RUNS=${RUNS:-3}
TABLE=$(realpath -m "${TABLE:-$BUILD/bench-results/scaling-table.tsv}")
mkdir -p "$(dirname "$TABLE")"
CORPUS=${SCALING_CORPUS:-${TMPDIR:-/tmp}/hpool-scaling-corpus-$CORPUS_MB}
SQUARE=$BUILD/apps/square/square
WORDCOUNT=$BUILD/examples/wordcount
MPI_LAUNCH=$BUILD/bench/mpi_launch
need_executable "$SQUARE"
need_executable "$WORDCOUNT"
need_executable "$MPI_LAUNCH"

# Two CPUs of our affinity mask: the first alone, then both.
mapfile -t MASK < <(taskset -pc $$ | sed 's/.*: //' | tr ',' '\n' \
    | awk -F- '{ if (NF == 2) for (c = $1; c <= $2; c++) print c; else print $1 }')
if [ ${#MASK[@]} -lt 2 ]; then
    echo "scaling.sh needs at least 2 CPUs; this process may use ${#MASK[@]}" >&2
    exit 2
fi
ONE_CORE=${MASK[0]}
TWO_CORES=${MASK[0]},${MASK[1]}

# The corpus: words drawn from a Zipf-like vocabulary of 100,000 (as in
# natural text, a few words are most of it), in 8 files, made once.
if [ ! -f "$CORPUS/done" ]; then
    echo "making a $CORPUS_MB MB corpus in $CORPUS (once)..." >&2
    mkdir -p "$CORPUS"
    "$PYTHON" - "$CORPUS" "$CORPUS_MB" <<'EOF'
import random, sys
directory, megabytes = sys.argv[1], int(sys.argv[2])
generator = random.Random(20261122)
letters = "abcdefghijklmnopqrstuvwxyz"
vocabulary = ["".join(generator.choice(letters) for _ in range(generator.randint(2, 12))) for _ in range(100000)]
weights = [1.0 / (rank + 1) for rank in range(len(vocabulary))]
files = 8
for f in range(files):
    with open(f"{directory}/part{f}.txt", "w") as out:
        written = 0
        while written < megabytes * 1000000 // files:
            line = " ".join(generator.choices(vocabulary, weights, k=2000)) + "\n"
            out.write(line)
            written += len(line)
EOF
    touch "$CORPUS/done"
fi
CORPUS_FILES=("$CORPUS"/part*.txt)
CORPUS_BYTES=$(cat "${CORPUS_FILES[@]}" | wc -c)

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export HPOOL_PLACEMENT=quiet # the 2 × 2 rows oversubscribe on purpose

# run_config WORKLOAD CONFIG: one timed run of that pair, best kept in a
# variable named after both, output in $TMP/WORKLOAD.CONFIG.
run_config() {
    local workload=$1 config=$2 command=()
    case $workload in
    square) command=("$SQUARE" --sum "$N") ;;
    wordcount) command=("$WORDCOUNT" "${CORPUS_FILES[@]}") ;;
    esac
    local variable=best_${workload}_$config
    case $config in
    c1r1t1) HPOOL_THREADS=1 keep_best "$variable" "$TMP/$workload.$config" taskset -c "$ONE_CORE" "${command[@]}" ;;
    c2r1t2) HPOOL_THREADS=2 keep_best "$variable" "$TMP/$workload.$config" taskset -c "$TWO_CORES" "${command[@]}" ;;
    c2r2t1) HPOOL_THREADS=1 keep_best "$variable" "$TMP/$workload.$config" \
        taskset -c "$TWO_CORES" mpirun -n 2 "${command[@]}" ;;
    c2r2t2) HPOOL_THREADS=2 keep_best "$variable" "$TMP/$workload.$config" \
        taskset -c "$TWO_CORES" mpirun -n 2 --bind-to none "${command[@]}" ;;
    esac
}

CONFIGS=(c1r1t1 c2r1t2 c2r2t1 c2r2t2)
WORKLOADS=(square wordcount)
for workload in "${WORKLOADS[@]}"; do
    for config in "${CONFIGS[@]}"; do
        printf -v "best_${workload}_$config" '%s' ""
    done
done
launch_seconds=""
for ((run = 0; run < RUNS; run++)); do
    for workload in "${WORKLOADS[@]}"; do
        for config in "${CONFIGS[@]}"; do
            run_config "$workload" "$config"
        done
    done
    keep_best launch_seconds "$TMP/launch" taskset -c "$TWO_CORES" mpirun -n 2 "$MPI_LAUNCH"
done

status=0
for workload in "${WORKLOADS[@]}"; do
    for config in "${CONFIGS[@]}"; do
        if ! cmp -s "$TMP/$workload.c1r1t1" "$TMP/$workload.$config"; then
            echo "MISMATCH: $workload $config printed other bytes than on 1 core" >&2
            status=1
        fi
    done
done

describe() { # describe CONFIG: cores ranks threads
    echo "${1:1:1} ${1:3:1} ${1:5:1}"
}
# The table, for plot_scaling.py: one row per workload and configuration;
# startup is the mpi-start-up time for the MPI rows (0 for plain runs), and
# speedup_less_startup the speedup once it is taken out.
{
    printf 'workload\tcores\tranks\tthreads\tseconds\tstartup\tspeedup\tefficiency\tspeedup_less_startup\n'
    for workload in "${WORKLOADS[@]}"; do
        base_variable=best_${workload}_c1r1t1
        for config in "${CONFIGS[@]}"; do
            variable=best_${workload}_$config
            read -r cores ranks threads <<<"$(describe "$config")"
            startup=0
            [ "$ranks" -eq 1 ] || startup=$launch_seconds
            awk -v w="$workload" -v c="$cores" -v r="$ranks" -v t="$threads" -v s="${!variable}" \
                -v b="${!base_variable}" -v u="$startup" 'BEGIN {
                printf "%s\t%d\t%d\t%d\t%.3f\t%.3f\t%.2f\t%.2f\t%.2f\n", w, c, r, t, s, u, b / s, b / s / c,
                    (s - u > 0 ? b / (s - u) : 0) }'
        done
    done
} >"$TABLE"

echo "== strong scaling, 1 -> 2 cores: best of $RUNS whole-process runs (CPUs ${MASK[0]} and ${MASK[1]}), $(date -u +%Y-%m-%d) =="
echo "square --sum $N; wordcount over $CORPUS_BYTES bytes (${#CORPUS_FILES[@]} files, $CORPUS)"
printf '%-10s %-7s %-18s %9s %9s %8s %11s %15s\n' workload cores "ranks x threads" seconds "start-up" speedup \
    efficiency "less start-up"
tail -n +2 "$TABLE" | while IFS=$'\t' read -r workload cores ranks threads seconds startup speedup efficiency less; do
    [ "$ranks" -gt 1 ] || less=-
    [ "$ranks" -gt 1 ] || startup=-
    printf '%-10s %-7s %-18s %9s %9s %8s %11s %15s\n' "$workload" "$cores" "$ranks x $threads" "$seconds" "$startup" \
        "$speedup" "$efficiency" "$less"
done
echo "start-up: mpirun -n 2 of a program that only initialises MPI ($MPI_LAUNCH), best of $RUNS"
echo "table: $TABLE"
# Rows only for checked figures: bytes that differ between runs prove nothing.
if [ "$status" -eq 0 ]; then
    tail -n +2 "$TABLE" | while IFS=$'\t' read -r workload cores ranks threads seconds _; do
        case $workload in
        square) parameters="workload=square N=$N" ;;
        wordcount) parameters="workload=wordcount files=${#CORPUS_FILES[@]} bytes=$CORPUS_BYTES" ;;
        esac
        tsv_row hpool "cores=$cores ranks=$ranks threads=$threads" "$parameters" "$RUNS" best seconds "$seconds"
    done
    tsv_row mpi "taskset -c $TWO_CORES mpirun -n 2 mpi_launch (MPI start-up alone)" "" "$RUNS" best seconds \
        "$launch_seconds"
    tsv_report
fi
exit "$status"
