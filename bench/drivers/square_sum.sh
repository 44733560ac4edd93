#!/usr/bin/env bash
# square_sum.sh: `square --sum N` (hpool map_reduce) against a hand-written OpenMP reduction, same N, same cores.
#
#   bench/drivers/square_sum.sh [BUILD_DIR [TSV]]     (defaults: REPO/build, BUILD_DIR/bench-results/square_sum.tsv)
#       TSV: the file this driver appends its result rows to, columns as in bench/README.md;
#       every other setting is an environment variable, as below.
#   N=1000000000 RUNS=3 SQUARE=path/to/square bench/drivers/square_sum.sh
#
# Each figure is the best whole-process wall time of RUNS runs, so the hpool
# side pays for everything it really costs: pool start-up, and under mpirun
# the launch of the ranks and MPI's start-up too (the mpi-start-up row, an
# MPI program that only initialises and finalises, shows how much of that is
# mpirun's and MPI's own). ratio = hpool seconds / omp seconds: 1.00 is parity,
# above 1 hpool is slower. omp_sum_aligned is the same loop placed on a
# 32-byte boundary (see CMakeLists.txt): code placement alone can halve the
# speed of this tiny loop on some CPUs, so both ratios are printed.
set -euo pipefail
. "$(dirname "$0")/common.sh" "$@"

N=${N:-1000000000}
RUNS=${RUNS:-3}
SQUARE=${SQUARE:-$BUILD/apps/square/square}
OMP_SUM=$BUILD/bench/omp_sum
OMP_SUM_ALIGNED=$BUILD/bench/omp_sum_aligned
need_executable "$SQUARE"
need_executable "$OMP_SUM"
need_executable "$OMP_SUM_ALIGNED"
MPI_LAUNCH=$BUILD/bench/mpi_launch
need_executable "$MPI_LAUNCH"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

mpirun_for MPIRUN2 2

# Interleaved rather than one tool after the other, so that a slow spell of
# the machine (another job, frequency scaling) hits both sides alike; each
# side keeps its best run.
omp_seconds="" aligned_seconds="" threads_seconds="" ranks_seconds="" launch_seconds=""
for ((run = 0; run < RUNS; run++)); do
    OMP_NUM_THREADS=2 keep_best omp_seconds "$TMP/omp" "$OMP_SUM" "$N"
    OMP_NUM_THREADS=2 keep_best aligned_seconds "$TMP/aligned" "$OMP_SUM_ALIGNED" "$N"
    keep_best threads_seconds "$TMP/threads" "$SQUARE" --sum --threads 2 "$N"
    keep_best ranks_seconds "$TMP/ranks" "${MPIRUN2[@]}" "$SQUARE" --sum --threads 1 "$N"
    keep_best launch_seconds "$TMP/launch" "${MPIRUN2[@]}" "$MPI_LAUNCH"
done
expected=$(field sum "$TMP/omp")

# The app's output format is its own business: only require that the exact
# decimal sum the OpenMP loop found appears in it as a word.
status=0
for run in aligned threads ranks; do
    if ! grep -qw -- "$expected" "$TMP/$run"; then
        echo "MISMATCH: $run run did not print the sum $expected; it printed:" >&2
        cat "$TMP/$run" >&2
        status=1
    fi
done

row() { # tool config seconds [hpool: yes]
    awk -v tool="$1" -v config="$2" -v s="$3" -v hpool="${4:-}" -v n="$N" \
        -v omp="$omp_seconds" -v aligned="$aligned_seconds" 'BEGIN {
        ratio = hpool == "" ? "-" : sprintf("%.2f", s / omp)
        ratio_aligned = hpool == "" ? "-" : sprintf("%.2f", s / aligned)
        printf "%-16s %-40s %9.3f %12.4g %10s %14s\n", tool, config, s, n / s, ratio, ratio_aligned }'
}
echo "== square --sum $N: hpool vs OpenMP, best of $RUNS whole-process runs, $CORES cores =="
printf "%-16s %-40s %9s %12s %10s %14s\n" tool config seconds items/s hpool/omp hpool/aligned
row omp_sum "OMP_NUM_THREADS=2" "$omp_seconds"
row omp_sum_aligned "OMP_NUM_THREADS=2" "$aligned_seconds"
row hpool "square --sum --threads 2 (plain run)" "$threads_seconds" yes
row hpool "${MPIRUN2[*]} square --sum --threads 1" "$ranks_seconds" yes
printf "%-16s %-40s %9.3f %12s %10s %14s\n" mpi-start-up "${MPIRUN2[*]} mpi_launch" "$launch_seconds" - - -
# The OpenMP loop launches no ranks: take mpirun's and MPI's own start-up
# (the row above) out of hpool's mpirun time to compare the work itself.
row hpool "mpirun -n 2, less MPI start-up" "$(awk -v a="$ranks_seconds" -v b="$launch_seconds" 'BEGIN { print a - b }')" yes
# Rows only for checked figures: a fast wrong sum proves nothing.
if [ "$status" -eq 0 ]; then
    echo "sums: all equal ($expected)"
    parameters="N=$N"
    tsv_row omp_sum "OMP_NUM_THREADS=2" "$parameters" "$RUNS" best seconds "$omp_seconds"
    tsv_row omp_sum_aligned "OMP_NUM_THREADS=2" "$parameters" "$RUNS" best seconds "$aligned_seconds"
    tsv_row hpool "square --sum --threads 2 (plain run)" "$parameters" "$RUNS" best seconds "$threads_seconds"
    tsv_row hpool "${MPIRUN2[*]} square --sum --threads 1" "$parameters" "$RUNS" best seconds "$ranks_seconds"
    tsv_row mpi-start-up "${MPIRUN2[*]} mpi_launch" "" "$RUNS" best seconds "$launch_seconds"
    tsv_report
fi
exit "$status"
