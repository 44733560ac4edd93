# cluster_lib.sh: what the Slurm and network-namespace tests share: packages, skipping, free ports, expected answers.
# Sourced, not run.
# shellcheck shell=bash

# Tests that cannot run here exit with this (SKIP_RETURN_CODE in tests/CMakeLists.txt).
SKIP_STATUS=77

skip() {
    echo "SKIPPED: $*"
    exit "$SKIP_STATUS"
}

# need_packages PACKAGE...: installs the Debian packages that are missing
# (scripts/test.sh has installed them already; a test run alone may not).
need_packages() {
    bash "$SOURCE/scripts/install-deps.sh" "$@" >/dev/null
}

# free_ports COUNT: COUNT TCP ports that nothing listens on now, one per line.
free_ports() {
    python3 -c '
import socket, sys
sockets = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print("\n".join(str(s.getsockname()[1]) for s in sockets))
for s in sockets:
    s.close()' "$1"
}

# square_sum N: the sum of the squares of 1..N mod 2^64, as square --sum prints it.
square_sum() {
    python3 -c 'import sys; n = int(sys.argv[1]); print(n * (n + 1) * (2 * n + 1) // 6 % 2**64)' "$1"
}

# file_square_sum FILE: the sum of the squares of the integers in FILE mod 2^64.
file_square_sum() {
    python3 -c 'import sys; print(sum(int(line) ** 2 for line in open(sys.argv[1])) % 2**64)' "$1"
}

# wait_until SECONDS COMMAND...: runs COMMAND every 0.2 s until it succeeds;
# fails after SECONDS.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}
