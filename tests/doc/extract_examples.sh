#!/usr/bin/env bash
# extract_examples.sh: writes the example programs of hpool.h's opening comment and of the README as C files, so the suite compiles and runs exactly what they show.
# Usage: extract_examples.sh SOURCE_DIR OUTPUT_DIR
set -euo pipefail
source_dir=$1
output_dir=$2
mkdir -p "$output_dir"

# hpool.h: the lines indented under " *     " from the first "#include <hpool.h>"
# to the next line of prose (" * " and a word).
awk '
  /^ \*     #include <hpool.h>/ { inside = 1 }
  inside && /^ \* [^ ]/ { exit }
  inside { line = $0; if (!sub(/^ \*     /, "", line)) sub(/^ \*/, "", line); print line }
' "$source_dir/include/hpool.h" >"$output_dir/header_example.c.new"

# README.md: the first ```c block after "## A map function of your own".
awk '
  /^## A map function of your own/ { section = 1; next }
  section && /^```c$/ { inside = 1; next }
  inside && /^```$/ { exit }
  inside { print }
' "$source_dir/README.md" >"$output_dir/readme_example.c.new"

for example in header_example readme_example; do
  if [ ! -s "$output_dir/$example.c.new" ]; then
    echo "extract_examples.sh: found no $example" >&2
    exit 1
  fi
  # Always rewritten, so the file is newer than what it came from and make
  # does not run this again for each target that compiles it.
  mv "$output_dir/$example.c.new" "$output_dir/$example.c"
done
