#!/usr/bin/env bash
# run_all.sh: every hpool benchmark in one go, each beside its peer, for a maintainer to run by hand.
#
#   bench/run_all.sh [BUILD_DIR]      (default /work/main/build; build it first)
#
# Takes a few minutes, most of it in the Python peers, plus a few more for
# wordcount_vs_mrmpi.sh, which runs only when MR-MPI's peer is built
# ($BUILD/bench/mrmpi_wordcount, needs libmrmpi-dev) and the corpus exists
# (bench/make_corpus.sh; CORPUS, default /tmp/hpool-corpus): otherwise it is
# skipped with a message. Run it on a quiet machine: the figures are only
# comparable within one run.
set -uo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-/work/main/build}

echo "== machine =="
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "cpu:     $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
echo "cc:      $(cc --version | head -n 1)"
echo "mpi:     $(mpirun --version 2>/dev/null | head -n 1)"
echo "python:  $(/usr/bin/python3 --version 2>&1), mpi4py $(/usr/bin/python3 -c 'import mpi4py; print(mpi4py.__version__)' 2>/dev/null || echo missing)"
echo "hpool:   $(git -C "$BENCH_DIR/.." rev-parse --short HEAD 2>/dev/null || echo 'no commit')" \
     "$(git -C "$BENCH_DIR/.." status --porcelain 2>/dev/null | grep -q . && echo '(uncommitted changes)')"
echo "build:   $BUILD ($(awk -F= '/^CMAKE_BUILD_TYPE:/ { print $2 }' "$BUILD/CMakeCache.txt" 2>/dev/null))"
# Other jobs on the machine skew every figure; the load average says whether there were any.
echo "load:    $(cut -d ' ' -f 1-3 /proc/loadavg) (1, 5, 15 min) before"
echo

# One failing benchmark should not hide the others' figures, but the exit
# status still says that something failed.
status=0
for script in square_sum.sh tiny.sh vs_python.sh; do
    "$BENCH_DIR/drivers/$script" "$BUILD" || { echo "$script FAILED" >&2; status=1; }
    echo
done
# wordcount against MR-MPI: optional, since it needs MR-MPI and a 500 MB corpus and takes minutes.
CORPUS=${CORPUS:-/tmp/hpool-corpus}
if [ ! -x "$BUILD/bench/mrmpi_wordcount" ]; then
    echo "wordcount_vs_mrmpi.sh skipped: $BUILD/bench/mrmpi_wordcount not built (install libmrmpi-dev, re-run cmake)"
elif [ ! -f "$CORPUS/files.txt" ]; then
    echo "wordcount_vs_mrmpi.sh skipped: no corpus in $CORPUS (run bench/make_corpus.sh first)"
else
    CORPUS=$CORPUS "$BENCH_DIR/drivers/wordcount_vs_mrmpi.sh" "$BUILD" || { echo "wordcount_vs_mrmpi.sh FAILED" >&2; status=1; }
fi
echo
echo "load:    $(cut -d ' ' -f 1-3 /proc/loadavg) (1, 5, 15 min) after"
exit "$status"
