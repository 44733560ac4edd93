#!/usr/bin/env bash
# run_all.sh: the hpool benchmarks in one go, each beside its peer, for a maintainer to run by hand.
#
#   bench/run_all.sh [--only NAMES] [--all] [--quick] [--list] [BUILD_DIR [TSV]]
#       (defaults: build/ at the top of this checkout, BUILD_DIR/bench-results/run_all.tsv; build it first)
#
# Every driver in bench/drivers/ gets the same two arguments, BUILD_DIR and
# TSV, so the rows of one session all land in one file (see bench/README.md
# for its columns); every other setting is an environment variable and
# passes through to the drivers.
#
#   (no option)   the default set: square_sum tiny vs_python wordcount_vs_mrmpi
#                 metatags_vs_peers; a few minutes, most of it in the Python peers
#   --all         the default set, then scaling (minutes) and balance (half an hour)
#   --only NAMES  just these drivers, in this order: names without .sh, separated
#                 by commas or spaces (--only tiny,balance); may be repeated
#   --quick       small sizes and one run each, as environment defaults (a variable
#                 already set wins): to check that the drivers work, not for figures
#   --list        print the drivers' names and stop
#
# wordcount_vs_mrmpi runs only when MR-MPI's peer is built
# (BUILD_DIR/bench/mrmpi_wordcount, needs libmrmpi-dev) and its corpus exists
# (bench/corpora/make_corpus.sh; CORPUS); metatags_vs_peers only when ripgrep
# is installed and its corpus exists (bench/corpora/make_html_corpus.sh;
# HTML_CORPUS). Otherwise they are skipped with a message, unless named in
# --only, where a missing prerequisite is a failure. Run it on a quiet
# machine: the figures are only comparable within one run.
set -uo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
DEFAULT_SET=(square_sum tiny vs_python wordcount_vs_mrmpi metatags_vs_peers)
EVERY_DRIVER=("${DEFAULT_SET[@]}" scaling balance)

usage() {
    echo "usage: $0 [--only NAMES] [--all] [--quick] [--list] [BUILD_DIR [TSV]]" >&2
    exit 2
}
selected=() quick=0 everything=0 named=0 positional=()
while [ "$#" -gt 0 ]; do
    case $1 in
    --only)
        [ "$#" -ge 2 ] || usage
        read -r -a names <<<"${2//,/ }"
        selected+=("${names[@]}")
        named=1
        shift 2
        ;;
    --only=*) set -- --only "${1#--only=}" "${@:2}" ;;
    --all) everything=1 && shift ;;
    --quick) quick=1 && shift ;;
    --list) printf '%s\n' "${EVERY_DRIVER[@]}" && exit 0 ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" && exit 0 ;;
    --) shift && positional+=("$@") && break ;;
    -*) echo "unknown option $1" >&2 && usage ;;
    *) positional+=("$1") && shift ;;
    esac
done
[ "${#positional[@]}" -le 2 ] || usage
if [ "$named" = 0 ]; then
    selected=("${DEFAULT_SET[@]}")
    [ "$everything" = 1 ] && selected=("${EVERY_DRIVER[@]}")
fi
for name in "${selected[@]}"; do
    if [ ! -f "$BENCH_DIR/drivers/$name.sh" ]; then
        echo "no driver $name (bench/drivers/$name.sh); they are: ${EVERY_DRIVER[*]}" >&2
        exit 2
    fi
done

BUILD=${positional[0]:-$REPO_DIR/build}
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    echo "$BUILD is not a CMake build directory: build one (cmake -S $REPO_DIR -B $BUILD &&" \
        "cmake --build $BUILD) or pass it as the first argument" >&2
    exit 2
fi
BUILD=$(cd "$BUILD" && pwd)
TSV=$(realpath -m "${positional[1]:-$BUILD/bench-results/run_all.tsv}")

# quick_default VARIABLE VALUE: a small size, unless the caller chose one.
quick_default() {
    if [ -z "${!1+set}" ]; then
        export "$1=$2"
    fi
}
if [ "$quick" = 1 ]; then
    quick_default RUNS 1
    quick_default N 20000000
    quick_default TINY_ITEMS 100000
    quick_default POOL_ITEMS 20000
    quick_default MPI4PY_ITEMS 2000
    quick_default ITEMS 100000
    quick_default CORPUS_MB 10
    quick_default DISTS "u1ms giant_last"
    quick_default THREADS_LIST 2
    quick_default RANKS_LIST "1 2"
    quick_default BALANCE_SECONDS 0.2
fi

echo "== machine =="
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "cpu:     $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
echo "cc:      $(cc --version | head -n 1)"
echo "mpi:     $(mpirun --version 2>/dev/null | head -n 1)"
echo "python:  $(/usr/bin/python3 --version 2>&1), mpi4py $(/usr/bin/python3 -c 'import mpi4py; print(mpi4py.__version__)' 2>/dev/null || echo missing)"
echo "hpool:   $(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo 'no commit')" \
     "$(git -C "$REPO_DIR" status --porcelain 2>/dev/null | grep -q . && echo '(uncommitted changes)')"
echo "build:   $BUILD ($(awk -F= '/^CMAKE_BUILD_TYPE:/ { print $2 }' "$BUILD/CMakeCache.txt" 2>/dev/null))"
echo "drivers: ${selected[*]}$([ "$quick" = 1 ] && echo ' (--quick: small sizes, not figures)')"
echo "tsv:     $TSV"
# Other jobs on the machine skew every figure; the load average says whether there were any.
echo "load:    $(cut -d ' ' -f 1-3 /proc/loadavg) (1, 5, 15 min) before"
echo

# skip_reason NAME: why that driver cannot run here, or nothing. Only the
# drivers whose peer or corpus is optional have one.
skip_reason() {
    case $1 in
    wordcount_vs_mrmpi)
        local corpus=${CORPUS:-${TMPDIR:-/tmp}/hpool-corpus}
        if [ ! -x "$BUILD/bench/mrmpi_wordcount" ]; then
            echo "$BUILD/bench/mrmpi_wordcount not built (install libmrmpi-dev, re-run cmake)"
        elif [ ! -f "$corpus/files.txt" ]; then
            echo "no corpus in $corpus (run bench/corpora/make_corpus.sh first, or set CORPUS)"
        fi
        ;;
    metatags_vs_peers)
        local corpus=${HTML_CORPUS:-${TMPDIR:-/tmp}/hpool-html-corpus}
        if ! command -v rg >/dev/null; then
            echo "no rg (install ripgrep)"
        elif [ ! -f "$corpus/files.txt" ]; then
            echo "no corpus in $corpus (run bench/corpora/make_html_corpus.sh first, or set HTML_CORPUS)"
        fi
        ;;
    esac
}

# One failing benchmark should not hide the others' figures, but the exit
# status still says that something failed.
status=0
for name in "${selected[@]}"; do
    reason=$(skip_reason "$name")
    if [ -n "$reason" ] && [ "$named" = 0 ]; then
        echo "$name.sh skipped: $reason"
    else
        "$BENCH_DIR/drivers/$name.sh" "$BUILD" "$TSV" || { echo "$name.sh FAILED" >&2; status=1; }
    fi
    echo
done
echo "tsv:     $TSV"
echo "load:    $(cut -d ' ' -f 1-3 /proc/loadavg) (1, 5, 15 min) after"
exit "$status"
