#!/usr/bin/env bash
# test_stop_resume.sh: square and metatags stopped by a signal exit 75 with one line and whole lines of output, and a rerun with the same --journal (also after kill -9, many times) prints exactly an uninterrupted run's output (issue 15).
#
#   HPOOL_LAUNCH="mpirun -n 2 --oversubscribe" tests/test_stop_resume.sh build/apps/square/square build/apps/metatags/metatags SOURCE_DIR
#
# Signals are sent once the run has shown progress (output or journal bytes),
# never after a fixed delay, so a slow machine does not turn a stop into a
# completed run. Plain runs get SIGTERM; under Open MPI's mpirun, mpirun
# gets SIGUSR1, which it forwards to every rank (a SIGTERM to mpirun kills
# the ranks); MPICH's mpiexec gets SIGTERM.
# Prints one line per check and stops at the first failure with status 1.
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: $0 PATH_TO_SQUARE PATH_TO_METATAGS SOURCE_DIR" >&2
    exit 2
fi
SQUARE=$1
METATAGS=$2
SOURCE_DIR=$3
LAUNCH=${HPOOL_LAUNCH:-}
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
OUT=$SCRATCH/out
ERR=$SCRATCH/err
# shellcheck source=tests/check.sh
. "$(dirname "$0")/check.sh"

# Open MPI's mpirun forwards SIGUSR1 to the ranks (SIGTERM would kill
# them). MPICH's mpiexec forwards SIGTERM and SIGUSR1, but then exits 0
# whatever the ranks did, so under MPICH the ranks get the signal
# themselves, as srun's tasks do.
if [ -n "$LAUNCH" ] && [ "${HPOOL_TEST_MPI:-openmpi}" != mpich ]; then
    STOP_SIGNAL=USR1
else
    STOP_SIGNAL=TERM
fi

# send_stop SIGNAL PID: the signal to the run started as PID: the launcher
# (or the program), or under MPICH every rank (mpiexec's grandchildren,
# under its hydra_pmi_proxy).
send_stop() {
    local proxy
    if [ -n "$LAUNCH" ] && [ "${HPOOL_TEST_MPI:-openmpi}" = mpich ]; then
        for proxy in $(pgrep -P "$2"); do
            pkill -"$1" -P "$proxy" 2>/dev/null || true
        done
    else
        kill -s "$1" "$2" 2>/dev/null || true
    fi
}

expect_status() {
    [ "$STATUS" -eq "$1" ] || fail "exit status $STATUS, expected $1"
}

# expect_same EXPECTED: stdout is EXPECTED, byte for byte.
expect_same() {
    if ! cmp -s "$OUT" "$1"; then
        echo "--- first differences (expected vs actual):"
        diff "$1" "$OUT" | head -n 10 || true
        fail "stdout differs from an uninterrupted run ($(wc -c <"$OUT") vs $(wc -c <"$1") bytes)"
    fi
}

# expect_stopped_prefix EXPECTED: stdout is a proper prefix of EXPECTED and
# ends with a whole line.
expect_stopped_prefix() {
    local size
    size=$(wc -c <"$OUT")
    [ "$size" -lt "$(wc -c <"$1")" ] || fail "stdout is the whole output: the stop came too late"
    cmp -s -n "$size" "$OUT" "$1" || fail "stdout is not a prefix of an uninterrupted run's"
    if [ "$size" -gt 0 ] && [ "$(tail -c 1 "$OUT" | od -An -c | tr -d ' ')" != '\n' ]; then
        fail "stdout ends inside a line"
    fi
}

# expect_stop_line PROGRAM UNIT JOURNAL_WORDS: the program's only line on
# stderr says it stopped (mpirun adds lines of its own, which do not start
# with "PROGRAM: ").
expect_stop_line() {
    local lines pattern
    lines=$(grep "^$1: " "$ERR" || true)
    pattern="^$1: stopped by SIG$STOP_SIGNAL after [0-9][0-9,]*( of [0-9][0-9,]*)? $2; $3\$"
    [ "$(printf '%s\n' "$lines" | wc -l)" -eq 1 ] || fail "expected one '$1:' line on stderr, got: $lines"
    printf '%s\n' "$lines" | grep -Eq "$pattern" || fail "not the stop line: $lines"
}

# wait_for_bytes FILE BYTES: until FILE holds at least BYTES, or 30 s.
wait_for_bytes() {
    local tries=0
    while [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -lt "$2" ]; do
        tries=$((tries + 1))
        [ "$tries" -lt 3000 ] || fail "$1 never reached $2 bytes"
        sleep 0.01
    done
}

# run_and_signal_at_output SIGNALS PROGRAM ARGS...: runs PROGRAM under the
# launcher with stdout into a pipe read here; after 200 KB of output, sends
# the launcher (or the program) each of SIGNALS, then reads the rest. Until
# then the program blocks on the full pipe, so the signal finds work left.
run_and_signal_at_output() {
    local signals=$1 pid signal
    shift
    rm -f "$SCRATCH/pipe"
    mkfifo "$SCRATCH/pipe"
    $LAUNCH "$@" >"$SCRATCH/pipe" 2>"$ERR" </dev/null &
    pid=$!
    {
        head -c 200000
        for signal in $signals; do
            send_stop "$signal" "$pid"
        done
        cat
    } <"$SCRATCH/pipe" >"$OUT"
    STATUS=0
    wait "$pid" || STATUS=$?
}

# run_and_signal_at_journal SIGNALS JOURNAL PROGRAM ARGS...: the same for a
# run with no output until the end (--sum): the signals go once JOURNAL
# holds completed work beyond its header.
run_and_signal_at_journal() {
    local signals=$1 journal=$2 pid signal
    shift 2
    $LAUNCH "$@" >"$OUT" 2>"$ERR" </dev/null &
    pid=$!
    wait_for_bytes "$journal" 2000
    for signal in $signals; do
        send_stop "$signal" "$pid"
    done
    STATUS=0
    wait "$pid" || STATUS=$?
}

run() {
    STATUS=0
    timeout 120 $LAUNCH "$@" >"$OUT" 2>"$ERR" </dev/null || STATUS=$?
}

# ---- The inputs and their uninterrupted outputs --------------------------------

SUM_N=20000000000
python3 -c "n = $SUM_N; print(n * (n + 1) * (2 * n + 1) // 6 % 2**64)" >"$SCRATCH/sum.expected"
CHECK="square --sum $SUM_N is the sum of the squares mod 2^64 (the reference the stops are compared with)"
run "$SQUARE" --sum "$SUM_N"
expect_status 0
expect_same "$SCRATCH/sum.expected"
pass

NUMBERS=$SCRATCH/numbers.txt
seq -1000000 2000000 >"$NUMBERS"
"$SQUARE" --input "$NUMBERS" >"$SCRATCH/listing.expected"

# Many copies of the bundled pages, the odd ones included (NULs, latin-1,
# unclosed tags): enough pages that a kill -9 finds some run and some not.
PAGES=$SCRATCH/pages
mkdir "$PAGES"
for copy in $(seq 1 150); do
    mkdir "$PAGES/copy$copy"
    cp -r "$SOURCE_DIR/tests/metatags/pages/." "$PAGES/copy$copy/"
done
METATAGS_STATUS=0
"$METATAGS" --no-progress "$PAGES" >"$SCRATCH/metatags.expected" 2>"$SCRATCH/metatags.expected_err" ||
    METATAGS_STATUS=$?

# ---- (a) a signal partway, then a rerun with the journal ------------------------

CHECK="square --sum: SIG$STOP_SIGNAL partway prints nothing, one line, exit 75"
JOURNAL=$SCRATCH/sum.journal
run_and_signal_at_journal "$STOP_SIGNAL" "$JOURNAL" "$SQUARE" --sum --journal "$JOURNAL" "$SUM_N"
expect_status 75
[ ! -s "$OUT" ] || fail "a stopped sum printed: $(head -c 100 "$OUT")"
expect_stop_line square items "rerun with the same --journal to resume"
pass

CHECK="square --sum: the rerun with the same --journal prints the uninterrupted sum"
run "$SQUARE" --sum --journal "$JOURNAL" "$SUM_N"
expect_status 0
expect_same "$SCRATCH/sum.expected"
pass

CHECK="square --input in order: SIG$STOP_SIGNAL partway prints a prefix of whole lines, one line, exit 75"
JOURNAL=$SCRATCH/listing.journal
run_and_signal_at_output "$STOP_SIGNAL" "$SQUARE" --input "$NUMBERS" --journal "$JOURNAL"
expect_status 75
expect_stopped_prefix "$SCRATCH/listing.expected"
expect_stop_line square items "rerun with the same --journal to resume"
pass

CHECK="square --input in order: the rerun with the same --journal prints the whole listing"
run "$SQUARE" --input "$NUMBERS" --journal "$JOURNAL"
expect_status 0
expect_same "$SCRATCH/listing.expected"
pass

CHECK="square N without --journal: SIG$STOP_SIGNAL partway says to rerun to start again, exit 75"
"$SQUARE" 3000000 >"$SCRATCH/range.expected"
run_and_signal_at_output "$STOP_SIGNAL" "$SQUARE" 3000000
expect_status 75
expect_stopped_prefix "$SCRATCH/range.expected"
expect_stop_line square items "rerun to start again"
pass

# ---- (d) a second signal stops at once -----------------------------------------

CHECK="square --input: a second SIG$STOP_SIGNAL stops at once, still exit 75 with the stop line"
JOURNAL=$SCRATCH/twice.journal
run_and_signal_at_output "$STOP_SIGNAL $STOP_SIGNAL" "$SQUARE" --input "$NUMBERS" --journal "$JOURNAL"
expect_status 75
expect_stopped_prefix "$SCRATCH/listing.expected"
grep -Eq "^square: stopped by SIG$STOP_SIGNAL after [0-9,]+( of [0-9,]+)? items; rerun with the same --journal to resume\$" "$ERR" ||
    fail "no stop line"
pass

CHECK="square --input: after the stop at once, the rerun with the journal prints the whole listing"
run "$SQUARE" --input "$NUMBERS" --journal "$JOURNAL"
expect_status 0
expect_same "$SCRATCH/listing.expected"
pass

# ---- (c) a journal of other options or inputs is refused ------------------------

# expect_refused PROGRAM JOURNAL [WHAT]: exit 2 and one line naming the
# journal (and saying WHAT differs).
expect_refused() {
    expect_status 2
    local lines
    lines=$(grep "^$1: " "$ERR" || true)
    [ "$(printf '%s\n' "$lines" | wc -l)" -eq 1 ] || fail "expected one '$1:' line, got: $lines"
    case "$lines" in
    *"$2"*) ;;
    *) fail "the line does not name the journal $2: $lines" ;;
    esac
    case "$lines" in
    *"${3:-}"*) ;;
    *) fail "the line does not say what differs ($3): $lines" ;;
    esac
    [ ! -s "$OUT" ] || fail "a refused run printed: $(head -c 100 "$OUT")"
}

CHECK="square: a journal of --sum is refused for the listing of the same input (exit 2, one line)"
run "$SQUARE" --input "$NUMBERS" --journal "$SCRATCH/sum.journal"
expect_refused square "$SCRATCH/sum.journal"
pass

CHECK="square: a journal of --input is refused for --unordered (exit 2, one line)"
run "$SQUARE" --unordered --input "$NUMBERS" --journal "$SCRATCH/listing.journal"
expect_refused square "$SCRATCH/listing.journal"
pass

CHECK="square: a journal is refused once its --input file was modified (exit 2, one line)"
cp "$NUMBERS" "$SCRATCH/edited.txt"
run "$SQUARE" --input "$SCRATCH/edited.txt" --journal "$SCRATCH/edited.journal"
expect_status 0
echo 7 >>"$SCRATCH/edited.txt"
run "$SQUARE" --input "$SCRATCH/edited.txt" --journal "$SCRATCH/edited.journal"
expect_refused square "$SCRATCH/edited.journal" "after \"input=$SCRATCH/edited.txt\" it had \"file="
pass

CHECK="square: a journal of N is refused for another N (exit 2, one line)"
run "$SQUARE" --sum --journal "$SCRATCH/small.journal" 1000
expect_status 0
run "$SQUARE" --sum --journal "$SCRATCH/small.journal" 1001
expect_refused square "$SCRATCH/small.journal"
pass

CHECK="metatags: a journal of the raw listing is refused for --format jsonl (exit 2, one line)"
run "$METATAGS" --no-progress --journal "$SCRATCH/metatags-format.journal" "$SOURCE_DIR/tests/metatags/pages/basic.html"
expect_status 0
run "$METATAGS" --no-progress --format jsonl --journal "$SCRATCH/metatags-format.journal" \
    "$SOURCE_DIR/tests/metatags/pages/basic.html"
expect_refused metatags "$SCRATCH/metatags-format.journal" 'it had "format=raw", and this call has "format=jsonl"'
pass

CHECK="square: a journal that cannot be written is one line, exit 1"
run "$SQUARE" --sum --journal "$SCRATCH/no-such-directory/journal" 1000
expect_status 1
[ "$(grep -c '^square: ' "$ERR")" -eq 1 ] || fail "expected one line on stderr"
grep -q "no-such-directory" "$ERR" || fail "the line does not name the journal"
pass

# ---- (b) kill -9 at random moments, then reruns until one completes ------------

# kill_rounds JOURNAL ROUNDS MAX_DELAY_MS PROGRAM ARGS...: ROUNDS times,
# starts the command with JOURNAL in a session of its own (setsid) and kills
# the whole session with SIGKILL after a random delay (mpirun puts each rank
# in a process group of its own, but they stay in its session: a kill of
# mpirun's group alone left rank 0 writing the journal beside the next run);
# then reruns it unkilled. Leaves the last run's status
# and output in STATUS and OUT.
kill_rounds() {
    local journal=$1 rounds=$2 max_delay_ms=$3 round pid group delay_ms living
    shift 3
    rm -f "$journal"
    RANDOM=$((${SEED:-$$} % 32768))
    for round in $(seq 1 "$rounds"); do
        # A background job of a script leads no process group, so setsid
        # makes the new session in place: its pid is its group's.
        setsid $LAUNCH "$@" >"$OUT" 2>"$ERR" </dev/null &
        pid=$!
        delay_ms=$((RANDOM % max_delay_ms))
        sleep "$((delay_ms / 1000)).$(printf '%03d' $((delay_ms % 1000)))"
        # Until setsid has run, the group is still this script's.
        while kill -0 "$pid" 2>/dev/null && [ "$(ps -o pgid= -p "$pid" | tr -d ' ')" != "$pid" ]; do
            sleep 0.001
        done
        pkill -9 -s "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        # Ranks whose parent died with them linger as zombies until init
        # reaps them; any other process still there outlived the kill.
        local waited
        for waited in $(seq 50); do
            living=$(ps -o pid=,stat=,args= -s "$pid" | awk '$2 !~ /^Z/') || true
            [ -n "$living" ] || break
            sleep 0.1
        done
        [ -z "$living" ] || fail "round $round: processes of session $pid outlived kill -9: $living"
    done
    run "$@"
}

CHECK="square --sum: 10 kill -9 at random moments, then a rerun with the journal prints the uninterrupted sum"
kill_rounds "$SCRATCH/kill-sum.journal" 10 1500 "$SQUARE" --sum --journal "$SCRATCH/kill-sum.journal" "$SUM_N"
expect_status 0
expect_same "$SCRATCH/sum.expected"
pass

CHECK="square --input in order: 10 kill -9 at random moments, then a rerun prints the whole listing"
kill_rounds "$SCRATCH/kill-listing.journal" 10 1000 "$SQUARE" --input "$NUMBERS" \
    --journal "$SCRATCH/kill-listing.journal"
expect_status 0
expect_same "$SCRATCH/listing.expected"
pass

CHECK="metatags: 10 kill -9 at random moments, then a rerun prints the uninterrupted listing and reports"
kill_rounds "$SCRATCH/kill-metatags.journal" 10 800 "$METATAGS" --no-progress \
    --journal "$SCRATCH/kill-metatags.journal" "$PAGES"
expect_status "$METATAGS_STATUS"
expect_same "$SCRATCH/metatags.expected"
grep -v '^metatags: ' "$ERR" >"$SCRATCH/launcher.err" || true
grep '^metatags: ' "$ERR" | sort >"$SCRATCH/metatags.err.sorted" || true
sort "$SCRATCH/metatags.expected_err" | cmp -s - "$SCRATCH/metatags.err.sorted" ||
    fail "the reports on stderr differ from an uninterrupted run's"
pass

# ---- metatags stopped by a signal ------------------------------------------

CHECK="metatags in order: SIG$STOP_SIGNAL partway prints a prefix of whole lines, one line, exit 75"
for copy in $(seq 151 1500); do
    mkdir "$PAGES/copy$copy"
    cp "$SOURCE_DIR/tests/metatags/pages/basic.html" "$SOURCE_DIR/tests/metatags/pages/big-tag.html" \
        "$PAGES/copy$copy/"
done
"$METATAGS" --no-progress "$PAGES" >"$SCRATCH/metatags.expected" 2>/dev/null || true
JOURNAL=$SCRATCH/metatags.journal
run_and_signal_at_output "$STOP_SIGNAL" "$METATAGS" --no-progress --journal "$JOURNAL" "$PAGES"
expect_status 75
expect_stopped_prefix "$SCRATCH/metatags.expected"
grep -Eq "^metatags: stopped by SIG$STOP_SIGNAL after [0-9,]+ of [0-9,]+ pages; rerun with the same --journal to resume\$" "$ERR" ||
    fail "no stop line"
grep -q '^metatags: .*canceled' "$ERR" && fail "canceled pages were reported one by one"
pass

CHECK="metatags: the rerun with the same --journal prints the whole listing"
run "$METATAGS" --no-progress --journal "$JOURNAL" "$PAGES"
expect_same "$SCRATCH/metatags.expected"
pass

CHECK="metatags --count: SIG$STOP_SIGNAL partway prints no count, one line, exit 75"
JOURNAL=$SCRATCH/metatags-count.journal
$LAUNCH "$METATAGS" --no-progress --count --journal "$JOURNAL" "$PAGES" >"$OUT" 2>"$ERR" </dev/null &
pid=$!
# The journal appears when the call starts: by then every rank catches the
# signal (under mpirun, one sent earlier could find a rank still starting).
wait_for_bytes "$JOURNAL" 1
kill -s "$STOP_SIGNAL" "$pid" 2>/dev/null || true
STATUS=0
wait "$pid" || STATUS=$?
if [ "$STATUS" -eq 75 ]; then
    [ ! -s "$OUT" ] || fail "a stopped count printed: $(head -c 100 "$OUT")"
    grep -Eq "^metatags: stopped by SIG$STOP_SIGNAL after [0-9,]+ of [0-9,]+ pages; " "$ERR" || fail "no stop line"
    grep -q '^metatags: .*canceled' "$ERR" && fail "canceled pages were reported one by one"
    pass
else
    # The count finished before the signal: nothing to check but its status.
    [ "$STATUS" -eq 0 ] || [ "$STATUS" -eq 1 ] || fail "exit status $STATUS"
    echo "ok   $CHECK (the count finished before the signal; not checked)"
fi

CHECK="metatags --count: the rerun with the same --journal prints an uninterrupted run's counts"
run "$METATAGS" --no-progress --count "$PAGES"
cp "$OUT" "$SCRATCH/metatags-count.expected"
EXPECTED_STATUS=$STATUS
run "$METATAGS" --no-progress --count --journal "$JOURNAL" "$PAGES"
expect_status "$EXPECTED_STATUS"
expect_same "$SCRATCH/metatags-count.expected"
[ -s "$OUT" ] || fail "no counts"
pass

# ---- An input that never comes: a stop ends the wait -----------------------
# square --input - and metatags @- on an idle pipe (a writer that writes
# nothing) wait for it; a stop must end that wait with the stop line and 75.
# Plain runs: the signal goes once the process catches it (SigCgt), so that
# it cannot come before the handler.
wait_for_handler() {
    local pid=$1 bit=$2 tries=0 mask
    while [ $tries -lt 300 ]; do
        mask=$(awk '/^SigCgt:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
        if [ -n "$mask" ] && [ $(( (16#$mask >> (bit - 1)) & 1 )) -eq 1 ]; then
            return 0
        fi
        sleep 0.1
        tries=$((tries + 1))
    done
    return 1
}
if [ -z "$LAUNCH" ]; then
    for program in square metatags; do
        CHECK="$program on an idle pipe: SIGTERM ends the wait, one line, exit 75"
        rm -f "$SCRATCH/idle"
        mkfifo "$SCRATCH/idle"
        sleep 120 >"$SCRATCH/idle" &
        writer=$!
        if [ "$program" = square ]; then
            "$SQUARE" --input - <"$SCRATCH/idle" >"$OUT" 2>"$ERR" &
        else
            "$METATAGS" --no-progress @- <"$SCRATCH/idle" >"$OUT" 2>"$ERR" &
        fi
        pid=$!
        wait_for_handler "$pid" 15 || fail "$program never caught SIGTERM"
        sleep 0.5 # into the wait for input
        kill -TERM "$pid"
        STATUS=0
        timeout 30 tail --pid="$pid" -f /dev/null || fail "$program still waits 30 s after SIGTERM"
        wait "$pid" || STATUS=$?
        kill "$writer" 2>/dev/null || true
        wait "$writer" 2>/dev/null || true
        expect_status 75
        unit=items
        [ "$program" = metatags ] && unit=pages
        grep -Eq "^$program: stopped by SIGTERM after 0 $unit; rerun to start again\$" "$ERR" ||
            fail "not the stop line: $(cat "$ERR")"
        pass
    done

    CHECK="metatags @FIFO with no writer yet: SIGTERM ends the wait for one, one line, exit 75"
    rm -f "$SCRATCH/idle"
    mkfifo "$SCRATCH/idle"
    "$METATAGS" --no-progress "@$SCRATCH/idle" >"$OUT" 2>"$ERR" &
    pid=$!
    wait_for_handler "$pid" 15 || fail "metatags never caught SIGTERM"
    sleep 0.5 # into the wait for a writer
    kill -TERM "$pid"
    STATUS=0
    if ! timeout 30 tail --pid="$pid" -f /dev/null; then
        exec 9<>"$SCRATCH/idle" # a writer at last, so that the blocked open returns
        fail "metatags still waits 30 s after SIGTERM"
    fi
    wait "$pid" || STATUS=$?
    expect_status 75
    grep -Eq "^metatags: stopped by SIGTERM after 0 pages; rerun to start again\$" "$ERR" ||
        fail "not the stop line: $(cat "$ERR")"
    pass

    # A signal that comes before the pool exists (during MPI_Init, say) is
    # held, then stops the pool as soon as it is made: it must neither kill
    # the program (exit 138) nor be lost (exit 0 after a whole run). It is
    # made pending before exec, with the signal blocked, which the program
    # unblocks first thing.
    for program in square metatags; do
        CHECK="$program: SIGUSR1 pending from before the pool stops it, one line, exit 75"
        if [ "$program" = square ]; then
            command=("$SQUARE" 1000)
            unit=items
        else
            command=("$METATAGS" --no-progress "$PAGES")
            unit=pages
        fi
        STATUS=0
        python3 -c '
import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
os.kill(os.getpid(), signal.SIGUSR1)
os.execv(sys.argv[1], sys.argv[1:])' "${command[@]}" >"$OUT" 2>"$ERR" || STATUS=$?
        expect_status 75
        grep -Eq "^$program: stopped by SIGUSR1 after 0( of [0-9,]+)? $unit; rerun to start again\$" "$ERR" ||
            fail "not the stop line: $(cat "$ERR")"
        pass
    done
fi
