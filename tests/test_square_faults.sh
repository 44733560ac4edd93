#!/usr/bin/env bash
# test_square_faults.sh: square --input never crashes, hangs or lies (issue 14): long lines under a memory limit, devices, FIFOs, stdin, read errors, thread counts.
#
#   HPOOL_LAUNCH="mpirun -n 2 --oversubscribe" tests/test_square_faults.sh build/apps/square/square
#
# Each case checks the exit status, the one line on stderr naming the input
# and the cause, and that every other line's result is still printed. Prints
# one line per check and stops at the first failure with a non-zero status.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 PATH_TO_SQUARE" >&2
    exit 2
fi
SQUARE=$1
LAUNCH=${HPOOL_LAUNCH:-}
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
OUT=$SCRATCH/out
ERR=$SCRATCH/err
# shellcheck source=tests/check.sh
. "$(dirname "$0")/check.sh"

# Runs square under the launcher, stdin from /dev/null unless STDIN names a
# file; a run that takes more than 20 s is a hang (status 124).
run_square() {
    STATUS=0
    timeout 20 $LAUNCH "$SQUARE" "$@" >"$OUT" 2>"$ERR" <"${STDIN:-/dev/null}" || STATUS=$?
}

# The same under `ulimit -v` (virtual memory, KiB): 400 MB is enough for
# square and mpirun with their threads' stacks, but too little for getline,
# which doubles its buffer to 512 MB to hold a 300 MB line. The sanitizers
# reserve terabytes of address space, so their builds run unlimited.
MEMORY_LIMIT=400000
if ldd "$SQUARE" 2>/dev/null | grep 'libasan\|libtsan' >/dev/null; then
    MEMORY_LIMIT=unlimited
fi
run_square_limited() {
    STATUS=0
    # One malloc arena: glibc reserves 64 MB of address space for each
    # thread's own, which MPI's threads would spend the limit on.
    (ulimit -v "$MEMORY_LIMIT" && MALLOC_ARENA_MAX=1 exec timeout 20 $LAUNCH "$SQUARE" "$@") \
        >"$OUT" 2>"$ERR" </dev/null ||
        STATUS=$?
}

expect_status() {
    [ "$STATUS" -eq "$1" ] || fail "exit status $STATUS, expected $1"
}

expect_output() {
    if ! cmp -s "$OUT" "$1"; then
        echo "--- first differences (expected vs actual):"
        diff "$1" "$OUT" | head -n 10 || true
        fail "stdout differs from $(basename "$1")"
    fi
}

expect_no_output() {
    [ ! -s "$OUT" ] || fail "stdout is not empty: $(head -c 200 "$OUT")"
}

# The one square line on stderr is exactly this (mpirun adds its own lines,
# which do not start with "square: ").
expect_only_message() {
    local lines
    lines=$(grep '^square: ' "$ERR" || true)
    [ "$lines" = "$1" ] || fail "expected the one line '$1' on stderr, got '$lines'"
}

# ---- A 300 MB line under a memory limit ------------------------------------

# Lines 1, 2, then a 300 MB line: 70 KiB of x (so the first 64 KiB, which
# square checks for binary data, hold no NUL) and 300 MB of NULs (sparse: no
# disk, no memory); then 3, 4, 5.
LONG=$SCRATCH/long-line.txt
printf '1\n2\n' >"$LONG"
head -c 71680 /dev/zero | tr '\0' x >>"$LONG"
truncate -s +300M "$LONG"
printf '\n3\n4\n5\n' >>"$LONG"
LONG_MESSAGE="square: $LONG:3: line longer than 4096 bytes"

CHECK="a 300 MB line under ulimit -v $MEMORY_LIMIT: an empty output line, its neighbours squared, exit 1"
printf '%s\n' 1 4 '' 9 16 25 >"$SCRATCH/expected_long"
run_square_limited --input "$LONG"
expect_status 1
expect_output "$SCRATCH/expected_long"
expect_only_message "$LONG_MESSAGE"
pass

CHECK="--sum: the 300 MB line is left out of the sum (55), exit 1"
echo 55 >"$SCRATCH/expected_sum"
run_square_limited --sum --input "$LONG"
expect_status 1
expect_output "$SCRATCH/expected_sum"
expect_only_message "$LONG_MESSAGE"
pass

CHECK="--unordered: the 300 MB line prints nothing, exit 1"
printf '%s\t%s\n' 1 1 2 4 3 9 4 16 5 25 >"$SCRATCH/expected_unordered"
run_square_limited --unordered --input "$LONG"
expect_status 1
LC_ALL=C sort "$OUT" >"$SCRATCH/out.sorted"
mv "$SCRATCH/out.sorted" "$OUT"
expect_output "$SCRATCH/expected_unordered"
expect_only_message "$LONG_MESSAGE"
pass

# The limit is on the line without its end: 4096 bytes and a CRLF is good,
# 4097 is not, and neither is a last line of 4097 bytes with no newline.
EDGE=$SCRATCH/edge.txt
{
    printf '%4095s7\r\n' ''
    printf '%4096s7\n' ''
    printf '8\n'
    printf '%4096s9' ''
} >"$EDGE"
CHECK="a line of 4096 bytes is good, one of 4097 is too long, with or without a newline"
printf '%s\n' 49 '' 64 '' >"$SCRATCH/expected_edge"
run_square --input "$EDGE"
expect_status 1
expect_output "$SCRATCH/expected_edge"
expect_only_message "square: $EDGE:2: line longer than 4096 bytes
square: $EDGE:4: line longer than 4096 bytes"
pass

# ---- Devices, FIFOs and stdin ----------------------------------------------

for device in /dev/zero /dev/urandom; do
    CHECK="--input $device is refused at once, exit 2"
    run_square --input "$device"
    expect_status 2
    expect_no_output
    expect_only_message "square: $device: a character device, not a file, pipe or terminal"
    pass
done

# A regular file whose first 64 KiB hold a NUL is binary, refused at once:
# /proc/self/pagemap would otherwise be read for hours, bad line after bad line.
for binary in /proc/self/pagemap "$SCRATCH/nul-early.txt"; do
    printf '1\n2\n\0\n3\n' >"$SCRATCH/nul-early.txt"
    CHECK="--input $binary (binary data) is refused at once, exit 2"
    run_square --input "$binary"
    expect_status 2
    expect_no_output
    grep -q "^square: $binary: binary data (a NUL byte at byte [0-9]*), not lines of integers\$" "$ERR" ||
        fail "no binary-data line: $(cat "$ERR")"
    pass
done

CHECK="--input /dev/null is an empty input, exit 0"
run_square --input /dev/null
expect_status 0
expect_no_output
pass

FIFO=$SCRATCH/fifo
mkfifo "$FIFO"

CHECK="--input FIFO that nothing writes to: refused after 1 s, no hang, exit 2"
run_square --input "$FIFO"
expect_status 2
expect_no_output
expect_only_message "square: $FIFO: a FIFO that no process opened for writing within 1 s"
pass

CHECK="--input FIFO whose writer starts after square is read like a pipe"
printf '%s\n' 1 4 9 16 25 >"$SCRATCH/expected_five"
(sleep 0.3 && seq 5 >"$FIFO") &
run_square --input "$FIFO"
wait
expect_status 0
expect_output "$SCRATCH/expected_five"
pass

CHECK="--input FIFO with a writer that is silent for a while, then writes"
(exec 3>"$FIFO" && sleep 1.5 && seq 5 >&3) &
run_square --input "$FIFO"
wait
expect_status 0
expect_output "$SCRATCH/expected_five"
pass

CHECK="--input <(seq 5), a pipe"
if [ -n "$LAUNCH" ]; then
    # mpirun starts the ranks with fds 0-2 only: /dev/fd/63 is not theirs.
    echo "skip $CHECK: the launcher does not pass the pipe's descriptor on"
else
    run_square --input <(seq 5)
    expect_status 0
    expect_output "$SCRATCH/expected_five"
    pass
fi

CHECK="--input - reads a pipe on stdin"
seq 5 | STDIN=/dev/stdin run_square --input -
expect_status 0
expect_output "$SCRATCH/expected_five"
pass

CHECK="--input - reads stdin"
seq 5 >"$SCRATCH/five.txt"
STDIN=$SCRATCH/five.txt run_square --input -
expect_status 0
expect_output "$SCRATCH/expected_five"
pass

CHECK="--input - names stdin in its messages"
printf '1\nx\n3\n' >"$SCRATCH/bad.txt"
printf '%s\n' 1 '' 9 >"$SCRATCH/expected_bad"
STDIN=$SCRATCH/bad.txt run_square --input -
expect_status 1
expect_output "$SCRATCH/expected_bad"
expect_only_message "square: (standard input):2: not an integer"
pass

# ---- Read errors -----------------------------------------------------------

# Reading /proc/self/mem at offset 0 fails with EIO: address 0 is unmapped.
CHECK="a read error names the file and line, and exits 1"
run_square --input /proc/self/mem
expect_status 1
expect_no_output
expect_only_message "square: /proc/self/mem:1: read error: Input/output error"
pass

CHECK="--sum with a read error still exits 1"
run_square --sum --input /proc/self/mem
expect_status 1
expect_only_message "square: /proc/self/mem:1: read error: Input/output error"
pass

# ---- Threads ---------------------------------------------------------------

for threads in 4097 100000; do
    CHECK="--threads $threads is a usage error, exit 2"
    run_square --threads "$threads" 10
    expect_status 2
    expect_no_output
    grep -Fxq "square: --threads must be an integer in 1..4096, not '$threads'" "$ERR" ||
        fail "stderr lacks the --threads range"
    pass
done

# Threads that cannot start, and a bad HPOOL_THREADS, are the library's to
# detect: square prints its detail after "cannot start the pool", exit 1.
CHECK="--threads 4096 with threads that cannot start: one line, exit 1"
run_square_limited --threads 4096 --sum 10
if grep -q 'libgomp: Thread creation failed' "$ERR"; then
    fail "libgomp exited with 'Thread creation failed': the library did not check first"
elif [ "$MEMORY_LIMIT" = unlimited ]; then
    echo "skip $CHECK: no memory limit under the sanitizers"
else
    if [ "$STATUS" -eq 0 ]; then
        echo "skip $CHECK: 4096 threads started within $MEMORY_LIMIT KiB"
    else
        expect_status 1
        grep -q '^square: cannot start the pool: ' "$ERR" || fail "no 'square: cannot start the pool: ' line"
        pass
    fi
fi

for value in abc -3 0x10; do
    CHECK="HPOOL_THREADS=$value: one line naming it, exit 1"
    HPOOL_THREADS=$value run_square --sum 10
    expect_status 1
    expect_no_output
    grep -q '^square: cannot start the pool: .*HPOOL_THREADS' "$ERR" ||
        fail "no 'square: cannot start the pool: ...HPOOL_THREADS...' line"
    pass
done

echo "all square fault checks passed"
