#!/usr/bin/env bash
# make_golden.sh: regenerates golden/ from pages/ with Python's re.findall (reference.py); run after changing a page.
set -euo pipefail
cd "$(dirname "$0")"
python=/usr/bin/python3
mkdir -p golden
# name ~ reference.py arguments (the same ones metatags takes)
while IFS='~' read -r name arguments; do
  eval "$python reference.py $arguments" > "golden/$name.out"
done <<'CASES'
default~pages
count~--count pages
jsonl~--format jsonl pages
count-jsonl~--count --format jsonl pages
ignore-case~-i pages
ignore-case-count~-i --count pages
content-attribute~--pattern 'content="[^"]*"' pages
alternation~--pattern '<(meta|link) [^>]*>' pages
empty-matches~--pattern 'x*' pages/no-space.html pages/one-line.html pages/nested.html
files-and-list~pages/utf-8.html @pages.list pages/sub
CASES
