# common.sh: what every benchmark script shares: where the binaries are, MPI as root, and a best-of-N wall clock.
# Sourced, not run: `. "$(dirname "$0")/common.sh" "$@"` with the build directory as $1.
# shellcheck shell=bash disable=SC2034  # the variables are for the scripts that source this

# This file is in bench/drivers/; the peers' scripts are in bench/peers/.
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEERS_DIR=$BENCH_DIR/peers
BUILD=$(cd "${1:-/work/main/build}" 2>/dev/null && pwd) || {
    echo "build directory '${1:-/work/main/build}' not found; pass it as the first argument" >&2
    exit 2
}
# Debian's interpreter: it has python3-mpi4py, the pyenv one first on PATH does not.
PYTHON=${PYTHON:-/usr/bin/python3}
# The figures are only meaningful side by side on this machine, so say which it is.
CORES=$(nproc)

# We run as root in the containers these benchmarks were written on.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Each run sets its own thread count explicitly; one inherited from the
# caller's shell would silently change what is compared.
unset HPOOL_THREADS OMP_NUM_THREADS

# mpirun_for ARRAY RANKS: sets the array named ARRAY to the launcher prefix,
# oversubscribing only when it must, so that runs within the core count are not
# slowed by Open MPI's yield-when-idle. MPIRUN_ARGS (split at spaces) is added
# to every mpirun, e.g. MPIRUN_ARGS="--mca pml ob1": on a machine without a
# high-speed fabric that skips Open MPI's probing for one, 0.2 s of every
# start-up here (see bench/README.md).
mpirun_for() {
    local -n launcher=$1
    local -a extra
    read -r -a extra <<<"${MPIRUN_ARGS:-}"
    launcher=(mpirun "${extra[@]}" -n "$2")
    if [ "$2" -gt "$CORES" ]; then
        launcher+=(--oversubscribe)
    fi
}

need_executable() {
    if [ ! -x "$1" ]; then
        echo "missing $1: build it first (cmake --build $BUILD)" >&2
        exit 2
    fi
}

# wall_once OUT COMMAND...: runs COMMAND once with its stdout in OUT and prints
# its whole-process wall time in seconds. Exits the script if the command
# fails, so that a broken build never shows up as a figure.
wall_once() {
    local out=$1 start end
    shift
    start=$(date +%s%N)
    if ! "$@" >"$out" 2>"$out.err"; then
        echo "failed: $*" >&2
        cat "$out" "$out.err" >&2
        exit 1
    fi
    end=$(date +%s%N)
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.6f", (b - a) / 1e9 }'
}

# min A B: the smaller of two decimal numbers; B when A is empty.
min() {
    awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b + 0 < a + 0) ? b : a }'
}

# keep_best VAR OUT COMMAND...: runs COMMAND once (see wall_once) and lowers
# the variable named VAR to its wall time if that is a new best.
keep_best() {
    local var=$1 seconds
    shift
    seconds=$(wall_once "$@") || exit 1
    printf -v "$var" '%s' "$(min "${!var}" "$seconds")"
}

# field NAME FILE: the value after the word NAME on the first line that has it
# ("... items/s 1.2e+06 ..." -> 1.2e+06).
field() {
    awk -v name="$1" '{ for (i = 1; i < NF; i++) if ($i == name) { print $(i + 1); exit } }' "$2"
}

# For the scripts that keep "SECONDS RSS_KB" lines in $TMP/NAME.runs, one per
# run: the best time, the largest peak RSS in MB, and every run's seconds.
best() { awk 'NR == 1 || $1 < s { s = $1 } END { print s }' "$TMP/$1.runs"; }
peak() { awk '$2 > m { m = $2 } END { printf "%.1f", m / 1024 }' "$TMP/$1.runs"; }
every_run() { awk '{ printf "%s%.2f", (NR > 1 ? " " : ""), $1 }' "$TMP/$1.runs"; }

# launch_row WIDTHS: the table row of MPI's start-up alone ($TMP/launch.runs),
# if it was measured; WIDTHS is the printf format of the script's table.
launch_row() {
    if [ -f "$TMP/launch.runs" ]; then
        printf "$1" mpi "${MPIRUN2[*]} mpi_launch (MPI start-up alone)" "$(best launch)" - - "$(every_run launch)"
    fi
}
