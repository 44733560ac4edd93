#!/usr/bin/env bash
# make_corpus.sh: builds the HTML corpus wordcount_vs_mrmpi.sh counts words in: Python's HTML docs, copied until >= 500 MB.
#
#   bench/corpora/make_corpus.sh                      (corpus in $TMPDIR/hpool-corpus, /tmp without TMPDIR)
#   CORPUS=DIR MIN_MB=500 LAYOUT=concat CONCAT_FILES=20 bench/corpora/make_corpus.sh
#
# Settings are environment variables, as for the drivers; CORPUS is the one
# wordcount_vs_mrmpi.sh reads, with the same default.
#
# The source is Debian's python3.11-doc (/usr/share/doc/python3.11/html, about
# 530 .html files, 51 MB); it is installed with apt-get when missing and we
# are root. Its .html files are copied whole, COPIES times, until the corpus
# holds at least MIN_MB megabytes (10^6 bytes): copy-01/..., copy-02/..., with
# the source's relative paths. The copies are identical, so the corpus has as
# many distinct words as one copy of the docs, and every count is a multiple
# of COPIES.
#
# LAYOUT=concat (default) concatenates the copies, in order (copy by copy,
# file by file, sorted paths), into CONCAT_FILES (default 20) files of about
# equal size (~25 MB each, cut at file boundaries). It has to: Open MPI's
# mpirun puts the program's whole command line into one environment
# variable (OMPI_ARGV), and Linux refuses any single argument or environment
# string over 128 KiB (MAX_ARG_STRLEN) with E2BIG, "Argument list too long",
# even though `getconf ARG_MAX` is 2 MB here. The ~5,300 paths of the copies
# take ~250 KB, so `mpirun ... FILES` fails with them. Big files also make
# both tools cut files into 4 MiB ranges, words straddling range boundaries
# included. LAYOUT=files keeps the copies as separate files (fine without
# mpirun, or with a shorter corpus path). Files are byte-for-byte copies:
# the docs' files end in '>' without a newline, so in the concat layout the
# last word of one file and the first of the next run together; both tools
# get exactly the same bytes anyway.
#
# The corpus is listed, one path per line in sorted order, in
# $CORPUS/files.txt; the benchmark passes exactly those paths, in that order,
# to both tools. Idempotent: when $CORPUS/.complete says the corpus was built
# with the same parameters, nothing is done. The build goes to a temporary
# directory first, so an interrupted run leaves no half corpus behind.
set -euo pipefail

CORPUS=${CORPUS:-${TMPDIR:-/tmp}/hpool-corpus}
MIN_MB=${MIN_MB:-500}
LAYOUT=${LAYOUT:-concat}
CONCAT_FILES=${CONCAT_FILES:-20}
SOURCE=${SOURCE:-/usr/share/doc/python3.11/html}

case "$LAYOUT" in
files | concat) ;;
*)
    echo "make_corpus.sh: LAYOUT must be files or concat, not '$LAYOUT'" >&2
    exit 2
    ;;
esac

if [ ! -d "$SOURCE" ]; then
    if [ "$SOURCE" = /usr/share/doc/python3.11/html ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "make_corpus.sh: installing python3.11-doc for $SOURCE" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y python3.11-doc >/dev/null ||
            { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y python3.11-doc >/dev/null; }
    fi
    if [ ! -d "$SOURCE" ]; then
        echo "make_corpus.sh: $SOURCE not found: install python3.11-doc (apt-get install python3.11-doc) or set SOURCE" >&2
        exit 1
    fi
fi

# The source files, sorted bytewise so every machine copies in the same order.
mapfile -t sources < <(cd "$SOURCE" && find . -type f -name '*.html' | LC_ALL=C sort)
if [ "${#sources[@]}" -eq 0 ]; then
    echo "make_corpus.sh: no .html files under $SOURCE" >&2
    exit 1
fi
source_bytes=$(cd "$SOURCE" && printf '%s\0' "${sources[@]}" | xargs -0 stat -L -c %s | awk '{ s += $1 } END { print s }')
min_bytes=$((MIN_MB * 1000000))
copies=$(((min_bytes + source_bytes - 1) / source_bytes))
stamp="source=$SOURCE files=${#sources[@]} source_bytes=$source_bytes copies=$copies layout=$LAYOUT"
if [ "$LAYOUT" = concat ]; then
    stamp+=" concat_files=$CONCAT_FILES"
fi

if [ -f "$CORPUS/.complete" ] && [ "$(cat "$CORPUS/.complete")" = "$stamp" ] && [ -f "$CORPUS/files.txt" ]; then
    echo "corpus: $CORPUS already built ($stamp), skipping" >&2
    exit 0
fi
if [ -e "$CORPUS" ]; then
    # Only ever replace a directory this script made.
    if [ ! -f "$CORPUS/.complete" ] && [ ! -f "$CORPUS/.hpool-corpus" ]; then
        echo "make_corpus.sh: $CORPUS exists and was not made by make_corpus.sh; remove it or set CORPUS" >&2
        exit 1
    fi
fi

work="$CORPUS.tmp.$$"
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
touch "$work/.hpool-corpus"
echo "corpus: $copies copies of ${#sources[@]} files ($source_bytes bytes) from $SOURCE into $CORPUS ($LAYOUT)" >&2

for ((c = 1; c <= copies; c++)); do
    copy=$(printf 'copy-%02d' "$c")
    mkdir -p "$work/$copy"
    # cp --parents keeps the source's relative paths under copy-NN/.
    (cd "$SOURCE" && printf '%s\0' "${sources[@]}" | xargs -0 cp -L --parents -t "$work/$copy")
done

if [ "$LAYOUT" = concat ]; then
    # The same bytes in the same order (copy by copy, file by file), cut at
    # file boundaries into CONCAT_FILES parts of about equal size.
    mapfile -t all < <(cd "$work" && find copy-* -type f -name '*.html' | LC_ALL=C sort)
    # part-NNN.html gets the files whose first byte lies in its share of the total.
    (cd "$work" && printf '%s\0' "${all[@]}" | xargs -0 stat -c '%s %n') |
        awk -v parts="$CONCAT_FILES" '
            { size[NR] = $1; name[NR] = substr($0, length($1) + 2); total += $1 }
            END { share = total / parts; at = 0
                  for (i = 1; i <= NR; i++) { p = int(at / share) + 1; if (p > parts) p = parts
                                              printf "part-%03d.html\t%s\n", p, name[i]; at += size[i] } }' \
        >"$work/parts.tsv"
    while IFS=$'\t' read -r part file; do
        printf '%s\0' "$file" >>"$work/$part.list"
    done <"$work/parts.tsv"
    for list in "$work"/part-*.list; do
        (cd "$work" && xargs -0 cat <"$list") >"${list%.list}"
    done
    rm -f "$work/parts.tsv" "$work"/part-*.list
    rm -rf "$work"/copy-*
fi

(cd "$work" && find . -type f -name '*.html' | sed 's|^\./||' | LC_ALL=C sort) |
    sed "s|^|$CORPUS/|" >"$work/files.txt"
echo "$stamp" >"$work/.complete"
rm -rf "$CORPUS"
mv "$work" "$CORPUS"
trap - EXIT
bytes=$(tr '\n' '\0' <"$CORPUS/files.txt" | xargs -0 stat -c %s | awk '{ s += $1 } END { print s }')
echo "corpus: $CORPUS: $(wc -l <"$CORPUS/files.txt") files, $bytes bytes" >&2
