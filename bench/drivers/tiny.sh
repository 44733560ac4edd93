#!/usr/bin/env bash
# tiny.sh: cost per item of a map whose function does almost nothing, chunksize 1: hpool vs Pool and mpi4py.futures.
#
#   bench/drivers/tiny.sh [BUILD_DIR [TSV]]     (defaults: REPO/build, BUILD_DIR/bench-results/tiny.tsv)
#       TSV: the file this driver appends its result rows to, columns as in bench/README.md;
#       every other setting is an environment variable, as below.
#   TINY_ITEMS=1000000 POOL_ITEMS=1000000 MPI4PY_ITEMS=50000 RUNS=3 bench/drivers/tiny.sh
#
# Every tool times only its map call, not its start-up, and reports items/s.
# mpi4py.futures does a few thousand items/s, so it gets fewer items to run
# in 10 to 20 seconds; items/s stays comparable. The hpool rows are the best
# of RUNS runs; the Python rows run once, as they take tens of seconds.
set -euo pipefail
. "$(dirname "$0")/common.sh" "$@"

TINY_ITEMS=${TINY_ITEMS:-1000000}
POOL_ITEMS=${POOL_ITEMS:-1000000}
MPI4PY_ITEMS=${MPI4PY_ITEMS:-50000}
RUNS=${RUNS:-3}
TINY=$BUILD/bench/tiny
need_executable "$TINY"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

mpirun_for MPIRUN2 2
# mpi4py.futures' documented static pool: rank 0 runs the script, every other
# rank is a worker. Three ranks give two workers, as Pool(2) and hpool's two.
mpirun_for MPIRUN3 3

# best_rate RUNS OUT COMMAND...: the best items/s the command printed.
best_rate() {
    local runs=$1 out=$2 best="" rate i
    shift 2
    for ((i = 0; i < runs; i++)); do
        if ! "$@" >"$out" 2>"$out.err"; then
            echo "failed: $*" >&2
            cat "$out" "$out.err" >&2
            exit 1
        fi
        rate=$(field items/s "$out")
        if [ -z "$best" ] || awk -v r="$rate" -v b="$best" 'BEGIN { exit !(r > b) }'; then
            best=$rate
        fi
    done
    echo "$best"
}

plain_rate=$(HPOOL_THREADS=2 best_rate "$RUNS" "$TMP/plain" "$TINY" --items "$TINY_ITEMS" --chunksize 1)
ranks_rate=$(best_rate "$RUNS" "$TMP/ranks" "${MPIRUN2[@]}" -x HPOOL_THREADS=1 "$TINY" --items "$TINY_ITEMS" --chunksize 1)
pool_rate=$(best_rate 1 "$TMP/pool" "$PYTHON" "$PEERS_DIR/tiny_pool.py" --items "$POOL_ITEMS" --chunksize 1)
mpi4py_rate=$(best_rate 1 "$TMP/mpi4py" "${MPIRUN3[@]}" "$PYTHON" -m mpi4py.futures "$PEERS_DIR/tiny_mpi4py.py" --items "$MPI4PY_ITEMS" --chunksize 1)

row() { # tool config items rate runs
    awk -v tool="$1" -v config="$2" -v items="$3" -v rate="$4" -v pool="$pool_rate" 'BEGIN {
        printf "%-16s %-56s %9d %12.4g %10.1f\n", tool, config, items, rate, rate / pool }'
    tsv_row "$1" "$2" "items=$3 chunksize=1" "$5" best items_per_s "$4"
}
echo "== tiny map, chunksize 1, 2 workers, $CORES cores: items/s of the map call alone =="
printf "%-16s %-56s %9s %12s %10s\n" tool config items items/s "x Pool(2)"
row hpool "HPOOL_THREADS=2 tiny (plain run, 1 rank)" "$TINY_ITEMS" "$plain_rate" "$RUNS"
row hpool "${MPIRUN2[*]} tiny, HPOOL_THREADS=1" "$TINY_ITEMS" "$ranks_rate" "$RUNS"
row python-pool "Pool(2).map(f, range, chunksize=1)" "$POOL_ITEMS" "$pool_rate" 1
row mpi4py.futures "${MPIRUN3[*]} -m mpi4py.futures (2 workers)" "$MPI4PY_ITEMS" "$mpi4py_rate" 1
tsv_report
