#!/usr/bin/env bash
# test_metatags_faults.sh: metatags never hangs, runs out of memory or exits 0 on a lost input (issue 14): @DIR, long @LIST lines, FIFOs, devices, huge and sparse pages, gzip bombs, output that parses back, quoted names, (*UTF) and \G, under $HPOOL_LAUNCH.
#   test_metatags_faults.sh METATAGS SOURCE_DIR
set -uo pipefail
metatags=$(realpath "$1")
cases_dir=$(realpath "$2")/tests/metatags
launch=${HPOOL_LAUNCH:-}
work=$(mktemp -d)
server_pid=
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# Room for metatags (250 MB of address space at rest with 2 threads) and
# twice --max-page-size's 64 MiB per thread, and for mpirun and its ranks
# (each under the same limit), but not for what reading these inputs whole
# takes: 2 GB for the sparse file, over 1 GB for the bombs, /dev/zero all.
memory_limit_kb=700000
# The sanitizers reserve terabytes of address space at start, so their
# builds run unlimited (the memory bound is checked by the plain builds).
if ldd "$metatags" 2>/dev/null | grep 'libasan\|libtsan' >/dev/null; then
  memory_limit_kb=unlimited
fi

# run NAME [limit] ARGS...: runs metatags in $work, under a memory limit
# with "limit", and at most 60 s (a hang fails, not blocks the suite);
# leaves $work/NAME.out, $work/NAME.err (metatags' own lines) and $status.
run() {
  local name=$1; shift
  local limit=unlimited
  if [ "${1:-}" = limit ]; then limit=$memory_limit_kb; shift; fi
  (cd "$work" && ulimit -v "$limit" && timeout 60 $launch "$metatags" --no-progress "$@") </dev/null \
    >"$work/$name.out" 2>"$work/$name.raw-err"
  status=$?
  grep -a '^metatags: ' "$work/$name.raw-err" >"$work/$name.err"
}
expect_status() { [ "$status" -eq "$1" ] || fail "$2: exit status $status, expected $1 ($(head -c 600 "$work/$2.raw-err"))"; }
# expect_report NAME LINE: LINE (without "metatags: ") is on NAME's stderr.
expect_report() { grep -qxF -- "metatags: $2" "$work/$1.err" || fail "$1: no report '$2' in: $(head -c 600 "$work/$1.err")"; }
expect_reports() { [ "$(wc -l <"$work/$1.err")" -eq "$2" ] || fail "$1: expected $2 report(s), got: $(cat "$work/$1.err")"; }
# The good page given after each bad input: its match must still come out.
expect_good() { grep -qxF "good.html	<meta good>" "$work/$1.out" || fail "$1: the good page's match is missing"; }

printf '<meta good>\n' >"$work/good.html"

# ---- A directory given as @LIST ----------------------------------------------
mkdir "$work/dir"
printf '<meta in-dir>\n' >"$work/dir/page.html"
run list-dir @dir good.html
expect_status 1 list-dir
expect_report list-dir "@dir: cannot read list: is a directory (give it without the @ to walk it)"
expect_reports list-dir 1
expect_good list-dir

# ---- A @LIST line of 300 MB (a hole: no disk) under a memory limit -----------
printf 'good.html\n' >"$work/long.list"
truncate -s +300M "$work/long.list"
printf '\ndir/page.html\n' >>"$work/long.list"
run list-long limit @long.list
expect_status 1 list-long
expect_report list-long "@long.list: line 2: longer than 1048576 bytes, not a name; skipped"
expect_reports list-long 1
expect_good list-long
grep -qxF "dir/page.html	<meta in-dir>" "$work/list-long.out" || fail "list-long: the list's last line was dropped"

# ---- Not regular files: in a walk, and given directly --------------------------
mkdir -p "$work/tree"
cp "$work/good.html" "$work/tree/good.html"
mkfifo "$work/tree/fifo.html" "$work/fifo.html" "$work/tree/other-fifo"
/usr/bin/python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$work/tree/socket.html"
ln -s /dev/null "$work/tree/device.html"
run walk tree
expect_status 1 walk
expect_report walk "tree/fifo.html: not a regular file (a FIFO); skipped"
expect_report walk "tree/socket.html: not a regular file (a socket); skipped"
expect_report walk "tree/device.html: not a regular file (a character device); skipped"
expect_reports walk 3 # not the FIFO whose name is no page's
grep -qxF "tree/good.html	<meta good>" "$work/walk.out" || fail "walk: the good page's match is missing"

run fifo fifo.html good.html
expect_status 1 fifo
expect_report fifo "fifo.html: not a regular file (a FIFO); skipped"
expect_good fifo
# Listed page names are not checked before the run: the reader refuses it.
printf 'fifo.html\ngood.html\n' >"$work/fifo.list"
run fifo-listed @fifo.list
expect_status 1 fifo-listed
expect_report fifo-listed "fifo.html: not a regular file (a FIFO); skipped"
expect_good fifo-listed

# ---- Endless and huge pages, under a memory limit ---------------------------------
truncate -s 2G "$work/sparse.html"
printf 'good.html\n/dev/zero\n/dev/urandom\n/proc/self/pagemap\nsparse.html\n' >"$work/endless.list"
run endless limit /dev/zero /dev/urandom @endless.list /proc/self/pagemap sparse.html
expect_status 1 endless
expect_report endless "/dev/zero: not a regular file (a character device); skipped"
expect_report endless "/dev/urandom: not a regular file (a character device); skipped"
expect_report endless "/proc/self/pagemap: larger than --max-page-size (more than 67108864 bytes); skipped"
expect_report endless "sparse.html: larger than --max-page-size (2147483648 bytes > 67108864); skipped"
expect_reports endless 8
expect_good endless

printf '<meta a-page-of-48-bytes-with-its-newline.....>\n' >"$work/48.html"
[ "$(stat -c %s "$work/48.html")" -eq 48 ] || fail "48.html is not 48 bytes"
run max-size --max-page-size 47 48.html good.html
expect_status 1 max-size
expect_report max-size "48.html: larger than --max-page-size (48 bytes > 47); skipped"
expect_good max-size
run max-size-fits --max-page-size 48 48.html
expect_status 0 max-size-fits
run max-size-bad --max-page-size 1T good.html
expect_status 2 max-size-bad
grep -qF -- "--max-page-size takes bytes in 1..2^40" "$work/max-size-bad.err" || fail "max-size-bad: no message"

# ---- Gzip bombs: four 260 kB bodies of 256 MiB each, with a good page -------------
/usr/bin/python3 "$cases_dir/server.py" "$work" "$work/port" &
server_pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || { echo "FAIL: the HTTP server did not start"; exit 1; }
base=http://127.0.0.1:$(cat "$work/port")
{ for i in 1 2 3 4; do echo "$base/gzip-bomb/$i"; done; echo "$base/good.html"; } >"$work/bombs.list"
run bombs limit @bombs.list
expect_status 1 bombs
for i in 1 2 3 4; do
  expect_report bombs "$base/gzip-bomb/$i: larger than --max-page-size (more than 67108864 bytes, decompressed); skipped"
done
expect_reports bombs 4
grep -qxF "$base/good.html	<meta good>" "$work/bombs.out" || fail "bombs: the good page's match is missing"
# With room for 1 GiB each, memory runs out first: said so, per page
# (where there is a memory limit: not under the sanitizers).
if [ "$memory_limit_kb" != unlimited ]; then
  run bombs-memory limit --max-page-size 1G @bombs.list
  expect_status 1 bombs-memory
  grep -q "^metatags: $base/gzip-bomb/[1-4]: fetch failed: out of memory after [0-9]* bytes of the page$" \
    "$work/bombs-memory.err" || fail "bombs-memory: out of memory not named: $(cat "$work/bombs-memory.err")"
  grep -q "Failure writing" "$work/bombs-memory.err" && fail "bombs-memory: libcurl's words hide the cause"
  grep -qxF "$base/good.html	<meta good>" "$work/bombs-memory.out" || fail "bombs-memory: the good page's match is missing"
else
  echo "skip bombs-memory: no memory limit under the sanitizers"
fi

# ---- Output that parses back: names and matches with TAB, LF, CR, backslash -------
mkdir "$work/odd"
/usr/bin/python3 - "$work/odd" <<'PY'
import os, sys
d = os.fsencode(sys.argv[1])
pages = {
    b"tab\there.html": b"<meta a\tb>\n<meta back\\slash \\t>\n",
    b"new\nline.html": b"<meta x\ny>\n<meta cr\r\n>",
    b"plain.html": b"<meta plain>\n<meta plain>\n<meta x\ny>\n",
}
for name, data in pages.items():
    open(os.path.join(d, name), "wb").write(data)
PY
# [^>]* crosses lines: matches hold newlines, tabs and carriage returns.
for format in tsv raw; do
  run "odd-$format" --format $format --pattern '<meta[^>]*>' odd
  expect_status 0 "odd-$format"
  run "odd-count-$format" --count --format $format --pattern '<meta[^>]*>' odd
  expect_status 0 "odd-count-$format"
done
/usr/bin/python3 - "$work" <<'PY' || fail "--format tsv: not read back to the exact bytes"
import collections, os, re, sys
work = os.fsencode(sys.argv[1])
pattern = re.compile(rb"<meta[^>]*>")
expected, counts = [], collections.Counter()
for name in sorted(os.listdir(os.path.join(work, b"odd"))):
    path = b"odd/" + name
    for match in pattern.findall(open(os.path.join(work, path), "rb").read()):
        expected.append((path, match))
        counts[match] += 1
def unescape(field):
    assert b"\t" not in field and b"\n" not in field and b"\r" not in field, field
    return re.sub(rb"\\(.)", lambda m: {b"t": b"\t", b"n": b"\n", b"r": b"\r", b"\\": b"\\"}[m.group(1)], field)
def rows(name):
    data = open(os.path.join(work, name), "rb").read()
    assert data.endswith(b"\n")
    return [[unescape(f) for f in line.split(b"\t")] for line in data[:-1].split(b"\n")]
got = [tuple(row) for row in rows(b"odd-tsv.out")]
assert all(len(row) == 2 for row in got), got
assert got == expected, (got, expected)
got_counts = [(int(n), match) for n, match in rows(b"odd-count-tsv.out")]
want_counts = sorted(((n, m) for m, n in counts.items()), key=lambda item: (-item[0], item[1]))
assert got_counts == want_counts, (got_counts, want_counts)
# The default stays raw bytes, as grep -o writes them.
raw = b"".join(path + b"\t" + match + b"\n" for path, match in expected)
assert open(os.path.join(work, b"odd-raw.out"), "rb").read() == raw
raw_counts = b"".join(b"%d\t%s\n" % (n, m) for n, m in want_counts)
assert open(os.path.join(work, b"odd-count-raw.out"), "rb").read() == raw_counts
PY

# ---- Names on stderr: control bytes quoted, one line per report -------------------
mkfifo "$work/odd/fifo"$'\n'"named.html"
run quoted odd $'missing\tname\x01.html' 'back\slash.html'
expect_status 1 quoted
expect_report quoted 'odd/fifo\nnamed.html: not a regular file (a FIFO); skipped'
expect_report quoted 'missing\tname\x01.html: cannot open: No such file or directory'
expect_report quoted 'back\\slash.html: cannot open: No such file or directory'
expect_reports quoted 3

# ---- (*UTF) and \G: as Python's re.findall on the text, and as Perl -----------------
printf '\xc3\xa9t\xc3\xa9 <meta \xe2\x82\xac>\n' >"$work/utf-8.html"
for pattern in '(*UTF)x*' '(*UTF)(?=<)|t*'; do
  run utf --pattern "$pattern" utf-8.html
  expect_status 0 "utf"
  (cd "$work" && /usr/bin/python3 "$cases_dir/reference.py" --pattern "$pattern" utf-8.html) >"$work/utf.expected"
  cmp -s "$work/utf.out" "$work/utf.expected" || fail "(*UTF) $pattern: differs from Python: $(diff "$work/utf.out" "$work/utf.expected" | head -5)"
done
# A page that is not all UTF-8, to a (*UTF) pattern: the matches before,
# between and after the stray bytes all come out, none crosses one, and the
# page gets one report line, which says how it was searched.
# (After "\xc3\x92", a character and then stray bytes: PCRE2 10.42 steps
# over both and would miss the empty match where the character's run ends.)
printf '<meta \xc3\xa9a> <meta b\xffc> x\xe2\x82 <meta \xe2\x82\xacd>\n<meta e>\xf0\x9f\x98\x80\xc0\xafxx\xc3\x92\x9a\x8b\x9e\xe3n\n' \
  >"$work/stray.html"
for pattern in '(*UTF)<meta .*?>' '(*UTF)x*' '(*UTF).'; do
  run stray --pattern "$pattern" stray.html
  expect_status 1 stray
  expect_report stray 'stray.html: not UTF-8: byte 0xFF at offset 18; searched as UTF-8, where a byte that is not UTF-8 matches nothing'
  expect_reports stray 1
  (cd "$work" && /usr/bin/python3 "$cases_dir/reference.py" --pattern "$pattern" stray.html) >"$work/stray.expected"
  cmp -s "$work/stray.out" "$work/stray.expected" ||
    fail "(*UTF) $pattern on stray bytes: differs from Python: $(diff "$work/stray.out" "$work/stray.expected" | head -5)"
  if [ "$pattern" = '(*UTF)<meta .*?>' ] && [ "$(grep -c . "$work/stray.out")" -ne 3 ]; then
    fail "(*UTF)<meta .*?> on stray bytes: expected the 3 tags that cross none: $(cat "$work/stray.out")"
  fi
done
printf 'aaa\n' >"$work/aaa.html"
# perl -e 'print scalar(() = "aaa\n" =~ /\G/g)' gives 1; so does PCRE2 once
# \G holds only at the offset where the previous match ended.
run anchor --pattern '\G' aaa.html
expect_status 0 anchor
[ "$(cat "$work/anchor.out")" = "aaa.html	" ] || fail "\\G: expected one empty match, got $(wc -l <"$work/anchor.out") lines"
run anchor-a --pattern '\Ga' aaa.html
[ "$(grep -c . "$work/anchor-a.out")" -eq 3 ] || fail "\\Ga: expected 3 matches: $(cat "$work/anchor-a.out")"

# ---- The unknown option is the option, not the program -----------------------------
run unknown -q.html
expect_status 2 unknown
expect_report unknown "unknown option '-q'"
run unknown-long --frob=1 good.html
expect_status 2 unknown-long
expect_report unknown-long "unknown option '--frob=1'"

if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all metatags fault checks passed"
