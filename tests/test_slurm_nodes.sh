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
# `slurmd -N nodeK` with its NodeAddr; munged is shared through its socket
# in the scratch directory (the file system is every node's, as a cluster's
# shared file system is). Ranks talk over TCP on the test subnet only.
#
# across: sbatch -N 3 runs jobs/square.sbatch and jobs/metatags.sbatch with
#   srun --mpi=pmix and with LAUNCHER=mpirun; the ranks must have run on all
#   three nodes (HPOOL_PLACEMENT=1 has the root name each rank's host) and
#   every results file must equal a plain one-host run's.
# resume: jobs stopped partway, by scancel --signal=TERM, by their time limit
#   (--time=1 with an early --signal=B:USR1) and by SIGKILL to one rank,
#   resume from their journal, requeued by the job script or resubmitted by
#   hand; each final results file must equal an uninterrupted run's, for a
#   metatags listing, a metatags --count and a square --sum. metatags reads
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
sbatch() { ip netns exec "$BRIDGE_NS" sbatch "$@"; }
scontrol() { ip netns exec "$BRIDGE_NS" scontrol "$@"; }
scancel() { ip netns exec "$BRIDGE_NS" scancel "$@"; }
sinfo() { ip netns exec "$BRIDGE_NS" sinfo "$@"; }

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
# network namespace, under its hostname, with the cluster's /etc/hosts and
# with its own directory as TmpFS, where Slurm's PMIx plugin keeps per-step
# files that would collide were the nodes to share one. nsenter, not ip
# netns exec, which mounts a /sys of its own without the cgroup file systems
# that slurmd's cgroup plugin insists on finding.
on_host() {
    local host=$1 namespace=$PREFIX-$1
    shift
    [ "$host" != ctl ] || namespace=$BRIDGE_NS
    # shellcheck disable=SC2016 # the inner shell expands its own arguments
    nsenter --net="/run/netns/$namespace" unshare --uts --mount sh -c '
        hostname "$1" && mount --bind "$2" /etc/hosts && mount --bind "$3" "$4" && shift 4 && exec "$@"' \
        sh "$host" "$SCRATCH/hosts" "$SCRATCH/local-tmp/$host" "$SCRATCH/tmp" "$@"
}
echo "ok   hosts ctl ($CONTROLLER_ADDRESS) and ${NODES[*]} ($SUBNET.1-3) on a bridge"

# ---- munged, slurmctld and the slurmds ------------------------------------

start_munged
# Every host has a network of its own, so Slurm's default ports are free.
# Each node claims 4 CPUs, so that two 6-rank jobs fit at once.
{
    slurm_conf_common 6817 6818 "${NODES[@]}"
    echo "SlurmctldHost=ctl($CONTROLLER_ADDRESS)"
    for i in "${!NODES[@]}"; do
        echo "NodeName=${NODES[$i]} NodeAddr=$SUBNET.$((i + 1)) CPUs=4 State=UNKNOWN"
    done
    echo "PartitionName=test Nodes=node[0-2] Default=YES MaxTime=INFINITE State=UP"
    # A time limit's SIGTERM, and SIGKILL a few seconds after it, come soon,
    # so that the time-limit job ends quickly once it has been signalled.
    echo "KillWait=5"
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
# cluster's openmpi-mca-params.conf would say.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl=tcp,self OMPI_MCA_pml=ob1
export OMPI_MCA_btl_tcp_if_include=$SUBNET.0/24 OMPI_MCA_oob_tcp_if_include=$SUBNET.0/24
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
