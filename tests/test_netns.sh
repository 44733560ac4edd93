#!/usr/bin/env bash
# test_netns.sh: mpirun across three "hosts" (network namespaces on a bridge, over TCP) gives the same answers as one host, whatever the placement.
#
#   tests/test_netns.sh BUILD_DIR SOURCE_DIR
#
# Builds a small cluster inside this machine: namespaces hpool-PID-node0..2,
# each with a hostname of its own (a UTS namespace per process tree) and an
# address on 10.213.77.0/24, joined by veth pairs to a bridge that lives in a
# fourth namespace, so the machine's own network is never touched. mpirun
# runs in node0 and starts its daemons in node1 and node2 through an rsh
# agent that enters their namespace with `ip netns exec`; ranks talk over
# TCP only on the test subnet (btl tcp,self; btl_tcp_if_include and
# oob_tcp_if_include). Checks that square --sum, square's ordered output
# and, when apps/metatags is built, metatags --count DIR are byte-identical
# to a one-host run for several placements, and that the ranks really ran
# on three hosts (HPOOL_PLACEMENT=1). Installs iproute2 if missing. Exits 77
# (skipped) only when namespaces cannot be made here; removes them on exit.
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

[ "$(id -u)" -eq 0 ] || skip "network namespaces need root, and this test runs as $(id -un)"
command -v ip >/dev/null 2>&1 || need_packages iproute2
command -v unshare >/dev/null 2>&1 || skip "unshare (util-linux) is missing"

PREFIX=hpool-$$
BRIDGE_NS=$PREFIX-bridge
SUBNET=10.213.77
NODES=(node0 node1 node2)
SCRATCH=$(mktemp -d /tmp/hpool-netns.XXXXXX)

trap clean_up EXIT
trap 'exit 130' INT TERM

hosts_on_bridge "$BRIDGE_NS" "$SUBNET" "${NODES[@]/#/$PREFIX-}"
echo "ok   3 hosts on a bridge: ${NODES[*]} at $SUBNET.1-3"

# Open MPI's rsh agent: AGENT HOST COMMAND... runs COMMAND on HOST, i.e. in
# its namespace, with the host's name (a new UTS namespace per daemon).
AGENT=$SCRATCH/netns-agent.sh
{
    echo '#!/bin/sh'
    echo 'host=$1'
    echo 'shift'
    echo 'case $host in'
    for i in "${!NODES[@]}"; do
        echo "$SUBNET.$((i + 1)) | ${NODES[$i]}) node=${NODES[$i]} ;;"
    done
    echo '*) echo "netns-agent: unknown host $host" >&2; exit 1 ;;'
    echo 'esac'
    echo "exec ip netns exec \"$PREFIX-\$node\" unshare --uts sh -c \"hostname \$node; \$*\""
} >"$AGENT"
chmod +x "$AGENT"
HOSTFILE=$SCRATCH/hosts
for i in "${!NODES[@]}"; do
    echo "$SUBNET.$((i + 1)) slots=2"
done >"$HOSTFILE"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
unset HPOOL_THREADS OMP_NUM_THREADS HPOOL_PLACEMENT HPOOL_BIND OMPI_MCA_rmaps_base_oversubscribe
MPIRUN=(mpirun --hostfile "$HOSTFILE" --oversubscribe
    --mca plm_rsh_agent "$AGENT"
    --mca btl tcp,self --mca btl_tcp_if_include "$SUBNET.0/24" --mca oob_tcp_if_include "$SUBNET.0/24"
    -x HPOOL_PLACEMENT=1 -x HPOOL_THREADS)

OUT=$SCRATCH/out
ERR=$SCRATCH/err
# shellcheck source=tests/check.sh
. "$SOURCE/tests/check.sh"

# across THREADS MPIRUN-ARGS... -- PROGRAM ARGS...: runs under mpirun in node0,
# its output in $OUT, and checks that the ranks ran on every host.
across() {
    local threads=$1 status=0
    shift
    HPOOL_THREADS=$threads timeout 120 ip netns exec "$PREFIX-node0" unshare --uts \
        sh -c 'hostname node0 && exec "$@"' sh "${MPIRUN[@]}" "$@" >"$OUT" 2>"$ERR" </dev/null || status=$?
    [ "$status" -eq 0 ] || fail "mpirun exited with $status"
    local hosts
    hosts=$(sed -n 's/^hpool: placement: rank [0-9]* -> host \([^ ]*\) .*/\1/p' "$ERR" | sort -u | tr '\n' ' ')
    [ "$hosts" = "node0 node1 node2 " ] || fail "ranks ran on hosts '$hosts', not on node0 node1 node2"
}

# Placements: ranks per host and threads per rank, none alike.
PLACEMENTS=(
    "1|-n 3 --map-by node"
    "2|-n 3 --map-by node"
    "1|-n 6 --map-by slot"
    "3|-n 4 --map-by node"
    "2|-n 5 --map-by slot"
)

N=30000000
"$SQUARE" --sum "$N" >"$SCRATCH/one-host-sum"
square_sum "$N" | cmp -s - "$SCRATCH/one-host-sum" || { echo "FAIL: the one-host sum is wrong"; exit 1; }
for placement in "${PLACEMENTS[@]}"; do
    threads=${placement%%|*}
    # shellcheck disable=SC2206 # the placement's words are mpirun's arguments
    arguments=(${placement#*|})
    CHECK="square --sum $N, ${arguments[*]}, $threads thread(s) per rank, 3 hosts: as on one host"
    across "$threads" "${arguments[@]}" "$SQUARE" --sum "$N"
    cmp -s "$OUT" "$SCRATCH/one-host-sum" || fail "printed $(cat "$OUT"), one host printed $(cat "$SCRATCH/one-host-sum")"
    pass
done

# Every square, in input order, with small chunks so that every rank gets many.
"$SQUARE" 200000 >"$SCRATCH/one-host-squares"
CHECK="square 200000 --chunksize 100, -n 5, 3 hosts: the same lines in the same order"
across 2 -n 5 --map-by node "$SQUARE" --chunksize 100 200000
cmp -s "$OUT" "$SCRATCH/one-host-squares" || fail "the output differs from one host's"
pass

if [ -x "$METATAGS" ]; then
    # A small tree of HTML with meta tags of several kinds, over many files
    # so that every rank gets some.
    HTML=$SCRATCH/html
    mkdir -p "$HTML"
    if [ -d "$SOURCE/data/html" ]; then # the bundled pages, where there are some
        cp -r "$SOURCE/data/html/." "$HTML/"
    fi
    make_pages "$HTML" 120
    "$METATAGS" --count "$HTML" >"$SCRATCH/one-host-metatags"
    [ -s "$SCRATCH/one-host-metatags" ] || { echo "FAIL: metatags --count printed nothing on one host"; exit 1; }
    for placement in "1|-n 3 --map-by node" "2|-n 5 --map-by slot"; do
        threads=${placement%%|*}
        # shellcheck disable=SC2206
        arguments=(${placement#*|})
        CHECK="metatags --count DIR, ${arguments[*]}, $threads thread(s) per rank, 3 hosts: as on one host"
        across "$threads" "${arguments[@]}" "$METATAGS" --count "$HTML"
        if ! cmp -s "$OUT" "$SCRATCH/one-host-metatags"; then
            diff "$SCRATCH/one-host-metatags" "$OUT" | head -n 10
            fail "the counts differ from one host's"
        fi
        pass
    done
else
    echo "note: $METATAGS is not built; metatags --count is not checked across hosts"
fi

echo "all multi-host checks passed"
