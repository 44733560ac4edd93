#!/usr/bin/env bash
# balance.sh: load balance on uneven item costs: how close hpool and its peers come to the lower bound max(work / workers, longest item).
#
#   bench/drivers/balance.sh [BUILD_DIR [TSV]]   (defaults: REPO/build, BUILD_DIR/bench-results/balance.tsv)
#       TSV: the file this driver appends its result rows to, columns as in bench/README.md;
#       every other setting is an environment variable, as below.
#   DISTS=u1ms KINDS=sleep THREADS_LIST=8 RANKS_LIST="1 2" BALANCE_SECONDS=0.3 RUNS=1 bench/drivers/balance.sh build
#
# A row is a cost distribution (balance_costs.h), an item kind (sleep: the
# item waits, so any number of workers fit on the cores; spin: it computes,
# so only rows with ranks × threads <= cores) and hpool's ranks × threads
# per rank. Its items are sized so that the bound is about BALANCE_SECONDS.
# Every item measures its own duration (wall time asleep, thread CPU time
# spinning) and each tool reports their sum and maximum, so
#   efficiency = max(work_sum / workers, longest) / seconds of the call alone
# where workers is min(workers, cores) for spin items: a schedule cannot
# beat it, and a timer's slack or a preemption cannot flatter anyone.
# Beside hpool, at the same total workers W = ranks × threads: omp-dynamic
# (balance_omp: one process, W threads, schedule(dynamic, 1)), pool
# (Pool(W).imap_unordered, chunksize 1), threads (ThreadPoolExecutor(W).map,
# sleep items only) and mpi4py (MPIPoolExecutor().map, chunksize 1, under
# mpirun -n W+1, for W <= MPI4PY_MAX_WORKERS). A peer is measured once per
# distribution, kind and W, and shown on every row with that W. The Python
# peers do at most PYTHON_MAX_ITEMS (pool, threads) or MPI4PY_MAX_ITEMS
# items, as they manage only thousands of items a second: those cells are
# marked '*'. The hpool cell is the median of RUNS runs (min-max after it);
# a peer's, the median of PEER_RUNS; runs of a row are interleaved.
#
# Knobs: BALANCE_SECONDS (1), MEAN_US (1000: M of exp, tail, giant_first,
# giant_last, rising), RUNS (3), PEER_RUNS (RUNS), DISTS (all eight),
# KINDS (sleep spin), THREADS_LIST (2 8 16 64), SPIN_THREADS_LIST
# (1 and THREADS_LIST), RANKS_LIST (1 2 4), TOOLS (hpool omp pool threads
# mpi4py), MPI4PY_MAX_WORKERS (16), PYTHON_MAX_ITEMS (100000),
# MPI4PY_MAX_ITEMS (10000), HPOOL_CALL (map or imap_unordered), CHUNKSIZE
# (0: hpool's automatic chunking), TABLE (BUILD_DIR/bench-results/balance-table.tsv).
#
# Two files: the TSV rows every driver appends (one figure a row), and TABLE,
# written afresh: a line per line of the printed table, a column per cell
# (with the run ranges and inflations the printed table leaves out).
set -euo pipefail
. "$(dirname "$0")/common.sh" "$@"

BALANCE_SECONDS=${BALANCE_SECONDS:-1}
MEAN_US=${MEAN_US:-1000}
RUNS=${RUNS:-3}
PEER_RUNS=${PEER_RUNS:-$RUNS}
DISTS=${DISTS:-u1us u1ms u100ms exp tail giant_first giant_last rising}
KINDS=${KINDS:-sleep spin}
THREADS_LIST=${THREADS_LIST:-2 8 16 64}
SPIN_THREADS_LIST=${SPIN_THREADS_LIST:-1 $THREADS_LIST}
RANKS_LIST=${RANKS_LIST:-1 2 4}
TOOLS=${TOOLS:-hpool omp pool threads mpi4py}
MPI4PY_MAX_WORKERS=${MPI4PY_MAX_WORKERS:-16}
PYTHON_MAX_ITEMS=${PYTHON_MAX_ITEMS:-100000}
MPI4PY_MAX_ITEMS=${MPI4PY_MAX_ITEMS:-10000}
HPOOL_CALL=${HPOOL_CALL:-map}
CHUNKSIZE=${CHUNKSIZE:-0}
TABLE=$(realpath -m "${TABLE:-$BUILD/bench-results/balance-table.tsv}")
mkdir -p "$(dirname "$TABLE")"

BALANCE=$BUILD/bench/balance
BALANCE_OMP=$BUILD/bench/balance_omp
POOL_SCRIPT=$PEERS_DIR/balance_pool.py
need_executable "$BALANCE"
need_executable "$BALANCE_OMP"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# Rows with more threads than cores oversubscribe on purpose; the warning
# would only repeat that on every run.
export HPOOL_PLACEMENT=quiet

wants() { [[ " $TOOLS " == *" $1 "* ]]; }

# mean_us DIST: the M each distribution is run with (the uniform ones have their own).
mean_us() {
    case $1 in
    u1us) echo 1 ;;
    u1ms) echo 1000 ;;
    u100ms) echo 100000 ;;
    *) echo "$MEAN_US" ;;
    esac
}

# items_for DIST WORKERS PARALLEL: n so that the bound, total work over the
# PARALLEL workers that can run at once, is about BALANCE_SECONDS; at least
# 4 items per worker. A tail item costs 100 M once in 100 (a mean of 1.99 M);
# a giant adds n M / W to (n - 1) M.
items_for() {
    awk -v dist="$1" -v workers="$2" -v parallel="$3" -v seconds="$BALANCE_SECONDS" -v mean="$(mean_us "$1")" 'BEGIN {
        average = mean * 1e-6
        if (dist == "tail") average *= 1.99
        if (dist ~ /^giant/) average *= 1 + 1 / workers
        n = int(parallel * seconds / average + 0.5)
        if (n < 4 * workers) n = 4 * workers
        print n }'
}

smaller() { if [ "$1" -lt "$2" ]; then echo "$1"; else echo "$2"; fi; }

# run_once OUT COMMAND...: runs COMMAND with its stdout in OUT; a failure
# stops the script, so that a broken run never shows up as a figure.
run_once() {
    local out=$1
    shift
    if ! "$@" >"$out" 2>"$out.err"; then
        echo "failed: $*" >&2
        cat "$out" "$out.err" >&2
        exit 1
    fi
    if [ -z "$(field efficiency "$out")" ]; then
        echo "no efficiency in the output of: $*" >&2
        cat "$out" "$out.err" >&2
        exit 1
    fi
}

# record RUNS_FILE OUT: appends "efficiency seconds bound items inflation"
# of one run, inflation being the measured work over the costs asked for.
record() {
    echo "$(field efficiency "$2") $(field seconds "$2") $(field bound "$2") $(field items "$2")" \
        "$(awk -v w="$(field work_sum "$2")" -v n="$(field nominal_sum "$2")" 'BEGIN { printf "%.4f", w / n }')" >>"$1"
}

# summary RUNS_FILE COLUMN: "median min max" of that column of the runs.
summary() {
    awk -v c="$2" '{ print $c }' "$1" | sort -g | awk '{ v[NR] = $1 } END {
        median = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.4f %.4f %.4f\n", median, v[1], v[NR] }'
}

# The items' costs must be the same in C and in Python, or the peers would
# not run the same work: compare the bits of every cost, W = 7 for the giants.
for dist in $DISTS; do
    "$BALANCE" --list-costs --dist "$dist" --items 10000 --mean-us "$(mean_us "$dist")" --workers 7 >"$TMP/costs.c"
    "$PYTHON" "$POOL_SCRIPT" --list-costs --dist "$dist" --items 10000 --mean-us "$(mean_us "$dist")" \
        --workers 7 >"$TMP/costs.py"
    if ! cmp -s "$TMP/costs.c" "$TMP/costs.py"; then
        echo "balance and balance_pool.py give different costs for $dist:" >&2
        diff "$TMP/costs.c" "$TMP/costs.py" | head -n 5 >&2
        exit 1
    fi
done

# run_hpool RUNS_FILE DIST KIND RANKS THREADS ITEMS: one run of balance.
# One rank runs plain, without mpirun, as an MPI-less one-rank pool.
run_hpool() {
    local runs=$1 dist=$2 kind=$3 ranks=$4 threads=$5 items=$6 mpi_launcher=()
    if [ "$ranks" -gt 1 ]; then
        mpirun_for mpi_launcher "$ranks"
        mpi_launcher+=(-x HPOOL_THREADS -x HPOOL_PLACEMENT)
    fi
    HPOOL_THREADS=$threads run_once "$TMP/out" "${mpi_launcher[@]}" "$BALANCE" --dist "$dist" --kind "$kind" \
        --items "$items" --mean-us "$(mean_us "$dist")" --cores "$CORES" --call "$HPOOL_CALL" --chunksize "$CHUNKSIZE"
    record "$runs" "$TMP/out"
}

# run_peer TOOL RUNS_FILE DIST KIND WORKERS ITEMS: one run of a peer.
run_peer() {
    local tool=$1 runs=$2 dist=$3 kind=$4 workers=$5 items=$6 mpi_launcher=()
    local common=(--dist "$dist" --kind "$kind" --items "$items" --mean-us "$(mean_us "$dist")" --cores "$CORES")
    case $tool in
    omp) OMP_NUM_THREADS=$workers run_once "$TMP/out" "$BALANCE_OMP" "${common[@]}" ;;
    pool | threads) run_once "$TMP/out" "$PYTHON" "$POOL_SCRIPT" --tool "$tool" --workers "$workers" "${common[@]}" ;;
    mpi4py)
        # mpi4py.futures' static pool: rank 0 runs the script, the W others are workers.
        mpirun_for mpi_launcher $((workers + 1))
        run_once "$TMP/out" "${mpi_launcher[@]}" "$PYTHON" -m mpi4py.futures "$POOL_SCRIPT" --tool mpi4py "${common[@]}"
        ;;
    esac
    record "$runs" "$TMP/out"
}

# peer_applies TOOL KIND WORKERS: whether that peer has a cell on such a row.
peer_applies() {
    wants "$1" || return 1
    case $1 in
    threads) [ "$2" = sleep ] ;; # spinning Python threads only take turns on the GIL
    mpi4py) [ "$3" -le "$MPI4PY_MAX_WORKERS" ] ;;
    *) true ;;
    esac
}

# peer_items TOOL ITEMS: the items that peer runs on a row of ITEMS.
peer_items() {
    case $1 in
    pool | threads) smaller "$2" "$PYTHON_MAX_ITEMS" ;;
    mpi4py) smaller "$2" "$MPI4PY_MAX_ITEMS" ;;
    *) echo "$2" ;;
    esac
}

PEERS=(omp pool threads mpi4py)
# peer_variant TOOL WORKERS: how that peer ran, for its TSV rows.
peer_variant() {
    case $1 in
    omp) echo "balance_omp, OMP_NUM_THREADS=$2, schedule(dynamic, 1)" ;;
    pool) echo "Pool($2).imap_unordered, chunksize 1" ;;
    threads) echo "ThreadPoolExecutor($2).map" ;;
    mpi4py) echo "mpirun -n $(($2 + 1)) -m mpi4py.futures, MPIPoolExecutor().map, chunksize 1" ;;
    esac
}
# One layout for the header and the rows.
table_line() { printf '%-11s %-5s %-6s %4s %8s  %-21s %8s %7s  %-7s %-7s %-7s %-7s\n' "$@"; }
echo "== load balance: efficiency = max(work / workers, longest item) / seconds of the map call; $CORES cores, $(date -u +%Y-%m-%d) =="
echo "BALANCE_SECONDS=$BALANCE_SECONDS MEAN_US=$MEAN_US RUNS=$RUNS PEER_RUNS=$PEER_RUNS hpool: --call $HPOOL_CALL --chunksize $CHUNKSIZE"
echo "costs: balance and balance_pool.py agree bit for bit ($DISTS; 10000 items each)"
echo "load before: $(cut -d ' ' -f 1-3 /proc/loadavg)"
table_line dist kind PxT W items "hpool (min-max)" "hpool s" bound omp pool threads mpi4py
# *_inflation: the measured work over the costs asked for (median), which
# shows how much wake-up latency or clock reads raised that tool's bound.
columns=(dist kind ranks threads workers items hpool_efficiency hpool_efficiency_min hpool_efficiency_max
    hpool_seconds bound hpool_inflation omp_efficiency omp_inflation pool_efficiency pool_items pool_inflation
    threads_efficiency threads_items threads_inflation mpi4py_efficiency mpi4py_items mpi4py_inflation)
(IFS=$'\t' && echo "${columns[*]}") >"$TABLE"
capped=0

for kind in $KINDS; do
    threads_list=$THREADS_LIST
    [ "$kind" = spin ] && threads_list=$SPIN_THREADS_LIST
    for dist in $DISTS; do
        # Nothing sleeps for 1 µs: the timer's slack alone is tens of µs.
        [ "$dist" = u1us ] && [ "$kind" = sleep ] && continue
        for ranks in $RANKS_LIST; do
            for threads in $threads_list; do
                workers=$((ranks * threads))
                # Spinning workers beyond the cores only take turns, and one
                # worker has nothing to balance.
                if [ "$kind" = spin ] && { [ "$workers" -gt "$CORES" ] || [ "$workers" -lt 2 ]; }; then
                    continue
                fi
                parallel=$workers
                [ "$kind" = spin ] && parallel=$(smaller "$workers" "$CORES")
                items=$(items_for "$dist" "$workers" "$parallel")
                row=$dist.$kind.$ranks.$threads
                for ((run = 0; run < RUNS || run < PEER_RUNS; run++)); do
                    if wants hpool && [ "$run" -lt "$RUNS" ]; then
                        run_hpool "$TMP/hpool.$row.runs" "$dist" "$kind" "$ranks" "$threads" "$items"
                    fi
                    for tool in "${PEERS[@]}"; do
                        peer_applies "$tool" "$kind" "$workers" || continue
                        peer_runs=$TMP/$tool.$dist.$kind.$workers.runs
                        # Measured once per W: a second row with this W (1 x 16 and 2 x 8) reuses it.
                        if [ "$run" -lt "$PEER_RUNS" ] && [ ! -f "$peer_runs.done" ]; then
                            run_peer "$tool" "$peer_runs" "$dist" "$kind" "$workers" "$(peer_items "$tool" "$items")"
                        fi
                    done
                done
                for tool in "${PEERS[@]}"; do
                    [ -f "$TMP/$tool.$dist.$kind.$workers.runs" ] && touch "$TMP/$tool.$dist.$kind.$workers.runs.done"
                done

                hpool_cell=- hpool_seconds=- bound=-
                tsv_fields=("$dist" "$kind" "$ranks" "$threads" "$workers" "$items")
                if wants hpool; then
                    read -r median low high <<<"$(summary "$TMP/hpool.$row.runs" 1)"
                    read -r hpool_seconds _ _ <<<"$(summary "$TMP/hpool.$row.runs" 2)"
                    read -r bound _ _ <<<"$(summary "$TMP/hpool.$row.runs" 3)"
                    read -r inflation _ _ <<<"$(summary "$TMP/hpool.$row.runs" 5)"
                    hpool_cell=$(printf '%.3f (%.3f-%.3f)' "$median" "$low" "$high")
                    parameters="dist=$dist kind=$kind workers=$workers items=$items mean_us=$(mean_us "$dist")"
                    parameters+=" call=$HPOOL_CALL chunksize=$CHUNKSIZE"
                    for figure in "median efficiency $median" "min efficiency $low" "max efficiency $high" \
                        "median seconds $hpool_seconds" "median bound_seconds $bound" "median inflation $inflation"; do
                        read -r statistic metric value <<<"$figure"
                        tsv_row hpool "${ranks}x$threads" "$parameters" "$RUNS" "$statistic" "$metric" "$value"
                    done
                    tsv_fields+=("$median" "$low" "$high" "$hpool_seconds" "$bound" "$inflation")
                    hpool_seconds=$(printf '%.3f' "$hpool_seconds")
                    bound=$(printf '%.3f' "$bound")
                else
                    tsv_fields+=(- - - - - -)
                fi
                cells=()
                for tool in "${PEERS[@]}"; do
                    peer_runs=$TMP/$tool.$dist.$kind.$workers.runs
                    median=- ran=- inflation=- cell=-
                    if peer_applies "$tool" "$kind" "$workers" && [ -f "$peer_runs" ]; then
                        read -r median _ _ <<<"$(summary "$peer_runs" 1)"
                        read -r inflation _ _ <<<"$(summary "$peer_runs" 5)"
                        ran=$(awk 'NR == 1 { print $4 }' "$peer_runs")
                        cell=$(printf '%.3f' "$median")
                        # Once per W, as it was measured: rows that share W share the cell.
                        if [ ! -f "$peer_runs.in-tsv" ]; then
                            parameters="dist=$dist kind=$kind workers=$workers items=$ran mean_us=$(mean_us "$dist")"
                            peer_count=$(wc -l <"$peer_runs")
                            tsv_row "$tool" "$(peer_variant "$tool" "$workers")" "$parameters" "$peer_count" median \
                                efficiency "$median"
                            tsv_row "$tool" "$(peer_variant "$tool" "$workers")" "$parameters" "$peer_count" median \
                                inflation "$inflation"
                            touch "$peer_runs.in-tsv"
                        fi
                        if [ "$ran" -lt "$items" ]; then
                            cell+="*"
                            capped=1
                        fi
                    fi
                    cells+=("$cell")
                    # omp always runs every item; the Python peers may run fewer.
                    tsv_fields+=("$median")
                    [ "$tool" = omp ] || tsv_fields+=("$ran")
                    tsv_fields+=("$inflation")
                done
                table_line "$dist" "$kind" "${ranks}x$threads" "$workers" "$items" "$hpool_cell" \
                    "$hpool_seconds" "$bound" "${cells[@]}"
                (IFS=$'\t' && echo "${tsv_fields[*]}") >>"$TABLE"
            done
        done
    done
done
if [ "$capped" = 1 ]; then
    echo "*: the Python peer ran fewer items (at most PYTHON_MAX_ITEMS=$PYTHON_MAX_ITEMS, MPI4PY_MAX_ITEMS=$MPI4PY_MAX_ITEMS)"
fi
echo "omp: balance_omp, 1 process x W threads; pool, mpi4py: W processes; threads: 1 process x W threads; '-': not run"
echo "load after: $(cut -d ' ' -f 1-3 /proc/loadavg)"
echo "table: $TABLE"
tsv_report
