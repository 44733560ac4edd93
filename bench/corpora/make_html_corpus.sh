#!/usr/bin/env bash
# make_html_corpus.sh: builds the corpus metatags_vs_peers.sh searches: Python's HTML docs, copied COPIES times as separate pages.
#
#   bench/corpora/make_html_corpus.sh [DIR [COPIES]]   (default $HTML_CORPUS, else $TMPDIR/hpool-html-corpus; 20 copies: 1.01 GB)
#   bench/corpora/make_html_corpus.sh DIR 1            (one copy, 51 MB: enough to check the tools agree)
#
# DIR defaults to what metatags_vs_peers.sh reads: HTML_CORPUS, else
# $TMPDIR/hpool-html-corpus (/tmp without TMPDIR).
#
# The source is Debian's python3.11-doc (/usr/share/doc/python3.11/html; SOURCE
# to use another tree): its 530 .html pages (and .htm, should it ever have
# any), 50,688,844 bytes, nothing else. They are copied whole into
# DIR/copy-01, DIR/copy-02, ..., each with the source's directory structure,
# so every tool sees real pages one by one, as a crawl would hand them over
# (unlike make_corpus.sh, which concatenates its copies). The copies are
# byte-for-byte equal, so every count of a match is a multiple of COPIES.
#
# DIR/files.txt lists every page, one absolute path per line, sorted bytewise
# (LC_ALL=C sort): the order in which metatags walks DIR, and the @LIST every
# tool of the benchmark reads, so that they search the same pages in the same
# order. Idempotent: when DIR/.complete says DIR was built from the same source
# with the same COPIES, nothing is copied again. The copies go to a temporary
# directory first, so an interrupted run leaves no half corpus behind.
set -euo pipefail

DIR=${1:-${HTML_CORPUS:-${TMPDIR:-/tmp}/hpool-html-corpus}}
COPIES=${2:-20}
SOURCE=${SOURCE:-/usr/share/doc/python3.11/html}

if ! [[ "$COPIES" =~ ^[1-9][0-9]*$ ]]; then
    echo "make_html_corpus.sh: COPIES must be a positive integer, not '$COPIES'" >&2
    exit 2
fi
# files.txt holds absolute paths so that it works from any directory.
DIR=$(realpath -m "$DIR")

if [ ! -d "$SOURCE" ]; then
    echo "make_html_corpus.sh: $SOURCE not found: install python3.11-doc (apt-get install python3.11-doc) or set SOURCE" >&2
    exit 1
fi

# Prints "N files, B bytes" for the pages listed in DIR/files.txt.
report() {
    tr '\n' '\0' <"$DIR/files.txt" | xargs -0 stat -c %s |
        awk '{ bytes += $1 } END { printf "%d files, %d bytes\n", NR, bytes }'
}

# Sorted bytewise so that every machine copies, and lists, in the same order.
mapfile -t pages < <(cd "$SOURCE" && find . -type f \( -name '*.html' -o -name '*.htm' \) | LC_ALL=C sort)
if [ "${#pages[@]}" -eq 0 ]; then
    echo "make_html_corpus.sh: no .html or .htm files under $SOURCE" >&2
    exit 1
fi
source_bytes=$(cd "$SOURCE" && printf '%s\0' "${pages[@]}" | xargs -0 stat -c %s | awk '{ s += $1 } END { print s }')
stamp="source=$SOURCE files=${#pages[@]} source_bytes=$source_bytes copies=$COPIES"

if [ -f "$DIR/.complete" ] && [ "$(cat "$DIR/.complete")" = "$stamp" ] && [ -f "$DIR/files.txt" ]; then
    echo "html corpus: $DIR already built ($stamp): $(report)"
    exit 0
fi
# Only ever replace a directory this script made.
if [ -e "$DIR" ] && [ ! -f "$DIR/.complete" ] && [ ! -f "$DIR/.hpool-html-corpus" ]; then
    echo "make_html_corpus.sh: $DIR exists and was not made by make_html_corpus.sh; remove it or pick another DIR" >&2
    exit 1
fi

work="$DIR.tmp.$$"
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
touch "$work/.hpool-html-corpus"
echo "html corpus: $COPIES copies of ${#pages[@]} pages ($source_bytes bytes) from $SOURCE into $DIR" >&2

for ((c = 1; c <= COPIES; c++)); do
    copy=$(printf 'copy-%02d' "$c")
    mkdir -p "$work/$copy"
    # cp --parents keeps the source's relative paths under copy-NN/.
    (cd "$SOURCE" && printf '%s\0' "${pages[@]}" | xargs -0 cp --parents -t "$work/$copy")
done

# The paths are DIR's, not the temporary directory's: the list is written
# before the rename. ENVIRON, not awk -v, so that a backslash in DIR stays one.
(cd "$work" && find copy-* -type f \( -name '*.html' -o -name '*.htm' \) | LC_ALL=C sort) |
    dir=$DIR awk '{ print ENVIRON["dir"] "/" $0 }' >"$work/files.txt"
echo "$stamp" >"$work/.complete"
rm -rf "$DIR"
mv "$work" "$DIR"
trap - EXIT
echo "html corpus: $DIR: $(report)"
