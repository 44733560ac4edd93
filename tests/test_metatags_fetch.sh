#!/usr/bin/env bash
# test_metatags_fetch.sh: metatags fetching pages from a local HTTP server: matches as for the files, a 404, a refused connection, a timeout, concurrent transfers.
#   test_metatags_fetch.sh METATAGS SOURCE_DIR
set -uo pipefail
metatags=$(realpath "$1")
cases_dir=$2/tests/metatags
launch=${HPOOL_LAUNCH:-}
work=$(mktemp -d)
server_pid=
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

/usr/bin/python3 "$cases_dir/server.py" "$cases_dir" "$work/port" &
server_pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || { echo "FAIL: the HTTP server did not start"; exit 1; }
base=http://127.0.0.1:$(cat "$work/port")
# A port nobody listens on: bound, then closed.
refused=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# Every golden page, by URL, with a local file among them.
(cd "$cases_dir" && find pages -name '*.htm*' | LC_ALL=C sort) >"$work/pages"
grep -v '^pages/basic.html$' "$work/pages" | sed "s|^|$base/|" >"$work/urls"
echo "$cases_dir/pages/basic.html" >>"$work/urls"
(cd "$cases_dir" && /usr/bin/python3 reference.py $(grep -v '^pages/basic.html$' "$work/pages") pages/basic.html) |
  sed "s|^pages/basic.html|$cases_dir/pages/basic.html|; t; s|^|$base/|" >"$work/expected"
$launch "$metatags" --no-progress "@$work/urls" </dev/null >"$work/out" 2>"$work/raw-err"
status=$?
[ "$status" -eq 1 ] || fail "pages: exit status $status, expected 1 (three pages are reported)"
cmp -s "$work/out" "$work/expected" || { fail "pages: output differs from Python's"; diff "$work/out" "$work/expected" | head -5 | cut -c1-200; }
grep '^metatags: ' "$work/raw-err" >"$work/err"
sed "s|metatags: pages/|metatags: $base/pages/|" "$cases_dir/golden/reports.err" | cmp -s - "$work/err" ||
  fail "pages: reports differ: $(cat "$work/err")"

# Failures: a 404, a refused connection, a server that never answers.
printf '%s\n' "$base/pages/no-such-page.html" "http://127.0.0.1:$refused/page.html" "$base/stall/pages/basic.html" \
  "$base/pages/one-line.html" >"$work/bad-urls"
$launch "$metatags" --no-progress --timeout 1 "@$work/bad-urls" </dev/null >"$work/bad-out" 2>"$work/bad-raw-err"
status=$?
[ "$status" -eq 1 ] || fail "bad URLs: exit status $status, expected 1"
grep '^metatags: ' "$work/bad-raw-err" >"$work/bad-err"
grep -qxF "metatags: $base/pages/no-such-page.html: fetch failed: HTTP status 404" "$work/bad-err" || fail "404 not reported"
grep -q "^metatags: http://127.0.0.1:$refused/page.html: fetch failed: .*[Cc]onnect" "$work/bad-err" || fail "refused connection not reported"
grep -q "^metatags: $base/stall/pages/basic.html: fetch failed: .*[Tt]imed out" "$work/bad-err" || fail "timeout not reported"
[ "$(wc -l <"$work/bad-err")" -eq 3 ] || fail "bad URLs: expected 3 reports, got: $(cat "$work/bad-err")"
[ "$(grep -c "^$base/pages/one-line.html	" "$work/bad-out")" -eq 4 ] || fail "bad URLs: the good page's 4 matches are missing"

# --count over URLs: the same counts as over the files.
$launch "$metatags" --no-progress --count "@$work/urls" </dev/null >"$work/count" 2>/dev/null
(cd "$cases_dir" && /usr/bin/python3 reference.py --count pages) >"$work/count-expected"
cmp -s "$work/count" "$work/count-expected" || fail "--count over URLs differs from Python's over the files"

# Concurrency: 24 slow pages on one thread per rank are fetched many at once.
for i in $(seq 24); do echo "$base/delay/pages/basic.html"; done >"$work/slow-urls"
HPOOL_THREADS=1 $launch "$metatags" --no-progress --threads 1 --chunksize 12 "@$work/slow-urls" </dev/null >"$work/slow-out" 2>&1
[ "$(grep -c "	<meta " "$work/slow-out")" -eq 72 ] || fail "slow pages: expected 72 matches"
most=$(/usr/bin/python3 -c "import urllib.request; print(urllib.request.urlopen('$base/stats').read().decode())")
[ "$most" -ge 4 ] || fail "transfers were not concurrent: at most $most in flight (chunksize 12)"

if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all fetch checks passed (at most $most transfers in flight)"
