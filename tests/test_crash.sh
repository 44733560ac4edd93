#!/usr/bin/env bash
# test_crash.sh: the crash report names rank, host, thread, function and item when a map function dies of SIGSEGV, SIGABRT or SIGFPE, and the signal still ends the run; HPOOL_CRASH_REPORT=0 turns it off; HPOOL_SLOW_ITEM reports an item that runs too long.
# Usage: test_crash.sh TEST_CRASH   (HPOOL_LAUNCH: the launcher, or empty for a plain run)
set -uo pipefail
program=$1
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
if [ -n "${HPOOL_LAUNCH:-}" ]; then crash_rank=1; item='[0-9]+'; else crash_rank=0; item=17; fi

run() { # mode: stderr of a run in $err, its status in $status
  err=$(env "${extra[@]}" ${HPOOL_LAUNCH:-} "$program" "$1" 2>&1 >/dev/null)
  status=$?
}

extra=(HPOOL_CRASH_REPORT=)
for mode in segv abort fpe; do
  case $mode in segv) sig=SIGSEGV ;; abort) sig=SIGABRT ;; fpe) sig=SIGFPE ;; esac
  run $mode
  [ "$status" -ne 0 ] || fail "$mode: the run exited 0 after a crash"
  line=$(grep -E "^hpool: rank $crash_rank \([^)]+\) thread [0-9]+: $sig in map function \"crasher\" at item $item$" <<<"$err")
  [ -n "$line" ] && echo "ok   $mode: $line" || fail "$mode: no crash line for $sig on rank $crash_rank in: $err"
done

run reduce
[ "$status" -ne 0 ] || fail "reduce: the run exited 0 after a crash"
line=$(grep -E '^hpool: rank [0-9]+ \([^)]+\) (thread [0-9]+|engine thread): SIGSEGV in reduce function of "dies" at key "boom"$' <<<"$err")
[ -n "$line" ] && echo "ok   reduce: $line" || fail "reduce: no crash line in: $err"

extra=(HPOOL_CRASH_REPORT=0)
run off
[ "$status" -ne 0 ] && [ "$status" -ne 126 ] && [ "$status" -ne 127 ] || fail "off: the run exited $status: $err"
! grep -q "^hpool: rank .*SIGSEGV in map function" <<<"$err" && echo "ok   HPOOL_CRASH_REPORT=0: no crash line" ||
  fail "HPOOL_CRASH_REPORT=0 still printed: $err"

extra=(HPOOL_SLOW_ITEM=1)
run slow
[ "$status" -eq 0 ] || fail "slow: exited $status: $err"
line=$(grep -E '^hpool: rank [0-9]+ \([^)]+\) thread [0-9]+: still running in map function "crasher" at item 3 after [0-9]+ s' <<<"$err")
[ -n "$line" ] && echo "ok   slow item: $line" || fail "slow: no slow-item line in: $err"

extra=(HPOOL_SLOW_ITEM=abc)
run slow
grep -q 'HPOOL_SLOW_ITEM is "abc"' <<<"$err" && [ "$status" -ne 0 ] && echo "ok   HPOOL_SLOW_ITEM=abc is refused" ||
  fail "HPOOL_SLOW_ITEM=abc: status $status: $err"

extra=(HPOOL_CRASH_REPORT=maybe)
run slow
grep -q 'HPOOL_CRASH_REPORT is "maybe"' <<<"$err" && [ "$status" -ne 0 ] && echo "ok   HPOOL_CRASH_REPORT=maybe is refused" ||
  fail "HPOOL_CRASH_REPORT=maybe: status $status: $err"

[ "$failures" -eq 0 ] && echo "crash: all checks passed"
exit $((failures != 0))
