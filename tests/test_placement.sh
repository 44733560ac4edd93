#!/usr/bin/env bash
# test_placement.sh: the oversubscription warning and the placement report (HPOOL_PLACEMENT, HPOOL_BIND, OpenMP places), end to end through the square app.
#
#   tests/test_placement.sh build/apps/square/square
#
# Runs square as a plain process and under mpirun with 2 ranks, and checks
# what the root prints on stderr; every run must still print the right sum.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 PATH_TO_SQUARE" >&2
    exit 2
fi
SQUARE=$1
# Open MPI's plugins leak at exit (see cmake/HpoolTesting.cmake).
export ASAN_OPTIONS=detect_leaks=0
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# The launcher CMake found (cmake/HpoolTesting.cmake), with its own flags.
MPIEXEC=${HPOOL_TEST_MPIEXEC:-mpirun}
read -r -a MPIEXEC_FLAGS <<<"${HPOOL_TEST_MPIEXEC_FLAGS:-}"
# Open MPI spells "no binding" --bind-to none and oversubscribes only when
# told; MPICH's hydra spells it -bind-to none and oversubscribes anyway.
if [ "${HPOOL_TEST_MPI:-openmpi}" = mpich ]; then
    NO_BINDING=(-bind-to none)
    OVERSUBSCRIBE=()
else
    NO_BINDING=(--bind-to none)
    OVERSUBSCRIBE=(--oversubscribe)
fi
unset HPOOL_PLACEMENT HPOOL_THREADS HPOOL_BIND OMP_NUM_THREADS OMP_PROC_BIND OMP_PLACES SLURM_CPUS_PER_TASK
CPUS=$(nproc) # the CPUs in our affinity mask, which the ranks inherit
HOST=$(hostname)
N=100000
EXPECTED=$(python3 -c "n = $N; print(n * (n + 1) * (2 * n + 1) // 6 % 2**64)")
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
OUT=$SCRATCH/out
ERR=$SCRATCH/err
# shellcheck source=tests/check.sh
. "$(dirname "$0")/check.sh"

# run [ENV=VALUE...]: square --sum N, checked.
run() {
    local status=0
    env "$@" "$SQUARE" --sum "$N" >"$OUT" 2>"$ERR" </dev/null || status=$?
    [ "$status" -eq 0 ] || fail "exit status $status"
    [ "$(cat "$OUT")" = "$EXPECTED" ] || fail "printed $(cat "$OUT"), expected $EXPECTED"
}

# run_mpi [ENV=VALUE...] [LAUNCHER ARGS...]: the same under the launcher.
run_mpi() {
    local status=0
    local -a environment=()
    while [ $# -gt 0 ] && [[ $1 == *=* ]]; do
        environment+=("$1")
        shift
    done
    env "${environment[@]}" "$MPIEXEC" "${MPIEXEC_FLAGS[@]}" "$@" "$SQUARE" --sum "$N" >"$OUT" 2>"$ERR" </dev/null || status=$?
    [ "$status" -eq 0 ] || fail "exit status $status"
    [ "$(cat "$OUT")" = "$EXPECTED" ] || fail "printed $(cat "$OUT"), expected $EXPECTED"
}

lines() { # lines PATTERN: how many stderr lines match
    grep -c -- "$1" "$ERR" || true
}

expect_lines() { # expect_lines COUNT PATTERN
    local count
    count=$(lines "$2")
    [ "$count" -eq "$1" ] || fail "expected $1 stderr line(s) matching '$2', got $count"
}

CHECK="as many threads as CPUs: no warning"
run HPOOL_THREADS="$CPUS"
[ ! -s "$ERR" ] || fail "stderr is not empty"
pass

CHECK="threads chosen from the mask: no warning"
run
[ ! -s "$ERR" ] || fail "stderr is not empty"
pass

CHECK="one thread more than CPUs: one warning naming threads, ranks, CPUs and host"
run HPOOL_THREADS=$((CPUS + 1))
expect_lines 1 '^hpool: warning:'
expect_lines 1 "^hpool: warning: $((CPUS + 1)) worker threads in 1 rank share $CPUS CPUs\? on host $HOST;"
pass

CHECK="HPOOL_PLACEMENT=quiet silences the warning"
run HPOOL_THREADS=$((CPUS + 1)) HPOOL_PLACEMENT=quiet
[ ! -s "$ERR" ] || fail "stderr is not empty"
pass

CHECK="mpirun -n 2, threads chosen per rank: no warning"
run_mpi -n 2
expect_lines 0 'hpool:'
pass

CHECK="mpirun -n 2 --bind-to none, threads chosen per rank: no warning"
run_mpi -n 2 "${NO_BINDING[@]}"
expect_lines 0 'hpool:'
pass

CHECK="mpirun -n 2 × all CPUs each: the root alone warns, once, for both ranks"
run_mpi HPOOL_THREADS="$CPUS" -n 2 "${OVERSUBSCRIBE[@]}" "${NO_BINDING[@]}"
expect_lines 1 'hpool: warning:'
expect_lines 1 "^hpool: warning: $((2 * CPUS)) worker threads in 2 ranks share $CPUS CPUs\? on host $HOST;"
pass

CHECK="HPOOL_PLACEMENT=1 prints rank -> host -> cpus"
run HPOOL_PLACEMENT=1 HPOOL_THREADS=1
expect_lines 1 "^hpool: placement: rank 0 -> host $HOST -> cpus\? [0-9][-0-9,]*: 1 thread, not pinned$"
pass

CHECK="HPOOL_BIND=1 pins each thread to a CPU of its own"
threads=$((CPUS < 4 ? CPUS : 4))
run HPOOL_PLACEMENT=1 HPOOL_BIND=1 HPOOL_THREADS=$threads
expect_lines 1 "(pinned by hpool)$"
pinned=$(grep -o 'thread [0-9]* -> cpu [0-9]*' "$ERR" | awk '{ print $5 }')
[ "$(echo "$pinned" | wc -l)" -eq "$threads" ] || fail "expected $threads pinned threads"
[ "$(echo "$pinned" | sort -u | wc -l)" -eq "$threads" ] || fail "two threads share a CPU: $pinned"
pass

CHECK="OMP_PROC_BIND=false wins over HPOOL_BIND=1"
run HPOOL_PLACEMENT=1 HPOOL_BIND=1 OMP_PROC_BIND=false HPOOL_THREADS=2
expect_lines 1 ": 2 threads, not pinned$"
pass

CHECK="OMP_PROC_BIND=close OMP_PLACES=threads: OpenMP's places are kept"
run HPOOL_PLACEMENT=1 HPOOL_BIND=1 OMP_PROC_BIND=close OMP_PLACES=threads HPOOL_THREADS=2
expect_lines 1 "^hpool: placement: rank 0 -> host $HOST -> cpus\? [-0-9,]*: thread 0 -> cpu [0-9]*, thread 1 -> cpu [0-9]* (pinned by OpenMP places)$"
pass

CHECK="mpirun -n 2 --bind-to none with HPOOL_BIND=1: a line per rank, ranks on different CPUs"
run_mpi HPOOL_PLACEMENT=1 HPOOL_BIND=1 -n 2 "${NO_BINDING[@]}"
expect_lines 2 '^hpool: placement: rank [01] -> '
expect_lines 1 '^hpool: placement: rank 0 -> '
expect_lines 2 '(pinned by hpool)$'
if [ "$CPUS" -ge 2 ]; then
    first=$(grep 'rank 0 ->' "$ERR" | grep -o 'thread 0 -> cpu [0-9]*')
    second=$(grep 'rank 1 ->' "$ERR" | grep -o 'thread 0 -> cpu [0-9]*')
    [ "$first" != "$second" ] || fail "both ranks pinned their first thread to the same CPU"
fi
pass

echo "all placement checks passed"
