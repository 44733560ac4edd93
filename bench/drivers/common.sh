# common.sh: what every benchmark driver shares: its arguments, where the binaries are, MPI as root, a best-of-N wall clock and the TSV rows.
# Sourced, not run: `. "$(dirname "$0")/common.sh" "$@"`. Every driver takes the same arguments:
#
#   DRIVER.sh [BUILD_DIR [TSV]]
#
# BUILD_DIR is a CMake build of this checkout (default: build/ at the top of
# it); TSV is the file the driver appends its rows to (default: $TSV, else
# BUILD_DIR/bench-results/DRIVER.tsv). Every other setting is an environment
# variable, named in the driver's header; -h prints that header.
# shellcheck shell=bash disable=SC2034  # the variables are for the scripts that source this

# This file is in bench/drivers/; the peers' scripts are in bench/peers/.
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEERS_DIR=$BENCH_DIR/peers
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
BENCH_NAME=$(basename "$0" .sh)

case ${1:-} in
-h | --help)
    # The header: the comment lines after the shebang, up to the first line of code.
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
    exit 0
    ;;
esac
if [ "$#" -gt 2 ]; then
    echo "usage: $0 [BUILD_DIR [TSV]]; every other setting is an environment variable ($0 -h)" >&2
    exit 2
fi
build_argument=${1:-$REPO_DIR/build}
BUILD=$(cd "$build_argument" 2>/dev/null && pwd) || {
    echo "build directory '$build_argument' not found: build it (cmake -S $REPO_DIR -B $build_argument &&" \
        "cmake --build $build_argument) or pass another as the first argument" >&2
    exit 2
}
# A corpus passed where the build goes (metatags_vs_peers.sh used to take
# its corpus first) would otherwise fail later with a less helpful message.
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    hint=""
    [ -f "$BUILD/files.txt" ] && hint=" (it looks like a corpus: corpora are environment variables, see $0 -h)"
    echo "$BUILD is not a CMake build directory$hint; usage: $0 [BUILD_DIR [TSV]]" >&2
    exit 2
fi
TSV=$(realpath -m "${2:-${TSV:-$BUILD/bench-results/$BENCH_NAME.tsv}}")

# One layout for every driver's rows, so that one file can collect them all
# (run_all.sh passes the same TSV to each). Rows are appended, never
# rewritten, so date and commit say which session a row belongs to.
TSV_COLUMNS=(date commit bench tool variant parameters runs statistic metric value)
RUN_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
RUN_COMMIT=$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo none)
if [ -n "$(git -C "$REPO_DIR" status --porcelain 2>/dev/null | head -n 1)" ]; then
    RUN_COMMIT+=-dirty
fi
mkdir -p "$(dirname "$TSV")" || exit 2
tsv_header=$(IFS=$'\t' && echo "${TSV_COLUMNS[*]}")
if [ ! -s "$TSV" ]; then
    echo "$tsv_header" >"$TSV"
elif [ "$(head -n 1 "$TSV")" != "$tsv_header" ]; then
    echo "$TSV has other columns than ${TSV_COLUMNS[*]}: pass another TSV (second argument)" >&2
    exit 2
fi
TSV_LINES_BEFORE=$(wc -l <"$TSV")

# tsv_row TOOL VARIANT PARAMETERS RUNS STATISTIC METRIC VALUE: appends one
# row. PARAMETERS is "key=value ..."; STATISTIC says what VALUE is of RUNS
# runs (best, median, min, max, mean, stddev); METRIC names the quantity and
# its unit (seconds, items_per_s, peak_rss_mb, efficiency, ...).
tsv_row() {
    local fields=("$RUN_DATE" "$RUN_COMMIT" "$BENCH_NAME" "$@") i
    # A tab or newline inside a field would shift every column after it.
    for i in "${!fields[@]}"; do
        fields[i]=${fields[i]//[$'\t\n']/ }
    done
    (IFS=$'\t' && echo "${fields[*]}") >>"$TSV"
}

# tsv_report: the closing line of a driver's output.
tsv_report() {
    echo "tsv: $(($(wc -l <"$TSV") - TSV_LINES_BEFORE)) rows appended to $TSV"
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

# launch_tsv_row: the same figure as a TSV row.
launch_tsv_row() {
    if [ -f "$TMP/launch.runs" ]; then
        tsv_row mpi "${MPIRUN2[*]} mpi_launch (MPI start-up alone)" "" "$(wc -l <"$TMP/launch.runs")" best seconds \
            "$(best launch)"
    fi
}

# The median, least and greatest of the numbers on stdin, one a line.
median_of() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
min_of() { sort -g | head -n 1; }
max_of() { sort -g | tail -n 1; }
# stats FILE: "median min max" of FILE's first column.
stats() {
    local column
    column=$(cut -d ' ' -f 1 "$1")
    echo "$(median_of <<<"$column") $(min_of <<<"$column") $(max_of <<<"$column")"
}
