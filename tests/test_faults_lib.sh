#!/usr/bin/env bash
# test_faults_lib.sh: a full disk (a file size limit) while spilling is named as a spill failure, by the library and by wordcount; threads that cannot start are HPOOL_ETHREAD.
set -uo pipefail
faults=$1
wordcount=$2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# Going past a file size limit raises SIGXFSZ, which kills unless
# ignored; hpool leaves signal dispositions alone, so the test ignores it,
# and the write then fails with EFBIG. 256 KiB per file: a spill of
# 300,000 pairs goes past it.
limited() { (trap '' XFSZ; ulimit -f 256; "$@"); }

# The library: HPOOL_EIO, "cannot write to a spill file in DIR: File too
# large". Plain, by ulimit -f (an ignored signal stays ignored across
# exec). Under mpirun the program sets the limit itself once its pool
# exists: MPI's own files (PMIx's segments) would go past it, and the
# launcher gives its ranks SIGXFSZ's default action back.
if [ -z "${HPOOL_LAUNCH:-}" ]; then
  limited "$faults" full "$scratch" > "$scratch/out" 2>&1 || fail "test_faults_lib full: $(cat "$scratch/out")"
else
  $HPOOL_LAUNCH "$faults" full "$scratch" 256 > "$scratch/out" 2>&1 || fail "test_faults_lib full: $(cat "$scratch/out")"
fi
grep -q "File too large" "$scratch/out" || fail "no EFBIG in: $(cat "$scratch/out")"

# wordcount (plain only, for the reason above): one line naming the spill
# failure, and no input file blamed.
if [ -z "${HPOOL_LAUNCH:-}" ]; then
  python3 -c '
import random, sys
rng = random.Random(3)
with open(sys.argv[1], "w") as f:
    for i in range(150000):
        f.write("w%d " % rng.randrange(10**9))
' "$scratch/words.txt"
  status=0
  limited env TMPDIR="$scratch" HPOOL_MEMORY_BUDGET=1 "$wordcount" "$scratch/words.txt" > /dev/null 2> "$scratch/err" \
    || status=$?
  [ "$status" = 1 ] || fail "wordcount under a full disk exited $status, expected 1"
  grep -q "cannot write to a spill file in $scratch: File too large" "$scratch/err" \
    || fail "wordcount does not name the spill failure: $(cat "$scratch/err")"
  if grep -q "words.txt" "$scratch/err"; then fail "wordcount blames the input file: $(cat "$scratch/err")"; fi
  [ "$(grep -c "wordcount:" "$scratch/err")" = 1 ] || fail "wordcount says more than one line: $(cat "$scratch/err")"
fi

# Threads whose stacks do not fit in the address space: hpool's probe says
# so, instead of libgomp's exit(1). Plain only (mpirun needs the room), and
# not under ASan, whose shadow memory needs far more.
if [ -z "${HPOOL_LAUNCH:-}" ] && ! ldd "$faults" | grep libasan >/dev/null; then
  (ulimit -v 1000000; "$faults" probe) > "$scratch/probe" 2>&1 || fail "test_faults_lib probe: $(cat "$scratch/probe")"
fi

exit $((failures > 0))
