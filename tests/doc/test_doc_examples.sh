#!/usr/bin/env bash
# test_doc_examples.sh: the examples of hpool.h and the README, compiled from their text by the build, print what they say they print.
# Usage: test_doc_examples.sh HEADER_EXAMPLE README_EXAMPLE   (HPOOL_LAUNCH: the launcher, or empty)
set -euo pipefail
fail() { echo "test_doc_examples: $*" >&2; exit 1; }

squares=$(for i in $(seq 0 9); do echo $((i * i)); done)
cubes=$(for i in $(seq 0 9); do echo $((i * i * i)); done)
out=$(${HPOOL_LAUNCH:-} "$1") || fail "the hpool.h example exited with $?"
[ "$out" = "$squares" ] || fail "the hpool.h example printed: $out"
out=$(${HPOOL_LAUNCH:-} "$2") || fail "the README example exited with $?"
[ "$out" = "$cubes" ] || fail "the README example printed: $out"
echo "ok: the hpool.h and README examples print their squares and cubes"
