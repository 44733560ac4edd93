#!/usr/bin/env bash
# test_man.sh: the man pages metatags(1) and square(1) render without a groff warning, match their program's --help, getopt_long table, exit statuses and environment, and install into share/man/man1.
#
#   tests/test_man.sh BUILD_DIR SOURCE_DIR PATH_TO_METATAGS PATH_TO_SQUARE
#
# Prints one line per check and stops at the first failure with status 1;
# KEEP_SCRATCH=1 keeps the lists it compared, in the directory it names.
set -euo pipefail

if [ $# -ne 4 ]; then
    echo "usage: $0 BUILD_DIR SOURCE_DIR PATH_TO_METATAGS PATH_TO_SQUARE" >&2
    exit 2
fi
BUILD_DIR=$1
SOURCE_DIR=$2
METATAGS=$3
SQUARE=$4
SCRATCH=$(mktemp -d)
trap '[ -n "${KEEP_SCRATCH:-}" ] && echo "kept $SCRATCH" || rm -rf "$SCRATCH"' EXIT
ERR=$SCRATCH/err
# shellcheck source=tests/check.sh
. "$(dirname "$0")/check.sh"

# The warnings a page must not have are groff's; man-db only passes them on.
CHECK="groff is installed"
command -v groff >/dev/null || fail "no groff: scripts/install-deps.sh installs groff-base"
pass

# section PAGE NAME: the roff source of section NAME (.SH NAME up to the next
# .SH), with \- as - and the font escapes gone, so options read as typed.
section() {
    awk -v name="$2" '
        /^\.SH / { title = substr($0, 5); gsub(/"/, "", title); inside = (title == name); next }
        inside' "$1" | sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\%//g'
}

# tags: the tag lines of the .TP paragraphs in stdin: an option, a number.
tags() {
    awk 'previous_was_tp { print } { previous_was_tp = ($0 == ".TP") }'
}

long_options() {
    grep -oE -- '--[a-z][a-z-]*' | sort -u || true
}

short_options() {
    grep -oE -- '(^|[[:space:]",])-[a-zA-Z]([[:space:]",]|$)' | grep -oE -- '-[a-zA-Z]' | sort -u || true
}

# same_set WHAT LEFT_NAME LEFT_FILE RIGHT_NAME RIGHT_FILE: fails showing what
# only one side has.
same_set() {
    [ -s "$3" ] || fail "no $1 found in $2"
    if ! cmp -s "$3" "$5"; then
        echo "--- $1: only in $2 (<) or only in $4 (>):"
        diff "$3" "$5" | grep '^[<>]' || true
        fail "$1 differ between $2 and $4"
    fi
}

# The exit statuses every app shares, from apps/common/app_cli.h.
grep -oE 'EXIT_[A-Z_]+ = [0-9]+' "$SOURCE_DIR/apps/common/app_cli.h" | grep -oE '[0-9]+$' | sort -u >"$SCRATCH/common.status"
[ -s "$SCRATCH/common.status" ] || { echo "FAIL: no EXIT_* values in apps/common/app_cli.h"; exit 1; }

# The environment variables hpool_options says the library reads (not the
# MPI_COMM_* constants, error codes and macros of its comments).
macros=$(grep -oE '^#define [A-Z][A-Z0-9_]*' "$SOURCE_DIR/include/hpool.h" | awk '{print $2}' | sort -u)
sed -n '/^typedef struct hpool_options {/,/^} hpool_options;/p' "$SOURCE_DIR/include/hpool.h" |
    grep -oE '\b([A-Z][A-Z0-9]*(_[A-Z0-9]+)+|TMPDIR)\b' | grep -vE '^(MPI_COMM_|HPOOL_E[A-Z]+$)' |
    grep -vxF -f <(echo "$macros") | sort -u >"$SCRATCH/library.environment"
[ -s "$SCRATCH/library.environment" ] || { echo "FAIL: no variables in hpool_options in include/hpool.h"; exit 1; }

check_page() {
    local app=$1 program=$2
    local page=$SOURCE_DIR/apps/$app/$app.1 work=$SCRATCH/$app
    mkdir -p "$work"

    CHECK="$app.1 renders without a warning (groff -man -ww)"
    [ -f "$page" ] || fail "no $page"
    # Both devices: man-db picks ascii when the locale is C.
    local device
    for device in utf8 ascii; do
        groff -man -T"$device" -ww -z "$page" 2>"$ERR" || fail "groff -T$device failed"
        [ ! -s "$ERR" ] || fail "groff -T$device warned"
    done
    # man-db's own reading of it, where man is installed.
    if command -v man >/dev/null; then
        MANWIDTH=80 man --warnings -l "$page" >/dev/null 2>"$ERR" || fail "man -l failed"
        [ ! -s "$ERR" ] || fail "man -l warned"
    fi
    pass

    CHECK="$app.1 has the sections of a man page"
    local sections=(NAME SYNOPSIS DESCRIPTION OPTIONS ENVIRONMENT "EXIT STATUS" EXAMPLES "SEE ALSO")
    [ "$app" != metatags ] || sections+=("OUTPUT FORMATS")
    local name
    for name in "${sections[@]}"; do
        grep -qE "^\.SH \"?$name\"?\$" "$page" || fail "no .SH $name"
    done
    section "$page" EXAMPLES >"$work/examples"
    grep -q "^mpirun " "$work/examples" || fail "no mpirun example"
    grep -q "^srun " "$work/examples" || fail "no srun example"
    grep -q "^$app " "$work/examples" || fail "no plain example"
    pass

    CHECK="$app.1 is the version $app --version prints"
    local version
    version=$("$program" --version </dev/null 2>"$ERR") || fail "$app --version failed"
    version=${version##* }
    grep -qE "^\.TH [A-Z]+ 1 [^ ]+ \"hpool $version\"" "$page" || fail "its .TH does not say \"hpool $version\""
    pass

    CHECK="$app --help"
    "$program" --help >"$work/help" </dev/null 2>"$ERR" || fail "it failed"
    # --help's option lines start with two blanks and the option, as
    # "  --timeout S" or "  -i, --ignore-case"; its prose mentions others
    # (srun --cpus-per-task) that are not the app's.
    grep -E -- '^  (-[a-zA-Z], )?--[a-z]' "$work/help" | sed 's/^  //; s/  .*//' >"$work/help.lines"
    long_options <"$work/help.lines" >"$work/help.long"
    short_options <"$work/help.lines" >"$work/help.short"
    # The getopt_long table and short-option string in main.c.
    local main_c=$SOURCE_DIR/apps/$app/main.c
    grep -oE '\{"[a-z][a-z-]*", *(no|required|optional)_argument' "$main_c" | cut -d'"' -f2 | sed 's/^/--/' |
        sort -u >"$work/code.long"
    grep -oE 'getopt_long\([^"]*"[^"]*"' "$main_c" | sed 's/.*"\([^"]*\)"$/\1/' | tr -d ':+-' | grep -oE '[a-zA-Z]' |
        sed 's/^/-/' | sort -u >"$work/code.short"
    section "$page" OPTIONS | tags >"$work/page.tags"
    long_options <"$work/page.tags" >"$work/page.long"
    short_options <"$work/page.tags" >"$work/page.short"

    CHECK="$app --help lists every option of its getopt_long table"
    same_set "long options" "--help" "$work/help.long" "main.c" "$work/code.long"
    same_set "short options" "--help" "$work/help.short" "main.c" "$work/code.short"
    pass

    CHECK="$app.1 OPTIONS has an entry for every option, and no other"
    same_set "long options" "--help" "$work/help.long" "$app.1" "$work/page.long"
    same_set "short options" "--help" "$work/help.short" "$app.1" "$work/page.short"
    pass

    CHECK="$app.1 names no option $app lacks, outside EXAMPLES and SEE ALSO"
    awk '/^\.SH "?(EXAMPLES|SEE ALSO)"?$/ { skip = 1; next } /^\.SH / { skip = 0 } !skip' "$page" |
        sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' | long_options >"$work/page.mentioned"
    comm -23 "$work/page.mentioned" "$work/code.long" >"$work/page.unknown"
    [ ! -s "$work/page.unknown" ] || fail "it names $(tr '\n' ' ' <"$work/page.unknown")"
    pass

    CHECK="$app.1 EXIT STATUS lists the statuses of --help and apps/common"
    sed -n '/^exit status:/,/^$/p' "$work/help" | grep -oE '^  [0-9]+ ' | tr -d ' ' | sort -u >"$work/help.status"
    section "$page" "EXIT STATUS" | tags | grep -oE '^\.B [0-9]+$' | grep -oE '[0-9]+' | sort -u >"$work/page.status"
    same_set "exit statuses" "--help" "$work/help.status" "$app.1" "$work/page.status"
    same_set "exit statuses" "apps/common/app_cli.h" "$SCRATCH/common.status" "$app.1" "$work/page.status"
    pass

    CHECK="$app.1 ENVIRONMENT names the variables of --help and of hpool_options"
    section "$page" ENVIRONMENT >"$work/page.environment"
    grep -oE '\b[A-Z][A-Z0-9]*(_[A-Z0-9]+)+\b' "$work/help" | sort -u >"$work/help.environment"
    cat "$work/help.environment" "$SCRATCH/library.environment" | sort -u >"$work/environment"
    if [ "$app" = square ]; then
        # Only keyed calls (metatags --count) spill pairs to files; square
        # makes none, so their budget and directory are no concern of its.
        grep -vxE 'HPOOL_MEMORY_BUDGET|TMPDIR' "$work/environment" >"$work/environment.square" || true
        mv "$work/environment.square" "$work/environment"
    fi
    local variable
    while read -r variable; do
        grep -qw -- "$variable" "$work/page.environment" || fail "no $variable"
    done <"$work/environment"
    pass
}

check_page metatags "$METATAGS"
check_page square "$SQUARE"

CHECK="cmake --install puts the pages in share/man/man1"
cmake --install "$BUILD_DIR" --prefix "$SCRATCH/prefix" >/dev/null 2>"$ERR" || fail "cmake --install failed"
for app in metatags square; do
    installed=$SCRATCH/prefix/share/man/man1/$app.1
    [ -f "$installed" ] || fail "no $installed"
    cmp -s "$installed" "$SOURCE_DIR/apps/$app/$app.1" || fail "$installed is not apps/$app/$app.1"
done
pass
