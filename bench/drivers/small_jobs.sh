#!/usr/bin/env bash
# small_jobs.sh: whole-process wall and CPU time of small hpool jobs (square --sum, the README's cube) against bare OpenMP loops and a bare MPI program.
#
#   bench/drivers/small_jobs.sh [BUILD_DIR [TSV]]     (defaults: REPO/build, BUILD_DIR/bench-results/small_jobs.tsv)
#       TSV: the file this driver appends its result rows to, columns as in bench/README.md;
#       every other setting is an environment variable, as below.
#   RUNS=9 SUM_SIZES="10 1000000 10000000" CUBE_SIZES="10 100000" MPI_N=10 MPI_VARIANTS="default ob1" \
#       BEFORE_BUILD=path/to/an/older/build bench/drivers/small_jobs.sh
#
# A small job is one whose work takes a few milliseconds, so that what hpool
# does around the work (threads started and ended, pool creation and
# teardown, under mpirun its collectives and messages) is most of what hpool
# adds. Every case runs once per round, RUNS rounds, interleaved, so that a
# busy spell of the machine hits every case alike; each figure is the median
# of the rounds with the fastest and slowest in brackets. Timed from spawn
# to exit (posix_spawn and wait4 in Python), CPU time from wait4's rusage
# (the process and the children it waited for: mpirun's ranks).
#
#   plain runs (2 threads): square --sum --threads 2 N beside omp_sum_aligned
#     and omp_sum N (OMP_NUM_THREADS=2, the hand-written reduction, see
#     square_sum.sh); cube N (examples/custom/cube.c, OMP_NUM_THREADS=2) beside
#     omp_cube N, the same program as a bare #pragma omp parallel for.
#   mpirun -n 2: mpi_launch (MPI_Init_thread at MPI_THREAD_MULTIPLE, a
#     barrier, MPI_Finalize), square --sum --threads 1 MPI_N and cube MPI_N
#     (a thread per rank), each with mpirun's default transport and, for
#     MPI_VARIANTS "ob1", with --mca pml ob1 (MPIRUN_ARGS is added to both;
#     MPI_VARIANTS="" runs no MPI case).
#
# Where the time goes: every hpool case also runs RUNS times (in the same
# rounds, untimed) with bench/libhpool_phases.so preloaded, which times each
# process's hpool_mpi_init, hpool_pool_create, the call, hpool_pool_free and
# hpool_mpi_finalize, and MPI_Init_thread and MPI_Finalize inside them; the
# second table gives their medians per rank. Checks that every square run
# prints omp_sum's sum and every cube run omp_cube's bytes.
#
# BEFORE_BUILD: another build (of an older checkout, say) whose square and
# cube run as well, as "[before] ..." cases in the same rounds, so that a
# change is measured before and after in one run beside the same peers.
set -euo pipefail
. "$(dirname "$0")/common.sh" "$@"

RUNS=${RUNS:-9}
SUM_SIZES=${SUM_SIZES:-10 1000000 10000000}
CUBE_SIZES=${CUBE_SIZES:-10 100000}
MPI_N=${MPI_N:-10}
MPI_VARIANTS=${MPI_VARIANTS-default ob1}
SQUARE=$BUILD/apps/square/square
CUBE=$BUILD/bench/cube
PHASES=$BUILD/bench/libhpool_phases.so
for program in "$SQUARE" "$CUBE" "$BUILD/bench/omp_sum" "$BUILD/bench/omp_sum_aligned" "$BUILD/bench/omp_cube" \
    "$BUILD/bench/mpi_launch"; do
    need_executable "$program"
done
[ -f "$PHASES" ] || {
    echo "missing $PHASES: build it first (cmake --build $BUILD)" >&2
    exit 2
}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# One case per line: NAME<TAB>PEER<TAB>KIND<TAB>COMMAND. PEER names the case
# a ratio is taken against ("-": none); KIND is plain or mpi (how the phase
# shim is preloaded) or peer (not an hpool program: no phases).
cases=$TMP/cases
: >"$cases"
add_case() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$cases"; }
BEFORE_BUILD=${BEFORE_BUILD:-}
if [ -n "$BEFORE_BUILD" ]; then
    BEFORE_BUILD=$(cd "$BEFORE_BUILD" && pwd)
    for program in apps/square/square bench/cube bench/libhpool_phases.so; do
        [ -e "$BEFORE_BUILD/$program" ] || {
            echo "BEFORE_BUILD: missing $BEFORE_BUILD/$program" >&2
            exit 2
        }
    done
fi
# add_hpool_case NAME PEER KIND COMMAND: the case, and its twin from BEFORE_BUILD.
add_hpool_case() {
    add_case "$@"
    if [ -n "$BEFORE_BUILD" ]; then
        add_case "[before] $1" "$2" "$3" "${4//$BUILD\//$BEFORE_BUILD/}"
    fi
}
for n in $SUM_SIZES; do
    add_case "omp_sum_aligned $n" - peer "env OMP_NUM_THREADS=2 $BUILD/bench/omp_sum_aligned $n"
    add_case "omp_sum $n" - peer "env OMP_NUM_THREADS=2 $BUILD/bench/omp_sum $n"
    add_hpool_case "square --sum --threads 2 $n" "omp_sum_aligned $n" plain "$SQUARE --sum --threads 2 $n"
done
for n in $CUBE_SIZES; do
    add_case "omp_cube $n" - peer "env OMP_NUM_THREADS=2 $BUILD/bench/omp_cube $n"
    add_hpool_case "cube $n" "omp_cube $n" plain "env OMP_NUM_THREADS=2 $CUBE $n"
done
for variant in $MPI_VARIANTS; do
    case $variant in
    default)
        mpirun_for MPIRUN2 2
        tag="mpirun -n 2"
        ;;
    ob1)
        MPIRUN_ARGS="${MPIRUN_ARGS:-} --mca pml ob1" mpirun_for MPIRUN2 2
        tag="mpirun --mca pml ob1 -n 2"
        ;;
    *)
        echo "MPI_VARIANTS: unknown variant '$variant' (default, ob1)" >&2
        exit 2
        ;;
    esac
    add_case "$tag mpi_launch" - peer "${MPIRUN2[*]} $BUILD/bench/mpi_launch"
    add_hpool_case "$tag square --sum --threads 1 $MPI_N" "$tag mpi_launch" mpi "${MPIRUN2[*]} $SQUARE --sum --threads 1 $MPI_N"
    add_hpool_case "$tag cube $MPI_N" "$tag mpi_launch" mpi "${MPIRUN2[*]} $CUBE $MPI_N"
done

echo "== small jobs: whole-process wall and CPU time, median [min-max] of $RUNS interleaved rounds, $CORES cores =="
status=0
BEFORE_BUILD=$BEFORE_BUILD "$PYTHON" - "$RUNS" "$cases" "$PHASES" "$TMP" <<'PY' || status=$?
import os, shlex, statistics, subprocess, sys, time

runs, cases_path, phases_so, tmp = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
cases = [line.rstrip("\n").split("\t") for line in open(cases_path) if line.strip()]
names = [c[0] for c in cases]

def spawn(argv, env, out_path):
    """Runs argv, stdout to out_path, stderr kept; returns wall s, CPU s, stderr."""
    with open(out_path, "wb") as out, open(out_path + ".err", "wb") as err:
        start = time.perf_counter()
        pid = os.posix_spawnp(argv[0], argv, env, file_actions=[
            (os.POSIX_SPAWN_DUP2, out.fileno(), 1), (os.POSIX_SPAWN_DUP2, err.fileno(), 2)])
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - start
    error = open(out_path + ".err", "rb").read().decode(errors="replace")
    if status != 0:
        sys.stderr.write(f"failed ({status}): {' '.join(argv)}\n{error}")
        sys.exit(1)
    return wall, usage.ru_utime + usage.ru_stime, error

def phased(case):
    """The case's command with the phase shim (of the case's own build) preloaded in every hpool process."""
    name, peer, kind, command = case
    argv = shlex.split(command)
    shim = phases_so
    if name.startswith("[before] "):
        shim = os.environ["BEFORE_BUILD"] + "/bench/libhpool_phases.so"
    if kind == "mpi":  # mpirun ... PROGRAM: the shim goes to the ranks, not to mpirun
        program = next(i for i, word in enumerate(argv) if i > 0 and word.startswith("/"))
        return argv[:program] + ["-x", "LD_PRELOAD=" + shim] + argv[program:], os.environ
    return argv, dict(os.environ, LD_PRELOAD=shim)

wall = {n: [] for n in names}
cpu = {n: [] for n in names}
phases = {}  # (case, rank) -> {phase: [ms, ...]}
outputs = {}
for round_ in range(runs):
    for i, case in enumerate(cases):
        out = f"{tmp}/case{i}.out"
        w, c, _ = spawn(shlex.split(case[3]), os.environ, out)
        wall[case[0]].append(w)
        cpu[case[0]].append(c)
        outputs[case[0]] = open(out, "rb").read()
    for i, case in enumerate(cases):
        if case[2] == "peer":
            continue
        argv, env = phased(case)
        _, _, err = spawn(argv, env, f"{tmp}/phase{i}.out")
        for line in err.splitlines():
            words = line.split()
            if not words or words[0] != "hpool-phases:":
                continue
            record = phases.setdefault((case[0], words[2]), {})
            for key, value in zip(words[3:-1:2], words[4:-1:2]):
                record.setdefault(key, []).append(float(value))

# Checks: square prints omp_sum's sum, cube omp_cube's bytes.
status = 0
def expected_sum(n):
    text = outputs.get(f"omp_sum {n}", b"").decode()
    return next((line.split()[1] for line in text.splitlines() if line.startswith("sum ")), None)
for name in names:
    words = name.split()
    if "square" in words:
        n = words[-1]
        want = expected_sum(n)
        if want is None:  # an MPI size with no plain run: the sum mod 2^64 computed here
            want = str(sum(x * x for x in range(1, int(n) + 1)) % 2**64)
        if want not in outputs[name].decode().split():
            print(f"MISMATCH: {name} printed {outputs[name][:200]!r}, expected the sum {want}", file=sys.stderr)
            status = 1
    elif "cube" in words:
        n = int(words[-1])
        want = "".join(f"{i * i * i}\n" for i in range(n)).encode()
        if outputs[name] != want:
            print(f"MISMATCH: {name} did not print the cubes of 0..{n - 1}", file=sys.stderr)
            status = 1

med = lambda values: statistics.median(values)
width = max(len(n) for n in names)
print(f"{'case':<{width}}  {'wall ms':>8} {'[min-max]':>17}  {'cpu ms':>8} {'[min-max]':>17}  {'wall/peer':>9} {'cpu/peer':>8}")
for name, peer, kind, command in cases:
    w, c = wall[name], cpu[name]
    ratio = f"{med(w) / med(wall[peer]):9.2f}" if peer != "-" else f"{'-':>9}"
    cpu_ratio = f"{med(c) / med(cpu[peer]):8.2f}" if peer != "-" else f"{'-':>8}"
    print(f"{name:<{width}}  {med(w) * 1e3:8.2f} [{min(w) * 1e3:7.2f}-{max(w) * 1e3:7.2f}]  "
          f"{med(c) * 1e3:8.2f} [{min(c) * 1e3:7.2f}-{max(c) * 1e3:7.2f}]  {ratio} {cpu_ratio}")

print()
print("== where the time goes: medians (ms) per process, from bench/libhpool_phases.so ==")
columns = ["main", "hpool_mpi_init", "MPI_Init_thread", "hpool_pool_create", "call", "hpool_pool_join", "hpool_pool_free",
           "hpool_mpi_finalize", "MPI_Finalize", "exit"]
short = {"hpool_mpi_init": "mpi_init", "MPI_Init_thread": "(MPI_Init)", "hpool_pool_create": "create",
         "hpool_pool_join": "join", "hpool_pool_free": "free", "hpool_mpi_finalize": "finalize", "MPI_Finalize": "(MPI_Fin)"}
print(f"{'case':<{width}} {'rank':>4} " + " ".join(f"{short.get(c, c):>10}" for c in columns))
with open(f"{tmp}/rows.tsv", "w") as rows:
    for name, peer, kind, command in cases:
        w, c = wall[name], cpu[name]
        for statistic, function in (("median", med), ("min", min), ("max", max)):
            rows.write(f"{name}\t{len(w)}\t{statistic}\tseconds\t{function(w):.6f}\n")
            rows.write(f"{name}\t{len(c)}\t{statistic}\tcpu_seconds\t{function(c):.6f}\n")
        for rank in sorted({r for (n, r) in phases if n == name}):
            record = phases[(name, rank)]
            print(f"{name:<{width}} {rank:>4} " + " ".join(
                f"{med(record[c]):10.3f}" if c in record else f"{'-':>10}" for c in columns))
            for column in columns:
                if column in record:
                    rows.write(f"{name} (rank {rank})\t{len(record[column])}\tmedian\t{column}_seconds\t"
                               f"{med(record[column]) / 1e3:.6f}\n")
print("(MPI_Init) and (MPI_Fin): MPI's own part of mpi_init and finalize; join: hpool_pool_join called by the program "
      "(free joins first if it did not); main: from the libraries loaded to the first hpool call; exit: from the last "
      "to the end")
sys.exit(status)
PY
# Rows only for checked figures.
if [ "$status" -eq 0 ]; then
    while IFS=$'\t' read -r name runs statistic metric value; do
        case $name in
        "[before] "*) tool=hpool-before ;;
        omp_*) tool=${name%% *} ;;
        *mpi_launch*) tool=mpi ;;
        *) tool=hpool ;;
        esac
        tsv_row "$tool" "$name" "runs_interleaved=$RUNS" "$runs" "$statistic" "$metric" "$value"
    done <"$TMP/rows.tsv"
    tsv_report
fi
exit "$status"
