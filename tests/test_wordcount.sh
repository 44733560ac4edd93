#!/usr/bin/env bash
# test_wordcount.sh: examples/wordcount against Python's bytes.split() and Counter, on files that cross its 4 MB ranges.
set -euo pipefail
wordcount=$1
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
python=/usr/bin/python3
[ -x "$python" ] || python=python3

# Files: words of every length, NUL and high bytes, CRLF, a word longer than
# a range, runs of whitespace across range boundaries, an empty file.
"$python" - "$scratch" <<'PY'
import random, sys
d = sys.argv[1]
rng = random.Random(7)
alphabet = [b"a", b"b", b"c", b"\x00", b"\xff", b"\xc3\xa9", b"zz", b"Q"]
spaces = [b" ", b"\t", b"\n", b"\r\n", b"\x0b", b"\x0c", b"   "]
vocabulary = [b"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(50000)]
def words(n):
    chosen = rng.choices(vocabulary, k=n)
    gaps = rng.choices(spaces, k=n)
    return b"".join(w + g for w, g in zip(chosen, gaps))
open(f"{d}/big.txt", "wb").write(words(2_500_000))             # ~13 MB: several ranges
open(f"{d}/long.txt", "wb").write(b"x" * (9 << 20) + b" tail y\n")  # a 9 MB word
open(f"{d}/small.txt", "wb").write(b"a b  a\tc\n\nb a\x00x \xff\xfe a\r\n")
open(f"{d}/empty.txt", "wb").write(b"")
PY

"$python" - "$scratch" > "$scratch/expected" <<'PY'
import collections, sys
d = sys.argv[1]
counts = collections.Counter()
for name in ["big.txt", "long.txt", "small.txt", "empty.txt"]:
    counts.update(open(f"{d}/{name}", "rb").read().split())
out = sys.stdout.buffer
for word, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
    out.write(b"%d\t%s\n" % (count, word))
PY

${HPOOL_LAUNCH:-} "$wordcount" "$scratch/big.txt" "$scratch/long.txt" "$scratch/small.txt" "$scratch/empty.txt" > "$scratch/actual"
if ! cmp -s "$scratch/expected" "$scratch/actual"; then
    echo "FAIL: wordcount differs from Python's bytes.split() count"
    diff <(head -c 2000 "$scratch/expected" | od -c | head -20) <(head -c 2000 "$scratch/actual" | od -c | head -20) || true
    exit 1
fi
echo "ok: $(wc -l < "$scratch/actual") distinct words, identical to Python"

# A missing file is reported, the others still counted, exit status 1.
set +e
${HPOOL_LAUNCH:-} "$wordcount" "$scratch/small.txt" "$scratch/missing.txt" > "$scratch/partial" 2> "$scratch/errors"
status=$?
set -e
[ "$status" -eq 1 ] || { echo "FAIL: missing file gave exit status $status, expected 1"; exit 1; }
grep -q "missing.txt" "$scratch/errors" || { echo "FAIL: no message naming missing.txt"; cat "$scratch/errors"; exit 1; }
grep -q "^3	a$" "$scratch/partial" || { echo "FAIL: the readable file was not counted"; exit 1; }
echo "ok: a missing file is named, exit 1, the rest counted"

# A file stat calls empty (/proc's) is read to its end and counted; a
# directory and a device are each named with their own cause, not an errno
# left by an earlier file.
"$python" -c 'import collections, sys
c = collections.Counter(open("/proc/version", "rb").read().split())
sys.stdout.buffer.write(b"".join(b"%d\t%s\n" % (n, w) for w, n in sorted(c.items(), key=lambda i: (-i[1], i[0]))))' \
    > "$scratch/proc.expected"
set +e
${HPOOL_LAUNCH:-} "$wordcount" "$scratch/missing.txt" /proc/version "$scratch" /dev/null > "$scratch/proc.actual" \
    2> "$scratch/proc.errors"
status=$?
set -e
[ "$status" -eq 1 ] || { echo "FAIL: a missing file, a directory and a device gave exit status $status, expected 1"; exit 1; }
cmp -s "$scratch/proc.expected" "$scratch/proc.actual" || { echo "FAIL: /proc/version was not counted as Python counts it"; diff "$scratch/proc.expected" "$scratch/proc.actual" | head; exit 1; }
grep -qx "wordcount: $scratch: a directory, not a regular file" "$scratch/proc.errors" \
    && grep -qx "wordcount: /dev/null: not a regular file" "$scratch/proc.errors" \
    && grep -qx "wordcount: $scratch/missing.txt: No such file or directory" "$scratch/proc.errors" \
    || { echo "FAIL: the causes are not each named"; cat "$scratch/proc.errors"; exit 1; }
echo "ok: /proc/version counted to its end; a directory and a device named with their own cause"
