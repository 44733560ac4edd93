#!/usr/bin/env bash
# test_metatags.sh: metatags against golden files from Python's re.findall, and every kind of bad input, under $HPOOL_LAUNCH.
#   test_metatags.sh METATAGS SOURCE_DIR
set -uo pipefail
metatags=$(realpath "$1")
cases_dir=$2/tests/metatags
launch=${HPOOL_LAUNCH:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# run NAME ARGS...: runs metatags from the cases directory; leaves
# $work/NAME.out, $work/NAME.err and $status.
run() {
  local name=$1; shift
  # stdin from /dev/null: mpirun would read the loop's here-document.
  (cd "$cases_dir" && $launch "$metatags" --no-progress "$@") </dev/null >"$work/$name.out" 2>"$work/$name.raw-err"
  status=$?
  # Only metatags' lines: mpirun adds its own words about a non-zero exit.
  grep '^metatags: ' "$work/$name.raw-err" >"$work/$name.err"
}

expect_status() { [ "$status" -eq "$1" ] || fail "$2: exit status $status, expected $1"; }
# On a failed check, what else the run said (a sanitizer's report, say).
show_other_stderr() {
  grep -v '^metatags: ' "$work/$1.raw-err" | grep -v -e '^---' -e 'Primary job' -e 'non-zero' -e '^mpirun' \
    -e 'the job to be terminated' -e 'Process name' -e 'Exit code' -e '^ *$' | head -40
}
expect_same() { cmp -s "$1" "$2" || { fail "$3: output differs from $2"; diff "$1" "$2" | head -5 | cut -c1-200; }; }

# ---- Golden files: the same arguments reference.py was given -----------
while IFS='~' read -r name arguments reports; do
  eval "run $name $arguments"
  failures_before=$failures
  expect_same "$work/$name.out" "$cases_dir/golden/$name.out" "$name"
  if [ "$reports" = yes ]; then
    expect_status 1 "$name"
    expect_same "$work/$name.err" "$cases_dir/golden/reports.err" "$name (stderr)"
  else
    expect_status 0 "$name"
    [ -s "$work/$name.err" ] && fail "$name: unexpected stderr: $(head -3 "$work/$name.err")"
  fi
  [ "$failures" -gt "$failures_before" ] && show_other_stderr "$name"
done <<'CASES'
default~pages~yes
count~--count pages~yes
jsonl~--format jsonl pages~yes
count-jsonl~--count --format jsonl pages~yes
ignore-case~-i pages~yes
ignore-case-count~-i --count pages~yes
content-attribute~--pattern 'content="[^"]*"' pages~yes
alternation~--pattern '<(meta|link) [^>]*>' pages~yes
empty-matches~--pattern 'x*' pages/no-space.html pages/one-line.html pages/nested.html~no
files-and-list~pages/utf-8.html @pages.list pages/sub~no
CASES

# JSON lines are strict JSON, and the surrogateescape rule gives back the bytes.
/usr/bin/python3 - "$work/jsonl.out" "$cases_dir/golden/default.out" <<'PY' || fail "jsonl: not the documented JSON"
import json, sys
objects = [json.loads(line) for line in open(sys.argv[1], "rb")]
pairs = [line.rstrip(b"\n").split(b"\t", 1) for line in open(sys.argv[2], "rb")]
assert len(objects) == len(pairs), (len(objects), len(pairs))
for o, (path, match) in zip(objects, pairs):
    assert o["path"].encode("utf-8", "surrogateescape") == path
    assert o["match"].encode("utf-8", "surrogateescape") == match, (o["match"], match)
PY

# ---- Unordered: the same lines, each page's lines together --------------
run unordered --unordered pages
expect_status 1 unordered
cmp -s <(sort "$work/unordered.out") <(sort "$cases_dir/golden/default.out") || fail "unordered: different lines"
cut -f1 "$work/unordered.out" | uniq | sort | uniq -d | grep -q . && fail "unordered: a page's lines are split"
cmp -s <(sort "$work/unordered.err") "$cases_dir/golden/reports.err" || fail "unordered: different reports"

# ---- Progress: off by default off a terminal, one final line when asked ----
(cd "$cases_dir" && $launch "$metatags" --progress pages) </dev/null >/dev/null 2>"$work/progress.err"
grep -qE '^metatags: 19/19 pages, 0\.2 MB, [0-9.]+ MB/s, ETA 0 s$' "$work/progress.err" ||
  fail "--progress: no final progress line in: $(cat "$work/progress.err")"
grep -q 'pages, ' "$work/default.raw-err" && fail "progress shown without --progress off a terminal"

# ---- The list from stdin ----------------------------------------------------
(cd "$cases_dir" && printf 'pages/basic.html\npages/sub\n' | $launch "$metatags" --no-progress @-) >"$work/stdin.out" 2>&1
grep -c . "$work/stdin.out" | grep -qx 6 || fail "@-: expected 6 lines, got: $(cat "$work/stdin.out")"

# A named FIFO as the list, opened before its writer comes: metatags waits
# for the writer (where a stop can end the wait, test_stop_resume.sh) and
# then reads the list it writes.
mkfifo "$work/list.fifo"
(sleep 1; printf 'pages/basic.html\npages/sub\n' >"$work/list.fifo") &
writer=$!
(cd "$cases_dir" && $launch "$metatags" --no-progress "@$work/list.fifo") </dev/null >"$work/fifo.out" 2>&1 ||
  fail "@FIFO: exit status $?: $(cat "$work/fifo.out")"
wait "$writer"
cmp -s "$work/fifo.out" "$work/stdin.out" || fail "@FIFO: not the lines of @-: $(cat "$work/fifo.out")"

# ---- Bad input: each named on stderr, every other page still searched -----
bad=$work/bad
mkdir -p "$bad/tree/a"
printf '<meta good="1">\n' >"$bad/tree/good.html"
ln -s .. "$bad/tree/a/back"                      # a directory loop
printf '<meta in-a>\n' >"$bad/tree/a/page.html"
/usr/bin/python3 - "$bad" <<'PY'
import socket, sys
d = sys.argv[1]
# A tag left open for 3 MB, then a good one; and a line of 500,000 open tags.
open(d + "/tree/long.html", "wb").write(b"<meta ok1>" + b"<meta " + b"x" * (3 << 20) + b"\n<meta ok2>\n")
open(d + "/tree/open-tags.html", "wb").write(b"<meta " * 500000 + b"\n<meta last>\n")
# Past PCRE2's match limit (10^7), which counts each byte of the lazy .*?:
# a tag open for 10.5 MB, and one closed after 10.5 MB.
open(d + "/tree/huge.html", "wb").write(b"<meta ok3>\n<meta " + b"x" * 10500000 + b"\n<meta ok4>\n")
far = b"<meta " + b"y" * 10500000 + b">"
open(d + "/tree/far.html", "wb").write(far + b"\n<meta ok5>\n")
open(d + "/far.expected", "wb").write(d.encode() + b"/tree/far.html\t" + far + b"\n")
# Not a regular file: a socket, skipped by the walk.
s = socket.socket(socket.AF_UNIX); s.bind(d + "/tree/socket.html"); s.close()
# A pattern that backtracks catastrophically on this page.
open(d + "/backtrack.html", "wb").write(b"<meta fine>\n" + b"x" * 30 + b"z\ny\n")
PY
run bad "$bad/tree" "$bad/missing.html"
expect_status 1 bad
for line in "$bad/missing.html: cannot open: No such file or directory" \
            "$bad/tree/a/back: directory loop: this is $bad/tree again; not walked twice" \
            "$bad/tree/long.html: unclosed tag at offset 10 runs $(((3 << 20) + 6)) bytes to the end of its line; no match there" \
            "$bad/tree/open-tags.html: unclosed tag at offset 0 runs 3000000 bytes to the end of its line; no match there" \
            "$bad/tree/huge.html: unclosed tag at offset 11 runs 10500006 bytes to the end of its line; no match there" \
            "$bad/tree/socket.html: not a regular file (a socket); skipped"; do
  grep -qxF "metatags: $line" "$work/bad.err" || fail "bad: no report '$line' in: $(cat "$work/bad.err")"
done
[ "$(wc -l <"$work/bad.err")" -eq 6 ] || fail "bad: expected 6 reports, got: $(cat "$work/bad.err")"
{ printf '%s\n' "$bad/tree/a/page.html	<meta in-a>"; cat "$bad/far.expected"
  printf '%s\n' "$bad/tree/far.html	<meta ok5>" "$bad/tree/good.html	<meta good=\"1\">" "$bad/tree/huge.html	<meta ok3>" \
    "$bad/tree/huge.html	<meta ok4>" "$bad/tree/long.html	<meta ok1>" "$bad/tree/long.html	<meta ok2>" \
    "$bad/tree/open-tags.html	<meta last>"; } >"$work/bad.expected"
expect_same "$work/bad.out" "$work/bad.expected" bad

run backtrack --pattern '<meta [^>]*>|(x+x+)+y' "$bad/backtrack.html" "$bad/tree/good.html"
expect_status 1 backtrack
grep -q "backtrack.html: matching stopped at offset 11: match limit exceeded" "$work/backtrack.err" ||
  fail "backtrack: not reported: $(cat "$work/backtrack.err")"
grep -c . "$work/backtrack.out" | grep -qx 2 || fail "backtrack: expected the 2 tags: $(cat "$work/backtrack.out")"

run bad-count --count "$bad/tree" "$bad/missing.html"
expect_status 1 bad-count
[ "$(wc -l <"$work/bad-count.err")" -eq 6 ] || fail "bad-count: expected 6 reports, got: $(cat "$work/bad-count.err")"
grep -c . "$work/bad-count.out" | grep -qx 9 || fail "bad-count: expected 9 counts: $(cat "$work/bad-count.out" | cut -c1-80)"

# A @LIST's page names are read without a check first: what is wrong with
# one is reported in its turn, and a directory named like a page is one. A
# listed name that is not a page name is still checked: a directory is walked.
mkdir -p "$bad/named.html" "$bad/walked"
printf '<meta inside>\n' >"$bad/named.html/page.html"
printf '<meta walked>\n' >"$bad/walked/page.html"
printf '%s\n' "$bad/tree/good.html" "$bad/listed-missing.html" "$bad/named.html" "$bad/walked" >"$bad/pages.list"
run listed "@$bad/pages.list"
expect_status 1 listed
for line in "$bad/listed-missing.html: cannot open: No such file or directory" \
            "$bad/named.html: cannot read: is a directory"; do
  grep -qxF "metatags: $line" "$work/listed.err" || fail "listed: no report '$line' in: $(cat "$work/listed.err")"
done
[ "$(wc -l <"$work/listed.err")" -eq 2 ] || fail "listed: expected 2 reports, got: $(cat "$work/listed.err")"
printf '%s\n' "$bad/tree/good.html	<meta good=\"1\">" "$bad/walked/page.html	<meta walked>" >"$work/listed.expected"
expect_same "$work/listed.out" "$work/listed.expected" listed

# ---- A directory too deep to name (past PATH_MAX) is reported, not lost ----
deep=$work/deep
mkdir -p "$deep"
printf '<meta top>\n' >"$deep/a.html"
(cd "$deep" && for level in $(seq 20); do
  name=$(printf 'd%.0s' $(seq 250)); mkdir "$name" && cd "$name" || exit 1
done && printf '<meta deep>\n' >deep.html)
run deep "$deep"
expect_status 1 deep
grep -q "^metatags: .*: cannot open: File name too long$" "$work/deep.err" || fail "deep: the subtree was not reported: $(cut -c1-200 "$work/deep.err")"
printf '%s\n' "$deep/a.html	<meta top>" >"$work/deep.expected"
expect_same "$work/deep.out" "$work/deep.expected" deep
rm -rf "$deep"

# ---- Usage errors: status 2 and a message ----------------------------------
usage() {
  local expected=$1; shift
  run usage "$@"
  expect_status 2 "usage $*"
  grep -qF -- "$expected" "$work/usage.err" || fail "usage $*: no '$expected' in: $(cat "$work/usage.err")"
}
usage "missing closing parenthesis at offset 2" --pattern '(a' pages
usage "no INPUT given"
usage "unknown option '--frobnicate'" --frobnicate pages
usage "--count and --unordered exclude each other" --count --unordered pages
usage "--threads takes an integer" --threads 0 pages
usage "--format takes raw, tsv or jsonl" --format xml pages
run help --help
expect_status 0 help
grep -q "^usage: metatags" "$work/help.out" || fail "--help: no usage"
version=$(for part in MAJOR MINOR PATCH; do sed -n "s/^#define HPOOL_VERSION_$part \([0-9]*\)$/\1/p" "$2/include/hpool.h"; done | paste -sd.)
run version --version
expect_status 0 version
[ "$(cat "$work/version.out")" = "metatags (hpool) $version" ] || fail "--version printed '$(cat "$work/version.out")'"

if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all metatags checks passed"
