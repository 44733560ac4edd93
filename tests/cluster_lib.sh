# cluster_lib.sh: what the Slurm and network-namespace tests share: packages, skipping, hosts on a bridge, a Slurm of their own, expected answers.
# Sourced, not run.
# shellcheck shell=bash

# What a test has started, for clean_up: its Slurm jobs and its namespaces.
JOBS=()
NAMESPACES=()

# Tests that cannot run here exit with this (SKIP_RETURN_CODE in tests/CMakeLists.txt).
SKIP_STATUS=77

skip() {
    echo "SKIPPED: $*"
    exit "$SKIP_STATUS"
}

# need_packages PACKAGE...: installs the Debian packages that are missing
# (scripts/test.sh has installed them already; a test run alone may not).
need_packages() {
    bash "$SOURCE/scripts/install-deps.sh" "$@" >/dev/null
}

# free_ports COUNT: COUNT TCP ports that nothing listens on now, one per line.
free_ports() {
    python3 -c '
import socket, sys
sockets = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print("\n".join(str(s.getsockname()[1]) for s in sockets))
for s in sockets:
    s.close()' "$1"
}

# square_sum N: the sum of the squares of 1..N mod 2^64, as square --sum prints it.
square_sum() {
    python3 -c 'import sys; n = int(sys.argv[1]); print(n * (n + 1) * (2 * n + 1) // 6 % 2**64)' "$1"
}

# file_square_sum FILE: the sum of the squares of the integers in FILE mod 2^64.
file_square_sum() {
    python3 -c 'import sys; print(sum(int(line) ** 2 for line in open(sys.argv[1])) % 2**64)' "$1"
}

# make_pages DIR COUNT: COUNT HTML pages under DIR, spread over DIR/a, DIR/b
# and DIR/b/c, with from none to five meta tags of several kinds each.
make_pages() {
    python3 - "$1" "$2" <<'EOF'
import os, sys
root, count = sys.argv[1], int(sys.argv[2])
names = ["description", "keywords", "author", "viewport", "robots"]
for i in range(count):
    folder = os.path.join(root, ["a", "b", os.path.join("b", "c")][i % 3])
    os.makedirs(folder, exist_ok=True)
    metas = "".join(
        f'<meta name="{names[(i + k) % len(names)]}" content="v{(i * k) % 7}">\n' for k in range(i % 6))
    with open(os.path.join(folder, f"page{i}.html"), "w") as page:
        page.write(f"<!doctype html>\n<html><head>\n<meta charset=\"utf-8\">\n{metas}</head>\n"
                   f"<body><p>page {i}</p></body></html>\n")
EOF
}

# clean_up: the EXIT trap of every cluster test: cancels its jobs, stops its
# daemons (showing their logs when the test failed), removes its namespaces
# and its scratch directory (KEEP_SCRATCH=1 keeps it, to look into), then
# exits with the test's status. Each step does nothing where the test made
# nothing of its kind.
clean_up() {
    local status=$?
    set +e
    if [ ${#JOBS[@]} -gt 0 ] && [ -f "$SCRATCH/run/slurmctld.pid" ]; then
        scancel "${JOBS[@]}" 2>/dev/null
    fi
    stop_daemons
    if [ "$status" -ne 0 ] && [ "$status" -ne "$SKIP_STATUS" ]; then
        show_logs
    fi
    remove_namespaces
    if [ -n "${KEEP_SCRATCH:-}" ]; then
        echo "kept $SCRATCH"
    else
        rm -rf "$SCRATCH"
    fi
    exit "$status"
}

# wait_until SECONDS COMMAND...: runs COMMAND every 0.2 s until it succeeds;
# fails after SECONDS.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

# ---- Hosts: network namespaces on a bridge --------------------------------
# A test that makes hosts sets SCRATCH first and calls remove_namespaces on exit.


# add_namespace NAME: a network namespace with its loopback up; skips the
# test where namespaces cannot be made.
add_namespace() {
    ip netns add "$1" 2>"$SCRATCH/netns.err" || {
        cat "$SCRATCH/netns.err"
        skip "cannot create network namespaces in this sandbox (ip netns add $1 failed: needs CAP_SYS_ADMIN and a writable /run/netns)"
    }
    NAMESPACES+=("$1")
    ip -n "$1" link set lo up
}

# hosts_on_bridge BRIDGE-NAMESPACE SUBNET HOST-NAMESPACE...: a bridge br0 in
# the first namespace and, in each host's, an eth0 at SUBNET.1, SUBNET.2, ...
# plugged into it by a veth pair. Returns once every host reaches every
# other, so that nothing later mistakes a slow link for a failure.
hosts_on_bridge() {
    local bridge=$1 subnet=$2 i j
    shift 2
    local hosts=("$@")
    add_namespace "$bridge"
    ip -n "$bridge" link add br0 type bridge
    ip -n "$bridge" link set br0 up
    for i in "${!hosts[@]}"; do
        add_namespace "${hosts[$i]}"
        ip -n "$bridge" link add "veth$i" type veth peer name eth0 netns "${hosts[$i]}"
        ip -n "$bridge" link set "veth$i" master br0 up
        ip -n "${hosts[$i]}" addr add "$subnet.$((i + 1))/24" dev eth0
        ip -n "${hosts[$i]}" link set eth0 up
    done
    for i in "${!hosts[@]}"; do
        for j in "${!hosts[@]}"; do
            wait_until 10 reachable "${hosts[$i]}" "$subnet.$((j + 1))" || {
                echo "FAIL: ${hosts[$i]} cannot reach $subnet.$((j + 1))"
                exit 1
            }
        done
    done
}

# reachable NAMESPACE ADDRESS: a TCP connection from NAMESPACE to ADDRESS is
# answered (accepted or refused).
reachable() {
    ip netns exec "$1" python3 -c '
import socket, sys
try:
    socket.create_connection((sys.argv[1], 9), timeout=1)
except ConnectionRefusedError:
    pass' "$2"
}

# remove_namespaces: ends whatever still runs in the namespaces, then deletes
# them; their veths and bridge go with them.
remove_namespaces() {
    local namespace
    for namespace in "${NAMESPACES[@]}"; do
        ip netns pids "$namespace" 2>/dev/null | xargs -r kill -9 2>/dev/null
    done
    for namespace in "${NAMESPACES[@]}"; do
        ip netns delete "$namespace" 2>/dev/null
    done
    return 0
}

# ---- A Slurm of the test's own --------------------------------------------
# Everything lives under $SCRATCH: munge's key and socket, the daemons' pid
# files, state, spool and logs, so nothing of a system Slurm is touched. The
# test exports SLURM_CONF=$SCRATCH/slurm.conf; its jobs are submitted from
# $SCRATCH/submit.

# start_munged [HOST...]: munged with a key of its own; skips the test when
# it will not start. Without HOSTs: one munged, its socket MUNGE_SOCKET under
# $SCRATCH/run. With HOSTs: one munged per host, as a cluster has, all with
# the same key, host H's socket in $SCRATCH/munge-run/H; MUNGE_SOCKET is then
# $SCRATCH/run/munge/munge.socket, a path that exists only on a host whose
# mount namespace binds its own directory there (munge_dir_of H). One munged
# shared by several slurmds sees each step's credential once per node, as a
# replay, and logs it as one.
start_munged() {
    # munged insists that its socket's directories can be searched by everyone.
    chmod 755 "$SCRATCH"
    mkdir -p "$SCRATCH"/{munge,run,log,submit}
    chmod 700 "$SCRATCH/munge"
    mungekey --create --keyfile="$SCRATCH/munge/munge.key" 2>/dev/null \
        || dd if=/dev/urandom of="$SCRATCH/munge/munge.key" bs=1024 count=1 status=none
    chmod 600 "$SCRATCH/munge/munge.key"
    if [ $# -eq 0 ]; then
        MUNGE_SOCKET=$SCRATCH/run/munge.socket
        start_one_munged "$MUNGE_SOCKET" munged
        echo "ok   munged runs (socket $MUNGE_SOCKET)"
        return
    fi
    local host
    mkdir -p "$SCRATCH/run/munge"
    for host in "$@"; do
        mkdir -p "$(munge_dir_of "$host")"
        start_one_munged "$(munge_dir_of "$host")/munge.socket" "munged-$host"
    done
    MUNGE_SOCKET=$SCRATCH/run/munge/munge.socket
    echo "ok   a munged for each of $* (sockets under $SCRATCH/munge-run)"
}

# munge_dir_of HOST: the directory of HOST's own munged socket.
munge_dir_of() {
    echo "$SCRATCH/munge-run/$1"
}

# start_one_munged SOCKET NAME: a munged on SOCKET, its pid file, log and
# seed named NAME; skips the test when it does not answer.
start_one_munged() {
    if ! munged --key-file="$SCRATCH/munge/munge.key" --socket="$1" \
        --pid-file="$SCRATCH/run/$2.pid" --log-file="$SCRATCH/log/$2.log" \
        --seed-file="$SCRATCH/munge/$2.seed" \
        || ! wait_until 10 sh -c "munge -S '$1' -n | unmunge -S '$1'"; then
        show_logs
        skip "munged did not start in this sandbox (its log is above)"
    fi
}

# slurm_conf_common CONTROLLER-PORT SLURMD-PORT NODE...: the slurm.conf lines
# every test cluster shares, on stdout, and each node's spool directory; the
# test adds its hosts and partition.
# proctrack/linuxproc and task/none need no cgroups. Each slurmd's pid file,
# spool and log are named for its node (%n), so that several can share the
# scratch directory. config_overrides lets a node claim more CPUs than it
# has, so that jobs of several tasks fit on a small machine (task/none binds
# nothing, so this only lets them be scheduled).
slurm_conf_common() {
    local node
    for node in "${@:3}"; do
        mkdir -p "$SCRATCH/spool/$node"
    done
    mkdir -p "$SCRATCH"/{state,tmp}
    : >"$SCRATCH/plugstack.conf"
    cat <<EOF
ClusterName=hpooltest
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$1
SlurmdPort=$2
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$SCRATCH/state
SlurmdSpoolDir=$SCRATCH/spool/%n
TmpFS=$SCRATCH/tmp
SlurmctldPidFile=$SCRATCH/run/slurmctld.pid
SlurmdPidFile=$SCRATCH/run/slurmd-%n.pid
SlurmctldLogFile=$SCRATCH/log/slurmctld.log
SlurmdLogFile=$SCRATCH/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
PlugStackConfig=$SCRATCH/plugstack.conf
MinJobAge=600
EOF
}

# stop_daemons: stops the slurmds, slurmctld and the munged(s) by their pid files,
# in that order, waiting for each to be gone and killing what will not go.
stop_daemons() {
    local pid_file pid
    for pid_file in "$SCRATCH"/run/slurmd-*.pid "$SCRATCH/run/slurmctld.pid" "$SCRATCH"/run/munged*.pid; do
        pid=$(cat "$pid_file" 2>/dev/null) || continue
        [ -n "$pid" ] || continue
        kill "$pid" 2>/dev/null
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -9 "$pid" 2>/dev/null
    done
    return 0
}

# show_logs: the end of each daemon's log and of each job's.
show_logs() {
    local log
    for log in "$SCRATCH"/log/*.log "$SCRATCH"/submit/*.log; do
        [ -f "$log" ] || continue
        echo "--- $log (last 20 lines)"
        tail -n 20 "$log"
    done
}


# submit VARIABLE SBATCH-ARGUMENTS...: runs sbatch; the job's id goes into
# VARIABLE and onto JOBS.
submit() {
    local variable=$1 id
    shift
    id=$(sbatch --parsable "$@") || { echo "FAIL: sbatch $* refused"; exit 1; }
    id=${id%%;*}
    JOBS+=("$id")
    printf -v "$variable" '%s' "$id"
}

# job_state JOBID: the job's JobState (PENDING, RUNNING, COMPLETED, ...).
job_state() {
    scontrol show job -o "$1" | grep -o 'JobState=[A-Z_]*' | head -n 1 | cut -d= -f2
}

# jobs_done [JOBID...]: every job named (by default, every one on JOBS) has
# ended and will not be requeued.
jobs_done() {
    local job states
    [ $# -gt 0 ] || set -- "${JOBS[@]}"
    for job in "$@"; do
        states=$(scontrol show job -o "$job") || return 1
        ! grep -Eq 'JobState=(PENDING|RUNNING|CONFIGURING|COMPLETING|SUSPENDED|REQUEUE[A-Z_]*|RESIZING|SIGNALING|STAGE_OUT)' <<<"$states" || return 1
    done
}

# wait_for_jobs SECONDS [JOBID...]: jobs_done within SECONDS, or the test
# fails showing each job.
wait_for_jobs() {
    local seconds=$1 job
    shift
    [ $# -gt 0 ] || set -- "${JOBS[@]}"
    if ! wait_until "$seconds" jobs_done "$@"; then
        for job in "$@"; do scontrol show job -o "$job" || true; done
        echo "FAIL: the jobs did not finish within $seconds s"
        exit 1
    fi
}

# expect_completed JOBID: the job, and every task of it, completed with exit
# code 0. Its log becomes ERR, which check.sh's fail shows.
expect_completed() {
    local states
    # shellcheck disable=SC2034 # read by check.sh's fail
    ERR=$(find "$SCRATCH/submit" -maxdepth 1 -name "*-$1.log" | head -n 1)
    states=$(scontrol show job -o "$1") || fail "scontrol does not know job $1"
    states=$(grep -o 'JobState=[A-Z_]* .*ExitCode=[0-9:]*' <<<"$states" \
        | sed 's/JobState=\([A-Z_]*\) .*ExitCode=\([0-9:]*\)/\1 \2/' | sort -u)
    [ "$states" = "COMPLETED 0:0" ] || fail "job $1 ended as: $states"
}

# expect_file RESULTS EXPECTED-FILE: the two hold the same bytes.
expect_file() {
    [ -f "$1" ] || fail "no results file $1"
    cmp -s "$1" "$2" || {
        diff "$2" "$1" | head -n 10 || true
        fail "$1 differs from what was expected"
    }
}
