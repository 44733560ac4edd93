#!/usr/bin/env bash
# test_slurm.sh: a real one-node Slurm (munged, slurmctld, slurmd) in a scratch directory runs the jobs/ scripts; their results files are checked.
#
#   tests/test_slurm.sh BUILD_DIR SOURCE_DIR
#
# Uses BUILD_DIR/apps/square/square, BUILD_DIR/apps/metatags/metatags when it
# is built (its job is left out otherwise), and the library ($HPOOL_LIBRARY,
# default BUILD_DIR/framework/libhpool.a) to build the README's cube example.
#
# Installs Debian's slurm-wlm and munge if they are missing (as root, with
# apt-get). The daemons get a minimal configuration of their own: private
# ports, state, spool, logs and munge socket under the scratch directory,
# proctrack/linuxproc and task/none (no cgroups needed), so nothing of a
# system Slurm is touched. Jobs are submitted with sbatch exactly as a user
# would, and launch with srun --mpi=pmix and, in one job, with mpirun.
# Exits 77 (skipped) only when the daemons cannot start here, showing their
# logs; stops them by their pid files and removes everything on exit.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
    exit 2
fi
BUILD=$(cd "$1" && pwd)
SOURCE=$(cd "$2" && pwd)
# shellcheck source=tests/cluster_lib.sh
. "$SOURCE/tests/cluster_lib.sh"
SQUARE=$BUILD/apps/square/square
METATAGS=${METATAGS:-$BUILD/apps/metatags/metatags}
[ -x "$SQUARE" ] || { echo "no $SQUARE: build first" >&2; exit 2; }

[ "$(id -u)" -eq 0 ] || skip "slurmd must run as root to start jobs, and this test runs as $(id -un)"
need_packages slurm-wlm munge

SCRATCH=$(mktemp -d /tmp/hpool-slurm.XXXXXX)
export SLURM_CONF=$SCRATCH/slurm.conf
# shellcheck source=tests/check.sh
. "$SOURCE/tests/check.sh"

trap clean_up EXIT
trap 'exit 130' INT TERM

start_munged

# ---- slurmctld and slurmd -------------------------------------------------

NODE=$(hostname -s)
# At least two CPUs, so that the two-task jobs fit even on a one-CPU machine.
CPUS=$(nproc)
[ "$CPUS" -ge 2 ] || CPUS=2
mapfile -t PORTS < <(free_ports 2)
{
    slurm_conf_common "${PORTS[0]}" "${PORTS[1]}" "$NODE"
    echo "SlurmctldHost=$NODE(127.0.0.1)"
    echo "NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN"
    echo "PartitionName=test Nodes=$NODE Default=YES MaxTime=INFINITE State=UP"
} >"$SLURM_CONF"

node_idle() {
    sinfo -h -n "$NODE" -o %t | grep -qx 'idle'
}
if ! slurmctld || ! slurmd || ! wait_until 30 node_idle; then
    sinfo 2>&1 || true
    show_logs
    skip "slurmctld and slurmd did not bring node $NODE up in this sandbox (their logs are above)"
fi
echo "ok   slurmctld and slurmd run; node $NODE is idle with $CPUS CPUs"

# ---- Jobs -----------------------------------------------------------------

# The jobs inherit this environment (sbatch's --export=ALL). Running as root
# is this test's business, not the job scripts'.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export SQUARE
unset HPOOL_THREADS OMP_NUM_THREADS HPOOL_PLACEMENT HPOOL_BIND SLURM_CPUS_PER_TASK
cd "$SCRATCH/submit"

N=20000000
EXPECTED_SUM=$(square_sum "$N")
printf '%s\n' 3 -4 5 1000000007 -9223372036854775808 >"$SCRATCH/submit/numbers.txt"
python3 -c 'import sys
for line in open(sys.argv[1]): print(int(line) ** 2)' "$SCRATCH/submit/numbers.txt" >"$SCRATCH/expected-numbers"
for i in 0 1 2; do
    seq $((i * 1000 - 500)) $((i * 1000 + 500 + i)) >"$SCRATCH/submit/part$i.txt"
done

# A user's own program: the README's cube example, built against this build tree.
LIBRARY=${HPOOL_LIBRARY:-$BUILD/framework/libhpool.a}
mpicc -O2 -fopenmp -I"$SOURCE/include" "$SOURCE/examples/custom/cube.c" "$LIBRARY" -Wl,-rpath,"$(dirname "$LIBRARY")" \
    -lm -o "$SCRATCH/submit/cube"

submit SQUARE_SRUN "$SOURCE/jobs/square.sbatch" --sum "$N"
LAUNCHER=mpirun submit SQUARE_MPIRUN "$SOURCE/jobs/square.sbatch" --sum "$N"
HPOOL_PLACEMENT=1 submit SQUARE_THREADS --ntasks-per-node=1 --cpus-per-task=2 "$SOURCE/jobs/square.sbatch" \
    --input numbers.txt
submit PROGRAM "$SOURCE/jobs/my-program.sbatch" ./cube 10
submit ARRAY --array=0-2 "$SOURCE/jobs/square-array.sbatch" part0.txt part1.txt part2.txt
if [ -x "$METATAGS" ]; then
    # A small tree of HTML: the bundled pages and a few of its own.
    HTML=$SCRATCH/submit/html
    mkdir -p "$HTML/sub"
    if [ -d "$SOURCE/data/html" ]; then # the bundled pages, where there are some
        cp -r "$SOURCE/data/html/." "$HTML/"
    fi
    for i in $(seq 12); do
        printf '<html><head><meta charset="utf-8"><meta name="k%d" content="v"></head><body>%d</body></html>\n' \
            $((i % 4)) "$i" >"$HTML/sub/page$i.html"
    done
    METATAGS=$METATAGS submit METATAGS_JOB "$SOURCE/jobs/metatags.sbatch" --count "$HTML"
else
    echo "note: $METATAGS is not built; its job is not submitted"
fi
echo "submitted jobs ${JOBS[*]}"

# Jobs run one or two at a time on the node's CPUs; all of them take well
# under a minute.
wait_for_jobs 180

CHECK="square.sbatch, srun --mpi=pmix, 2 tasks: the sum"
expect_completed "$SQUARE_SRUN"
echo "$EXPECTED_SUM" >"$SCRATCH/expected-sum"
expect_file "results/square-$SQUARE_SRUN.txt" "$SCRATCH/expected-sum"
grep -q '2 ranks on 1 node(s), 1 threads each' "hpool-square-$SQUARE_SRUN.log" || fail "its log does not say 2 ranks × 1 thread"
pass

CHECK="square.sbatch with LAUNCHER=mpirun: the same sum"
expect_completed "$SQUARE_MPIRUN"
expect_file "results/square-$SQUARE_MPIRUN.txt" "$SCRATCH/expected-sum"
pass

CHECK="square.sbatch --cpus-per-task=2: 2 threads from SLURM_CPUS_PER_TASK, --input squares in order"
expect_completed "$SQUARE_THREADS"
expect_file "results/square-$SQUARE_THREADS.txt" "$SCRATCH/expected-numbers"
grep -q "^hpool: placement: rank 0 -> host [^ ]* -> cpus\? [-0-9,]*: 2 threads" "hpool-square-$SQUARE_THREADS.log" \
    || fail "the placement report in its log does not show 2 threads"
pass

CHECK="my-program.sbatch: a program of one's own (cube) under srun"
expect_completed "$PROGRAM"
printf '%s\n' 0 1 8 27 64 125 216 343 512 729 >"$SCRATCH/expected-cubes"
expect_file "results/cube-$PROGRAM.txt" "$SCRATCH/expected-cubes"
pass

CHECK="square-array.sbatch --array=0-2: one results file per task"
expect_completed "$ARRAY"
for i in 0 1 2; do
    file_square_sum "part$i.txt" >"$SCRATCH/expected-part$i"
    expect_file "results/square-array-${ARRAY}_$i.txt" "$SCRATCH/expected-part$i"
done
pass

if [ -n "${METATAGS_JOB:-}" ]; then
    CHECK="metatags.sbatch --count DIR: the same counts as a plain run"
    expect_completed "$METATAGS_JOB"
    "$METATAGS" --count "$HTML" >"$SCRATCH/expected-metatags"
    [ -s "$SCRATCH/expected-metatags" ] || fail "the plain run printed nothing"
    expect_file "results/metatags-$METATAGS_JOB.txt" "$SCRATCH/expected-metatags"
    pass
fi

echo "all slurm checks passed"
