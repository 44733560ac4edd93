#!/usr/bin/env bash
# test_slurm_nodes.sh: a Slurm of three nodes (a slurmd in each of three network namespaces, one slurmctld) runs the jobs/ scripts across them; jobs stopped partway resume to an uninterrupted run's results.
#
#   tests/test_slurm_nodes.sh BUILD_DIR SOURCE_DIR across|resume
#
# The hosts are those of test_netns.sh: network namespaces on a bridge, each
# node with an address on 10.213.78.0/24 and, through a UTS and a mount
# namespace of its own, its own hostname, /etc/hosts and local TmpFS. The
# bridge's namespace is the controller "ctl" (10.213.78.254): slurmctld runs
# there, and so do this test's sbatch, scontrol and scancel. Each node runs
# `slurmd -N nodeK` with its NodeAddr; every host has a munged of its own
# (same key), whose socket its mount namespace puts where slurm.conf says.
# The scratch directory is every node's file system, as a cluster's shared
# file system is. Ranks talk over TCP on the test subnet only.
#
# across: sbatch -N 3 runs jobs/square.sbatch and jobs/metatags.sbatch with
#   srun --mpi=pmix and with LAUNCHER=mpirun; the ranks must have run on all
#   three nodes (HPOOL_PLACEMENT=1 has the root name each rank's host) and
#   every results file must equal a plain one-host run's.
# resume: jobs stopped partway, by scancel --signal=TERM, by their time limit
#   (--time=1 with an early --signal=B:USR1) and by SIGKILL to one rank,
#   resume from their journal, requeued by the job script or resubmitted by
#   hand; each final results file must equal an uninterrupted run's, for a
#   metatags listing, a metatags --count and (but for the time limit) a
#   square --sum. metatags reads
#   its pages from a slow HTTP server in "ctl", so that jobs last long
#   enough to be stopped, whatever the machine's speed.
#
# Installs slurm-wlm, munge and iproute2 if missing. Exits 77 (skipped) only
# when namespaces or the daemons cannot start here; stops everything and
# removes the namespaces on exit.
set -euo pipefail

if [ $# -ne 3 ] || { [ "$3" != across ] && [ "$3" != resume ]; }; then
    echo "usage: $0 BUILD_DIR SOURCE_DIR across|resume" >&2
    exit 2
fi
BUILD=$(cd "$1" && pwd)
SOURCE=$(cd "$2" && pwd)
MODE=$3
# shellcheck source=tests/cluster_lib.sh
. "$SOURCE/tests/cluster_lib.sh"
# shellcheck source=tests/check.sh
. "$SOURCE/tests/check.sh"
SQUARE=$BUILD/apps/square/square
METATAGS=${METATAGS:-$BUILD/apps/metatags/metatags}
[ -x "$SQUARE" ] || { echo "no $SQUARE: build first" >&2; exit 2; }
[ -x "$METATAGS" ] || { echo "no $METATAGS: build first" >&2; exit 2; }

[ "$(id -u)" -eq 0 ] || skip "slurmd and network namespaces need root, and this test runs as $(id -un)"
need_packages slurm-wlm munge iproute2
command -v unshare >/dev/null 2>&1 || skip "unshare (util-linux) is missing"

PREFIX=hpool-$$
SUBNET=10.213.78
CONTROLLER_ADDRESS=$SUBNET.254
BRIDGE_NS=$PREFIX-ctl
NODES=(node0 node1 node2)
SCRATCH=$(mktemp -d /tmp/hpool-slurm-nodes.XXXXXX)
export SLURM_CONF=$SCRATCH/slurm.conf

# The Slurm commands run where a user's would: on the controller's network.
# on_host is defined below, before the first call.
sbatch() { on_host ctl sbatch "$@"; }
scontrol() { on_host ctl scontrol "$@"; }
scancel() { on_host ctl scancel "$@"; }
sinfo() { on_host ctl sinfo "$@"; }

trap clean_up EXIT
trap 'exit 130' INT TERM

# ---- Hosts ----------------------------------------------------------------

hosts_on_bridge "$BRIDGE_NS" "$SUBNET" "${NODES[@]/#/$PREFIX-}"
ip -n "$BRIDGE_NS" addr add "$CONTROLLER_ADDRESS/24" dev br0
{
    echo "127.0.0.1 localhost"
    echo "$CONTROLLER_ADDRESS ctl"
    for i in "${!NODES[@]}"; do
        echo "$SUBNET.$((i + 1)) ${NODES[$i]}"
    done
} >"$SCRATCH/hosts"
mkdir -p "$SCRATCH/tmp"
for host in ctl "${NODES[@]}"; do
    mkdir -p "$SCRATCH/local-tmp/$host"
done

# on_host HOST COMMAND...: runs COMMAND on HOST (ctl or a node): in its
# network namespace, under its hostname, with the cluster's /etc/hosts, its
# own munged's socket, and its own directory as TmpFS, where Slurm's PMIx
# plugin keeps per-step files that would collide were the nodes to share
# one. nsenter, not ip
# netns exec, which mounts a /sys of its own without the cgroup file systems
# that slurmd's cgroup plugin insists on finding.
on_host() {
    local host=$1 namespace=$PREFIX-$1
    shift
    [ "$host" != ctl ] || namespace=$BRIDGE_NS
    # shellcheck disable=SC2016 # the inner shell expands its own arguments
    nsenter --net="/run/netns/$namespace" unshare --uts --mount sh -c '
        hostname "$1" && mount --bind "$2" /etc/hosts && mount --bind "$3" "$4" && mount --bind "$5" "$6" \
            && shift 6 && exec "$@"' \
        sh "$host" "$SCRATCH/hosts" "$SCRATCH/local-tmp/$host" "$SCRATCH/tmp" \
        "$(munge_dir_of "$host")" "$SCRATCH/run/munge" "$@"
}
echo "ok   hosts ctl ($CONTROLLER_ADDRESS) and ${NODES[*]} ($SUBNET.1-3) on a bridge"

# ---- munged, slurmctld and the slurmds ------------------------------------

start_munged ctl "${NODES[@]}"
# Every host has a network of its own, so Slurm's default ports are free.
# Each node claims 12 CPUs, so that all of a mode's jobs run at once. A
# requeued job waits as long as a credential lives (cred_expire, 120 s by
# default) before it starts again: 10 s here.
{
    slurm_conf_common 6817 6818 "${NODES[@]}" | sed 's/^AuthInfo=.*/&,cred_expire=10/'
    echo "SlurmctldHost=ctl($CONTROLLER_ADDRESS)"
    for i in "${!NODES[@]}"; do
        echo "NodeName=${NODES[$i]} NodeAddr=$SUBNET.$((i + 1)) CPUs=12 State=UNKNOWN"
    done
    echo "PartitionName=test Nodes=node[0-2] Default=YES MaxTime=INFINITE State=UP"
    # Slurm sends a time limit's early signal from a check that runs every 30
    # s or so, which may be later than the limit: a minute's grace beyond it
    # lets such a job still stop cleanly. A requeued job starts at the next
    # scheduling pass once its wait is over: one every 2 s, not 60.
    echo "OverTimeLimit=1"
    echo "KillWait=5"
    echo "SchedulerParameters=sched_interval=2"
} >"$SLURM_CONF"

nodes_idle() {
    [ "$(sinfo -h -N -o '%N %t' | sort -u | tr '\n' ' ')" = "node0 idle node1 idle node2 idle " ]
}
started=1
on_host ctl slurmctld || started=0
for node in "${NODES[@]}"; do
    [ "$started" -eq 0 ] || on_host "$node" slurmd -N "$node" || started=0
done
if [ "$started" -eq 0 ] || ! wait_until 30 nodes_idle; then
    sinfo -N 2>&1 || true
    show_logs
    skip "slurmctld and three slurmds did not bring node0..node2 up in this sandbox (their logs are above)"
fi
echo "ok   slurmctld on ctl and a slurmd on each of ${NODES[*]}: all idle"

# ---- What every job shares ------------------------------------------------

# The jobs inherit this environment (sbatch's --export=ALL). Running as root
# is this test's business, not the job scripts'; the interfaces are what a
# cluster's openmpi-mca-params.conf would say. Messages go through UCX over
# TCP, as on most clusters (UCX over their fabric), not through ob1 and
# the TCP BTL: with those, Open MPI 4.1.4 crashed in MPI_Init under srun in
# 3 of 4 runs of the resume mode, its TCP BTL calling the handler of ob1's
# tag 0x41 before ob1 had registered it (a NULL call, seen in a core).
# UCX_TLS leaves shared memory out, so ranks on different nodes talk over
# the test subnet even though they share this machine; pml_ucx_tls and
# _devices "any" let Open MPI take UCX without an InfiniBand transport.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_pml=ucx OMPI_MCA_btl=self OMPI_MCA_osc=ucx
export OMPI_MCA_pml_ucx_tls=any OMPI_MCA_pml_ucx_devices=any
export UCX_TLS=tcp,self UCX_NET_DEVICES=eth0
export OMPI_MCA_oob_tcp_if_include=$SUBNET.0/24
export SQUARE METATAGS
unset HPOOL_THREADS OMP_NUM_THREADS HPOOL_PLACEMENT HPOOL_BIND SLURM_CPUS_PER_TASK
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
cd "$SCRATCH/submit"

# ranks_hosts LOG: the hosts the placement report in LOG names, sorted, on one line.
ranks_hosts() {
    sed -n 's/^hpool: placement: rank [0-9]* -> host \([^ ]*\) .*/\1/p' "$1" | sort -u | tr '\n' ' '
}
# expect_all_nodes JOBID: the job's ranks ran on node0, node1 and node2.
expect_all_nodes() {
    local hosts
    hosts=$(ranks_hosts "$ERR")
    [ "$hosts" = "node0 node1 node2 " ] || fail "the ranks of job $1 ran on '$hosts', not on node0 node1 node2"
}

# ---- across: three nodes give one host's answers --------------------------

if [ "$MODE" = across ]; then
    N=30000000
    "$SQUARE" --sum "$N" >"$SCRATCH/one-host-sum"
    "$SQUARE" --chunksize 100 100000 >"$SCRATCH/one-host-squares"
    make_pages "$SCRATCH/submit/html" 300
    "$METATAGS" --count html >"$SCRATCH/one-host-count"
    [ -s "$SCRATCH/one-host-count" ] || { echo "FAIL: metatags --count printed nothing on one host"; exit 1; }

    HPOOL_PLACEMENT=1 submit SUM_SRUN -N 3 --ntasks-per-node=2 "$SOURCE/jobs/square.sbatch" --sum "$N"
    HPOOL_PLACEMENT=1 LAUNCHER=mpirun submit SUM_MPIRUN -N 3 --ntasks-per-node=1 --cpus-per-task=2 \
        "$SOURCE/jobs/square.sbatch" --sum "$N"
    HPOOL_PLACEMENT=1 LAUNCHER=mpirun submit SQUARES_MPIRUN -N 3 --ntasks-per-node=2 \
        "$SOURCE/jobs/square.sbatch" --chunksize 100 100000
    HPOOL_PLACEMENT=1 submit COUNT_SRUN -N 3 --ntasks-per-node=1 --cpus-per-task=2 "$SOURCE/jobs/metatags.sbatch" \
        --count html
    echo "submitted jobs ${JOBS[*]}"
    wait_for_jobs 150

    CHECK="square.sbatch -N 3 --ntasks-per-node=2, srun --mpi=pmix: the sum, with ranks on all three nodes"
    expect_completed "$SUM_SRUN"
    expect_all_nodes "$SUM_SRUN"
    grep -q '6 ranks on 3 node(s), 1 threads each' "$ERR" || fail "its log does not say 6 ranks on 3 nodes × 1 thread"
    expect_file "results/square-$SUM_SRUN.txt" "$SCRATCH/one-host-sum"
    pass

    CHECK="square.sbatch -N 3 --cpus-per-task=2, LAUNCHER=mpirun: the sum, with ranks on all three nodes"
    expect_completed "$SUM_MPIRUN"
    expect_all_nodes "$SUM_MPIRUN"
    expect_file "results/square-$SUM_MPIRUN.txt" "$SCRATCH/one-host-sum"
    pass

    CHECK="square.sbatch -N 3 --ntasks-per-node=2, LAUNCHER=mpirun: every square in order, as on one host"
    expect_completed "$SQUARES_MPIRUN"
    expect_all_nodes "$SQUARES_MPIRUN"
    expect_file "results/square-$SQUARES_MPIRUN.txt" "$SCRATCH/one-host-squares"
    pass

    CHECK="metatags.sbatch -N 3 --cpus-per-task=2, srun --mpi=pmix: --count DIR as on one host"
    expect_completed "$COUNT_SRUN"
    expect_all_nodes "$COUNT_SRUN"
    expect_file "results/metatags-$COUNT_SRUN.txt" "$SCRATCH/one-host-count"
    pass

    echo "all three-node slurm checks passed"
    exit 0
fi

# ---- resume: jobs stopped partway end with an uninterrupted run's results --

# metatags reads its pages from ctl, each after a delay that DELAY_FILE sets:
# a second while the first runs are being stopped, none afterwards, so that
# the first runs last long enough and the resumed ones are quick.
WWW=$SCRATCH/www
make_pages "$WWW/pages" 600
DELAY_FILE=$SCRATCH/http-delay
echo 0 >"$DELAY_FILE"
on_host ctl python3 "$SOURCE/tests/metatags/server.py" "$WWW" "$SCRATCH/http-port" "$CONTROLLER_ADDRESS" "$DELAY_FILE" \
    </dev/null >"$SCRATCH/log/http.log" 2>&1 &
wait_until 10 test -s "$SCRATCH/http-port" || { echo "FAIL: the HTTP server in ctl did not start"; exit 1; }
BASE=http://$CONTROLLER_ADDRESS:$(cat "$SCRATCH/http-port")
(cd "$WWW" && find pages -name '*.html' | LC_ALL=C sort) | sed "s|^|$BASE/slow/|" >urls.txt

# The uninterrupted runs: metatags on one host, at full speed; square's sum
# in closed form, which an uninterrupted run prints (the across mode checks).
on_host ctl "$METATAGS" --no-progress @urls.txt >"$SCRATCH/expected-listing"
on_host ctl "$METATAGS" --no-progress --count @urls.txt >"$SCRATCH/expected-count"
[ "$(wc -l <"$SCRATCH/expected-listing")" -gt 600 ] || { echo "FAIL: the one-host listing is short"; exit 1; }
[ -s "$SCRATCH/expected-count" ] || { echo "FAIL: the one-host --count printed nothing"; exit 1; }

# square --sum is as slow as the CPUs, so N comes from one thread's speed
# here and the CPUs a 3-rank job can use: 10 s of work at the least.
calibration_start=$EPOCHREALTIME
"$SQUARE" --threads 1 --sum 2000000000 >/dev/null
cpus=$(nproc)
[ "$cpus" -le 3 ] || cpus=3
N=$(python3 -c "print(int(2e9 / ($EPOCHREALTIME - $calibration_start) * 10 * $cpus))")
square_sum "$N" >"$SCRATCH/expected-sum"
echo "ok   uninterrupted runs: a listing of $(wc -l <"$SCRATCH/expected-listing") lines, $(wc -l <"$SCRATCH/expected-count") counts; the sum of 1..$N"

# Jobs stopped in three ways, one rank per node each: a listing, a --count
# and a --sum for each, but for the time limit, where square is left out:
# its work cannot be slowed down and sped up as the pages can, and it must
# outlast the signal, which may come a minute after the job starts, so its
# resumed runs would take minutes more. --chunksize 4: 4 pages in flight per
# rank.
LISTING=(--no-progress --chunksize 4 @urls.txt)
COUNT=(--no-progress --chunksize 4 --count @urls.txt)
ONE_PER_NODE=(-N 3 --ntasks-per-node=1 --cpus-per-task=1)
# The root gives up on a killed rank once it has been silent for the stall
# timeout, and the job then fails: 5 s rather than 60.
export HPOOL_STALL_TIMEOUT=5
# metatags --count journals its counts at checkpoints, every 60 s by default:
# every 2 s, so that a killed job leaves some, and progress shows in time.
export HPOOL_JOURNAL_CHECKPOINT=2
echo 1 >"$DELAY_FILE"
# scancel --signal=TERM signals srun's tasks, the ranks themselves.
submit TERM_LISTING "${ONE_PER_NODE[@]}" "$SOURCE/jobs/metatags.sbatch" "${LISTING[@]}"
submit TERM_COUNT "${ONE_PER_NODE[@]}" "$SOURCE/jobs/metatags.sbatch" "${COUNT[@]}"
submit TERM_SUM "${ONE_PER_NODE[@]}" "$SOURCE/jobs/square.sbatch" --sum "$N"
# A minute's time limit, USR1 to the batch shell 50 s before it, which the
# script passes to mpirun, which passes it to the ranks.
LIMITED=("${ONE_PER_NODE[@]}" --time=1 --signal=B:USR1@50)
LAUNCHER=mpirun submit LIMIT_LISTING "${LIMITED[@]}" "$SOURCE/jobs/metatags.sbatch" "${LISTING[@]}"
LAUNCHER=mpirun submit LIMIT_COUNT "${LIMITED[@]}" "$SOURCE/jobs/metatags.sbatch" "${COUNT[@]}"
# One rank killed: srun for the metatags jobs, mpirun for square.
submit KILL_LISTING "${ONE_PER_NODE[@]}" "$SOURCE/jobs/metatags.sbatch" "${LISTING[@]}"
submit KILL_COUNT "${ONE_PER_NODE[@]}" "$SOURCE/jobs/metatags.sbatch" "${COUNT[@]}"
LAUNCHER=mpirun submit KILL_SUM "${ONE_PER_NODE[@]}" "$SOURCE/jobs/square.sbatch" --sum "$N"
echo "submitted jobs ${JOBS[*]}"

# results_of JOBID: the job's results file; journal_of JOBID: its journal.
results_of() {
    find "$SCRATCH/submit/results" -maxdepth 1 -name "*-$1.txt" | head -n 1
}
journal_of() {
    find "$SCRATCH/submit/results" -maxdepth 1 -name "*-$1.journal" | head -n 1
}
journal_size() { # journal_size JOBID: its journal's size in bytes; fails while it is missing or empty
    local journal
    journal=$(journal_of "$1")
    [ -n "$journal" ] && [ -s "$journal" ] && stat -c %s "$journal"
}
# wait_for_progress JOBID: until the job's journal holds more than when it
# was first seen with something in it (its header, maybe a first batch):
# completed work.
wait_for_progress() {
    CHECK="job $1 makes progress"
    ERR=$(find "$SCRATCH/submit" -maxdepth 1 -name "*-$1.log" | head -n 1)
    wait_until 60 journal_size "$1" || fail "no journal appeared within 60 s; the job is $(job_state "$1")"
    local first
    first=$(journal_size "$1")
    wait_until 60 sh -c "[ \"\$(stat -c %s '$(journal_of "$1")')\" -gt $first ]" \
        || fail "its journal did not grow from $first bytes within 60 s; the job is $(job_state "$1")"
}
restarts() { # restarts JOBID: how many times Slurm has requeued the job
    scontrol show job -o "$1" | grep -o 'Restarts=[0-9]*' | cut -d= -f2
}
requeued() { # requeued JOBID: Slurm has requeued the job at least once
    [ "$(restarts "$1")" -ge 1 ]
}
# rank_pid NODE JOBID PROGRAM: the pid of the job's rank running PROGRAM on NODE.
rank_pid() {
    local pid
    for pid in $(ip netns pids "$PREFIX-$1"); do
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$3" ] || continue
        if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "SLURM_JOB_ID=$2"; then
            echo "$pid"
            return 0
        fi
    done
    return 1
}

for job in "$TERM_LISTING" "$TERM_COUNT" "$TERM_SUM"; do
    wait_for_progress "$job"
    CHECK="scancel --signal=TERM $job"
    scancel --signal=TERM "$job" || fail "scancel refused; the job is $(job_state "$job")"
done
KILLED=("$KILL_LISTING:metatags" "$KILL_COUNT:metatags" "$KILL_SUM:square")
for job in "${KILLED[@]}"; do
    program=${job#*:}
    job=${job%:*}
    wait_for_progress "$job"
    CHECK="job $job: a rank on node1 killed"
    pid=$(rank_pid node1 "$job" "$program") || fail "no $program of job $job runs on node1"
    kill -9 "$pid"
done
for job in "$LIMIT_LISTING" "$LIMIT_COUNT"; do
    CHECK="job $job is stopped and requeued"
    wait_until 150 requeued "$job" || fail "job $job was not requeued within 150 s"
done
# Every first run has been stopped: the pages come at full speed now.
echo 0 >"$DELAY_FILE"
RESUBMITTED=()
for job in "${KILLED[@]}"; do
    program=${job#*:}
    job=${job%:*}
    CHECK="job $job, with a rank killed, fails"
    wait_for_jobs 60 "$job"
    [ "$(job_state "$job")" != COMPLETED ] || fail "job $job completed although one of its ranks was killed"
    # By hand, as a user would: the same results file, so the same journal.
    results=$(results_of "$job")
    if [ "$program" = square ]; then
        LAUNCHER=mpirun RESULTS=$results submit again "${ONE_PER_NODE[@]}" "$SOURCE/jobs/square.sbatch" --sum "$N"
    elif [ "$job" = "$KILL_LISTING" ]; then
        RESULTS=$results submit again "${ONE_PER_NODE[@]}" "$SOURCE/jobs/metatags.sbatch" "${LISTING[@]}"
    else
        RESULTS=$results submit again "${ONE_PER_NODE[@]}" "$SOURCE/jobs/metatags.sbatch" "${COUNT[@]}"
    fi
    RESUBMITTED+=("$job:$again")
done
wait_for_jobs 240

# expect_resumed JOBID SIGNAL EXPECTED: the job stopped on SIGNAL, was
# requeued, and completed with the expected results.
expect_resumed() {
    expect_completed "$1"
    grep -q "stopped by $2" "$ERR" || fail "its log does not say that it was stopped by $2"
    requeued "$1" || fail "it was not requeued"
    expect_file "$(results_of "$1")" "$3"
    pass
}
CHECK="metatags listing, scancel --signal=TERM, requeued: the uninterrupted run's listing"
expect_resumed "$TERM_LISTING" SIGTERM "$SCRATCH/expected-listing"
CHECK="metatags --count, scancel --signal=TERM, requeued: the uninterrupted run's counts"
expect_resumed "$TERM_COUNT" SIGTERM "$SCRATCH/expected-count"
CHECK="square --sum, scancel --signal=TERM, requeued: the uninterrupted run's sum"
expect_resumed "$TERM_SUM" SIGTERM "$SCRATCH/expected-sum"
CHECK="metatags listing under mpirun, --time=1 --signal=B:USR1@50, requeued: the uninterrupted run's listing"
expect_resumed "$LIMIT_LISTING" SIGUSR1 "$SCRATCH/expected-listing"
CHECK="metatags --count under mpirun, --time=1 --signal=B:USR1@50, requeued: the uninterrupted run's counts"
expect_resumed "$LIMIT_COUNT" SIGUSR1 "$SCRATCH/expected-count"

for pair in "${RESUBMITTED[@]}"; do
    first=${pair%:*}
    again=${pair#*:}
    case $first in
    "$KILL_LISTING") CHECK="metatags listing, a rank SIGKILLed, resubmitted" expected=$SCRATCH/expected-listing ;;
    "$KILL_COUNT") CHECK="metatags --count, a rank SIGKILLed, resubmitted" expected=$SCRATCH/expected-count ;;
    *) CHECK="square --sum under mpirun, a rank SIGKILLed, resubmitted" expected=$SCRATCH/expected-sum ;;
    esac
    CHECK="$CHECK with job $first's journal: the uninterrupted run's results"
    expect_completed "$again"
    expect_file "$(results_of "$first")" "$expected"
    pass
done

echo "all three-node resume checks passed"
