#!/usr/bin/env bash
# test_metatags_corpus.sh: metatags --count over the real HTML of Debian's python3.11-doc equals Python's re over the same files.
#   test_metatags_corpus.sh METATAGS SOURCE_DIR [HTML_DIR]
set -uo pipefail
metatags=$(realpath "$1")
reference=$2/tests/metatags/reference.py
corpus=${3:-/usr/share/doc/python3.11/html}
launch=${HPOOL_LAUNCH:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ ! -d "$corpus" ]; then
  echo "FAIL: $corpus is missing: scripts/install-deps.sh installs python3.11-doc"
  exit 1
fi
pages=$(find -L "$corpus" \( -name '*.html' -o -name '*.htm' \) | wc -l)
[ "$pages" -gt 100 ] || { echo "FAIL: only $pages pages under $corpus"; exit 1; }

/usr/bin/python3 "$reference" --count "$corpus" >"$work/expected"
$launch "$metatags" --no-progress --count "$corpus" </dev/null >"$work/count" 2>"$work/err"
status=$?
failures=0
[ "$status" -eq 0 ] || { echo "FAIL: exit status $status: $(grep '^metatags' "$work/err" | head -3)"; failures=1; }
if ! cmp -s "$work/count" "$work/expected"; then
  echo "FAIL: --count differs from Python's re.findall"
  diff "$work/count" "$work/expected" | head -5 | cut -c1-200
  failures=1
fi
# And the listing: as many lines as Python finds matches.
$launch "$metatags" --no-progress "$corpus" </dev/null >"$work/list" 2>/dev/null
total=$(awk -F'\t' '{ sum += $1 } END { print sum }' "$work/expected")
[ "$(wc -l <"$work/list")" -eq "$total" ] || { echo "FAIL: $(wc -l <"$work/list") lines listed, Python finds $total"; failures=1; }
[ "$failures" -eq 0 ] && echo "metatags agrees with Python over $pages pages ($total matches, $(wc -l <"$work/expected") distinct)"
exit "$failures"
