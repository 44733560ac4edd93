# check.sh: the assertion helpers the shell tests share, as check.h is for the C ones. Sourced, not run.
# shellcheck shell=bash
# A test sets CHECK to what it checks and ERR to the file its last run's
# stderr went to; fail stops the test, showing both.

CHECK=""

# fail WHY...: reports the failed check and the last run's stderr, then exits 1.
fail() {
    echo "FAIL: $CHECK: $*"
    echo "--- stderr of the last run (first 40 lines):"
    head -n 40 "$ERR" 2>/dev/null || true
    exit 1
}

pass() {
    echo "ok   $CHECK"
}
