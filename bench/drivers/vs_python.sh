#!/usr/bin/env bash
# vs_python.sh: whole-process wall time of square_map (hpool) against square_map.py (Pool(2).map), same work.
#
#   bench/drivers/vs_python.sh [BUILD_DIR [TSV]]     (defaults: REPO/build, BUILD_DIR/bench-results/vs_python.tsv)
#       TSV: the file this driver appends its result rows to, columns as in bench/README.md;
#       every other setting is an environment variable, as below.
#   ITEMS=1000000 RUNS=10 NO_HYPERFINE=1 bench/drivers/vs_python.sh
#
# Both processes are timed from exec to exit: interpreter or library load,
# pool start-up, the map of x -> x*x over range(ITEMS) with the pools' own
# chunking, the sum, and shut-down. The goal is hpool at least 100 times
# faster. A third row, omp_square_map, does the same work as a hand-written
# OpenMP loop with no pool at all: the floor, which tells whether the goal is
# within reach on this machine at all (process start, page faults of the
# results array). Uses hyperfine when installed (NO_HYPERFINE=1 to skip it),
# else a loop of RUNS timed runs.
set -euo pipefail
. "$(dirname "$0")/common.sh" "$@"

ITEMS=${ITEMS:-1000000}
RUNS=${RUNS:-10}
SQUARE_MAP=$BUILD/bench/square_map
OMP_SQUARE_MAP=$BUILD/bench/omp_square_map
need_executable "$SQUARE_MAP"
need_executable "$OMP_SQUARE_MAP"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

hpool_command="$SQUARE_MAP --items $ITEMS"
python_command="$PYTHON $PEERS_DIR/square_map.py $ITEMS"
omp_command="$OMP_SQUARE_MAP --items $ITEMS"

# Same answer first: a fast wrong program proves nothing.
$hpool_command >"$TMP/hpool.out"
$python_command >"$TMP/python.out"
$omp_command >"$TMP/omp.out"
if ! cmp -s "$TMP/hpool.out" "$TMP/python.out" || ! cmp -s "$TMP/hpool.out" "$TMP/omp.out"; then
    echo "MISMATCH: square_map printed '$(cat "$TMP/hpool.out")', square_map.py" \
        "'$(cat "$TMP/python.out")', omp_square_map '$(cat "$TMP/omp.out")'" >&2
    exit 1
fi

if [ -z "${NO_HYPERFINE:-}" ] && command -v hyperfine >/dev/null; then
    # -N: no shell in between, whose few milliseconds would swamp hpool's side.
    hyperfine -N --warmup 2 --min-runs "$RUNS" --style basic --export-json "$TMP/times.json" \
        --command-name hpool "$hpool_command" --command-name python "$python_command" \
        --command-name omp "$omp_command" \
        >"$TMP/hyperfine.txt"
    method="hyperfine -N --warmup 2, at least $RUNS runs each"
    timer=hyperfine
else
    # The same statistics by hand: RUNS timed runs after 2 untimed ones.
    "$PYTHON" - "$RUNS" "$TMP/times.json" "$hpool_command" "$python_command" "$omp_command" <<'PY'
import json, shlex, subprocess, sys, time
runs, out, commands = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
results = []
for name, command in zip(["hpool", "python", "omp"], commands):
    argv = shlex.split(command)
    for _ in range(2):
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    mean = sum(times) / len(times)
    stddev = (sum((t - mean) ** 2 for t in times) / max(1, len(times) - 1)) ** 0.5
    results.append({"command": name, "mean": mean, "stddev": stddev, "min": min(times), "times": times})
json.dump({"results": results}, open(out, "w"))
PY
    method="$RUNS timed runs each after 2 warm-ups (without hyperfine)"
    timer=loop
fi

echo "== sum(Pool(2).map(square, range($ITEMS))) as a whole process, $CORES cores: $method =="
echo "checksum: $(cat "$TMP/hpool.out") (all three)"
"$PYTHON" - "$TMP/times.json" "$TMP/rows.tsv" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
hpool, python, omp = results["hpool"], results["python"], results["omp"]
rows = (("hpool", "square_map", hpool), ("python", "square_map.py, Pool(2)", python),
        ("omp", "omp_square_map, the floor", omp))
print(f"{'tool':<8} {'program':<26} {'mean ms':>9} {'stddev ms':>10} {'min ms':>9} {'runs':>5}")
for name, program, r in rows:
    print(f"{name:<8} {program:<26} {r['mean'] * 1e3:9.2f} {r['stddev'] * 1e3:10.2f} "
          f"{r['min'] * 1e3:9.2f} {len(r['times']):5d}")
mean_ratio = python["mean"] / hpool["mean"]
print(f"python/hpool: {mean_ratio:.1f}x by mean, {python['min'] / hpool['min']:.1f}x by best run; "
      f"goal >= 100x: {'met' if mean_ratio >= 100 else 'NOT met'} (by mean)")
print(f"python/omp:   {python['mean'] / omp['mean']:.1f}x by mean (the most any pool could reach here); "
      f"hpool/omp: {hpool['mean'] / omp['mean']:.2f}x by mean")
# TOOL, VARIANT, RUNS, STATISTIC, SECONDS for the driver's TSV rows.
with open(sys.argv[2], "w") as out:
    for name, program, r in rows:
        # "best", as the other drivers call the fastest run.
        for statistic, key in (("mean", "mean"), ("stddev", "stddev"), ("best", "min")):
            out.write(f"{name}\t{program}\t{len(r['times'])}\t{statistic}\t{r[key]:.6f}\n")
PY
while IFS=$'\t' read -r tool variant runs statistic seconds; do
    tsv_row "$tool" "$variant" "items=$ITEMS timer=$timer" "$runs" "$statistic" seconds "$seconds"
done <"$TMP/rows.tsv"
tsv_report
