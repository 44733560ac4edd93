#!/usr/bin/env bash
# test_metatags_no_libcurl.sh: metatags built to load a libcurl that is not there: local pages as ever, each URL reported (libcurl is loaded only by the first URL).
#   test_metatags_no_libcurl.sh METATAGS_NO_LIBCURL SOURCE_DIR
set -uo pipefail
metatags=$1
pages=$2/tests/metatags/pages
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# Local pages only: libcurl is never wanted, so nothing is reported.
"$metatags" --no-progress "$pages/basic.html" >"$work/local" 2>"$work/local-err"
status=$?
[ "$status" -eq 0 ] || fail "local pages: exit status $status, expected 0: $(cat "$work/local-err")"
[ -s "$work/local" ] || fail "local pages: no matches in basic.html"
[ ! -s "$work/local-err" ] || fail "local pages: stderr: $(cat "$work/local-err")"

# URLs around a local page: each URL reported, the page's matches printed.
"$metatags" --no-progress http://127.0.0.1:1/a.html "$pages/basic.html" http://127.0.0.1:1/b.html \
  >"$work/mixed" 2>"$work/mixed-err"
status=$?
[ "$status" -eq 1 ] || fail "URLs: exit status $status, expected 1"
cmp -s "$work/local" "$work/mixed" || fail "URLs: the local page's matches differ"
for url in http://127.0.0.1:1/a.html http://127.0.0.1:1/b.html; do
    grep -qxF "metatags: $url: fetch failed: cannot load libcurl-missing.so.4: libcurl-missing.so.4: cannot open shared object file: No such file or directory" \
        "$work/mixed-err" || fail "URLs: no report for $url: $(cat "$work/mixed-err")"
done
[ "$(wc -l <"$work/mixed-err")" -eq 2 ] || fail "URLs: expected two report lines: $(cat "$work/mixed-err")"
[ "$failures" -eq 0 ] && echo "no_libcurl: all passed"
exit $((failures > 0))
