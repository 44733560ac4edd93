#!/usr/bin/env bash
# test_square.sh: end-to-end checks of the square app against answers computed independently by python3.
#
#   HPOOL_LAUNCH="mpirun -n 2 --oversubscribe" tests/test_square.sh build/apps/square/square
#
# HPOOL_LAUNCH is the launcher prefix ("" or unset for a plain run); it is used
# unquoted so that it splits into words. Prints one line per check and stops
# at the first failure with a non-zero status.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 PATH_TO_SQUARE" >&2
    exit 2
fi
SQUARE=$1
LAUNCH=${HPOOL_LAUNCH:-}
PYTHON=${PYTHON:-python3}
DATA_DIR=$(cd "$(dirname "$0")/../data" && pwd)
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

OUT=$SCRATCH/out
ERR=$SCRATCH/err
# shellcheck source=tests/check.sh
. "$(dirname "$0")/check.sh"

# Runs square under the launcher; its output lands in $OUT and $ERR, its exit
# status in $STATUS. stdin is closed so mpirun never waits on the terminal.
run_square() {
    STATUS=0
    $LAUNCH "$SQUARE" "$@" >"$OUT" 2>"$ERR" </dev/null || STATUS=$?
}

# The same without the launcher, for the minor usage errors: every rank parses
# the same argv the same way, and mpirun adds about two seconds to each run
# that exits non-zero, so these would only slow the test down.
run_square_plain() {
    STATUS=0
    "$SQUARE" "$@" >"$OUT" 2>"$ERR" </dev/null || STATUS=$?
}

expect_status() {
    [ "$STATUS" -eq "$1" ] || fail "exit status $STATUS, expected $1"
}

# Compares $OUT with an expected file, showing the first difference.
expect_output() {
    if ! cmp -s "$OUT" "$1"; then
        echo "--- first differences (expected vs actual):"
        diff "$1" "$OUT" | head -n 10 || true
        fail "stdout differs from $(basename "$1")"
    fi
}

# Compares $OUT, sorted, with the sorted expected file: for unordered output.
expect_output_sorted() {
    LC_ALL=C sort "$OUT" >"$SCRATCH/out.sorted"
    LC_ALL=C sort "$1" >"$SCRATCH/expected.sorted"
    if ! cmp -s "$SCRATCH/out.sorted" "$SCRATCH/expected.sorted"; then
        echo "--- first differences, both sorted (expected vs actual):"
        diff "$SCRATCH/expected.sorted" "$SCRATCH/out.sorted" | head -n 10 || true
        fail "sorted stdout differs from $(basename "$1")"
    fi
}

expect_stderr_line() {
    grep -Fxq -- "$1" "$ERR" || fail "stderr lacks the line '$1'"
}

expect_stderr_mentions() {
    grep -Fq -- "$1" "$ERR" || fail "stderr does not mention '$1'"
}

# Usage errors are printed by one rank only, however many ranks run.
expect_one_square_message() {
    local count
    count=$(grep -c '^square: ' "$ERR" || true)
    [ "$count" -eq 1 ] || fail "expected one 'square: ' message on stderr, got $count"
}

# Writes python's squares of the integers 1..n, one per line, to a file.
python_squares() {
    "$PYTHON" -c 'import sys
n = int(sys.argv[1])
sys.stdout.write("".join(f"{x * x}\n" for x in range(1, n + 1)))' "$1" >"$2"
}

# ---- Ranges, in order ------------------------------------------------------

CHECK="square 14 prints 1 4 9 ... 196"
python_squares 14 "$SCRATCH/expected14"
[ "$(wc -l <"$SCRATCH/expected14")" -eq 14 ] || fail "python's expected file is wrong"
run_square 14
expect_status 0
expect_output "$SCRATCH/expected14"
pass

CHECK="square 0 prints nothing"
run_square 0
expect_status 0
[ ! -s "$OUT" ] || fail "stdout is not empty"
pass

CHECK="square 100000 matches python"
python_squares 100000 "$SCRATCH/expected100000"
run_square 100000
expect_status 0
expect_output "$SCRATCH/expected100000"
pass

CHECK="--threads 2 gives the same squares"
run_square --threads 2 100000
expect_status 0
expect_output "$SCRATCH/expected100000"
pass

for chunksize in 7 1000000; do
    CHECK="--chunksize $chunksize gives the same squares"
    run_square --chunksize "$chunksize" 100000
    expect_status 0
    expect_output "$SCRATCH/expected100000"
    pass
done

# One item per task means one task per item: kept small so that it stays quick
# with four ranks on a small machine.
CHECK="--chunksize 1 gives the same squares"
python_squares 5000 "$SCRATCH/expected5000"
run_square --chunksize=1 5000
expect_status 0
expect_output "$SCRATCH/expected5000"
pass

# ---- Ranges, unordered -----------------------------------------------------

CHECK="--unordered 1000 gives each x<TAB>x² exactly once"
"$PYTHON" -c 'print("".join(f"{x}\t{x * x}\n" for x in range(1, 1001)), end="")' \
    >"$SCRATCH/expected_unordered"
run_square --unordered 1000
expect_status 0
expect_output_sorted "$SCRATCH/expected_unordered"
pass

CHECK="--unordered --chunksize 7 1000 gives each x<TAB>x² exactly once"
run_square --unordered --chunksize 7 1000
expect_status 0
expect_output_sorted "$SCRATCH/expected_unordered"
pass

# ---- Sums ------------------------------------------------------------------

# The sum of the squares modulo 2^64, by python's big integers.
python_sum() {
    "$PYTHON" -c 'import sys; print(sum(x * x for x in range(1, int(sys.argv[1]) + 1)) % 2**64)' "$1"
}

CHECK="--sum 1000000 matches python"
python_sum 1000000 >"$SCRATCH/expected_sum"
run_square --sum 1000000
expect_status 0
expect_output "$SCRATCH/expected_sum"
pass

for chunksize in 1 7 1000000; do
    CHECK="--sum --chunksize $chunksize 100000 matches python"
    python_sum 100000 >"$SCRATCH/expected_sum"
    run_square --sum --chunksize "$chunksize" 100000
    expect_status 0
    expect_output "$SCRATCH/expected_sum"
    pass
done

CHECK="--sum 300000000 wraps like n(n+1)(2n+1)/6 mod 2^64"
n=300000000
"$PYTHON" -c 'import sys; n = int(sys.argv[1]); print(n * (n + 1) * (2 * n + 1) // 6 % 2**64)' "$n" \
    >"$SCRATCH/expected_sum"
run_square --sum "$n"
expect_status 0
expect_output "$SCRATCH/expected_sum"
pass

# ---- --input ---------------------------------------------------------------

# Good lines mixed with every kind of bad one; line numbers matter below.
MIXED=$SCRATCH/mixed.txt
printf '%s\n' \
    '3' \
    '  -4	' \
    'abc' \
    '99999999999999999999' \
    '' \
    $'7\r' \
    '+12' \
    '1.5' \
    '9223372036854775808' \
    '-9223372036854775809' \
    '12abc' \
    '10' >"$MIXED"
# In order, a bad line leaves its output line empty: line k is still line k.
printf '%s\n' 9 16 '' '' '' 49 144 '' '' '' '' 100 >"$SCRATCH/expected_mixed"
printf '%s\t%s\n' 3 9 -4 16 7 49 12 144 10 100 >"$SCRATCH/expected_mixed_unordered"

expect_mixed_errors() {
    expect_stderr_line "square: $MIXED:3: not an integer"
    expect_stderr_line "square: $MIXED:4: integer overflow"
    expect_stderr_line "square: $MIXED:5: not an integer"
    expect_stderr_line "square: $MIXED:8: not an integer"
    expect_stderr_line "square: $MIXED:9: integer overflow"
    expect_stderr_line "square: $MIXED:10: integer overflow"
    expect_stderr_line "square: $MIXED:11: not an integer"
    local count
    count=$(grep -c "^square: $MIXED:" "$ERR" || true)
    [ "$count" -eq 7 ] || fail "expected 7 bad lines reported, got $count"
}

CHECK="--input with bad lines prints the good ones in order, an empty line for each bad one, names each bad FILE:LINE, exits 1"
run_square --input "$MIXED"
expect_status 1
expect_output "$SCRATCH/expected_mixed"
expect_mixed_errors
pass

CHECK="--input --unordered with bad lines"
run_square --unordered --input "$MIXED"
expect_status 1
expect_output_sorted "$SCRATCH/expected_mixed_unordered"
expect_mixed_errors
pass

CHECK="--input --sum with bad lines sums the good ones"
echo $((9 + 16 + 49 + 144 + 100)) >"$SCRATCH/expected_sum"
run_square --sum --input "$MIXED"
expect_status 1
expect_output "$SCRATCH/expected_sum"
expect_mixed_errors
pass

CHECK="--input --chunksize 1 with bad lines"
run_square --chunksize 1 --input "$MIXED"
expect_status 1
expect_output "$SCRATCH/expected_mixed"
expect_mixed_errors
pass

# Squares beyond 2^64 must be exact.
BIG=$SCRATCH/big.txt
printf '%s\n' 0 4294967295 4294967296 3037000500 5000000000 -5000000000 \
    9223372036854775807 -9223372036854775808 -1 >"$BIG"

CHECK="--input squares beyond 2^64 exactly"
"$PYTHON" -c 'import sys
for line in open(sys.argv[1]): print(int(line) ** 2)' "$BIG" >"$SCRATCH/expected_big"
run_square --input "$BIG"
expect_status 0
expect_output "$SCRATCH/expected_big"
pass

CHECK="--input --unordered prints x<TAB>x² exactly"
"$PYTHON" -c 'import sys
for line in open(sys.argv[1]): print(f"{int(line)}\t{int(line) ** 2}")' "$BIG" \
    >"$SCRATCH/expected_big_unordered"
run_square --unordered --input "$BIG"
expect_status 0
expect_output_sorted "$SCRATCH/expected_big_unordered"
pass

CHECK="--input --sum wraps modulo 2^64"
"$PYTHON" -c 'import sys
print(sum(int(line) ** 2 for line in open(sys.argv[1])) % 2**64)' "$BIG" >"$SCRATCH/expected_sum"
run_square --sum --input "$BIG"
expect_status 0
expect_output "$SCRATCH/expected_sum"
pass

# A file longer than the window of chunks in flight, so the producer must be
# throttled and resumed, with no final newline.
CHECK="--input of 20000 lines without a final newline"
"$PYTHON" -c 'print("\n".join(str(x - 10000) for x in range(20000)), end="")' >"$SCRATCH/long.txt"
"$PYTHON" -c 'print("".join(f"{(x - 10000) ** 2}\n" for x in range(20000)), end="")' \
    >"$SCRATCH/expected_long"
run_square --input "$SCRATCH/long.txt"
expect_status 0
expect_output "$SCRATCH/expected_long"
pass

CHECK="--input of an empty file prints nothing"
: >"$SCRATCH/empty.txt"
run_square --input "$SCRATCH/empty.txt"
expect_status 0
[ ! -s "$OUT" ] || fail "stdout is not empty"
pass

CHECK="the bundled data/numbers.txt"
"$PYTHON" -c 'import sys
for line in open(sys.argv[1]): print(int(line) ** 2)' "$DATA_DIR/numbers.txt" >"$SCRATCH/expected_numbers"
run_square --input "$DATA_DIR/numbers.txt"
expect_status 0
expect_output "$SCRATCH/expected_numbers"
pass

# ---- Usage errors ----------------------------------------------------------

CHECK="a missing --input file exits 2 and names the file"
run_square --input "$SCRATCH/no-such-file.txt"
expect_status 2
expect_stderr_mentions "$SCRATCH/no-such-file.txt"
[ ! -s "$OUT" ] || fail "stdout is not empty"
pass

CHECK="a directory as --input file exits 2 and names it"
run_square_plain --input "$SCRATCH"
expect_status 2
expect_stderr_line "square: $SCRATCH: Is a directory"
pass

CHECK="square -5 exits 2"
run_square -5
expect_status 2
expect_stderr_mentions "-5"
expect_one_square_message
pass

CHECK="square abc exits 2"
run_square abc
expect_status 2
expect_stderr_mentions "abc"
expect_one_square_message
pass

CHECK="an unknown option exits 2"
run_square --bogus 5
expect_status 2
expect_stderr_mentions "--bogus"
expect_one_square_message
pass

CHECK="a missing operand exits 2"
run_square_plain --sum
expect_status 2
expect_one_square_message
pass

for bad in "--chunksize 0 10" "--chunksize x 10" "--threads 0 10" "--threads -1 10" "--threads 4097 10" \
    "10 --chunksize" "--input" "10 11" "--input $MIXED 10" "10000000000000000000"; do
    CHECK="'$bad' exits 2"
    # shellcheck disable=SC2086 # split into words, the way a shell would
    run_square_plain $bad
    expect_status 2
    expect_one_square_message
    pass
done

CHECK="--sum with --unordered exits 2"
run_square_plain --sum --unordered 10
expect_status 2
pass

CHECK="--help exits 0 and documents the options and environment"
run_square --help
expect_status 0
for word in --sum --unordered --input --chunksize --threads HPOOL_THREADS OMP_NUM_THREADS \
    SLURM_CPUS_PER_TASK mpirun "exit status"; do
    grep -Fq -- "$word" "$OUT" || fail "--help does not mention '$word'"
done
count=$(grep -c '^usage: square' "$OUT" || true)
[ "$count" -eq 1 ] || fail "--help printed $count times, expected once"
pass

CHECK="--version prints the library's version from include/hpool.h, once"
header="$(dirname "$0")/../include/hpool.h"
version=$(for part in MAJOR MINOR PATCH; do sed -n "s/^#define HPOOL_VERSION_$part \([0-9]*\)$/\1/p" "$header"; done | paste -sd.)
run_square --version
expect_status 0
[ "$(cat "$OUT")" = "square (hpool) $version" ] || fail "--version printed '$(cat "$OUT")', expected 'square (hpool) $version'"
pass

echo "all square checks passed"
