#!/usr/bin/env python3
"""reference.py: what metatags must print, computed with Python's re.findall, for golden files and tests.

    reference.py [--count] [--format raw|jsonl] [--pattern P] [-i] INPUT...

INPUTs are files, directories (walked like metatags: names ending .html or
.htm, symbolic links followed, whole paths sorted bytewise) or @LIST files.
Pages that cannot be read are skipped here; the tests check their reports.
"""
import json
import os
import re
import sys
from collections import Counter


def walk(directory):
    paths = []
    for root, dirs, files in os.walk(directory, followlinks=True):
        for name in files:
            if name.endswith(b".html") or name.endswith(b".htm"):
                paths.append(os.path.join(root, name))
    return sorted(paths)


def join(directory, name):
    return directory + name if directory.endswith(b"/") else directory + b"/" + name


def expand(argument):
    if argument.startswith(b"@"):
        with open(argument[1:], "rb") as listing:
            names = [line.rstrip(b"\r\n") for line in listing]
        return [page for name in names if name for page in expand_one(name)]
    return expand_one(argument)


def expand_one(name):
    if os.path.isdir(name):
        # os.walk joins with "/" unless the directory ends with one, as metatags does.
        return walk(name)
    return [name]


def json_string(data):
    # metatags' rule: UTF-8 passes through, a stray byte becomes \udcXX.
    text = json.dumps(data.decode("utf-8", "surrogateescape"), ensure_ascii=False)
    return re.sub("[\udc80-\udcff]", lambda m: "\\u%04x" % ord(m.group()), text).encode("utf-8")


def main():
    args = sys.argv[1:]
    count = "--count" in args
    jsonl = False
    pattern = b"<meta .*?>"
    flags = 0
    inputs = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--count":
            pass
        elif a == "--format":
            i += 1
            jsonl = args[i] == "jsonl"
        elif a == "--pattern":
            i += 1
            pattern = os.fsencode(args[i])
        elif a == "-i":
            flags = re.IGNORECASE
        else:
            inputs.append(os.fsencode(a))
        i += 1
    # (*UTF) makes PCRE2 match characters: Python's str patterns on the
    # decoded page do the same (an empty match moves on by a character).
    utf = pattern.startswith(b"(*UTF)")
    regex = re.compile(pattern[len(b"(*UTF)"):].decode() if utf else pattern, flags)
    out = sys.stdout.buffer
    counts = Counter()
    for argument in inputs:
        for path in expand(argument):
            try:
                with open(path, "rb") as page:
                    data = page.read()
            except OSError:
                continue
            # findall's matches; for patterns with groups findall would give
            # the groups, metatags (like grep -o) the whole match.
            # A page that is not all UTF-8 is, to a (*UTF) pattern, runs of
            # UTF-8 between stray bytes that match nothing
            # (PCRE2_MATCH_INVALID_UTF): each run is searched on its own.
            # (Not for ^, $ or lookbehinds, which PCRE2 does not let see a
            # run's edge as the page's; the tests' patterns use none.)
            if utf:
                runs = re.split("[\udc80-\udcff]+", data.decode("utf-8", "surrogateescape"))
            else:
                runs = [data]
            for match in (m.group(0) for run in runs for m in regex.finditer(run)):
                if utf:
                    match = match.encode("utf-8")
                if count:
                    counts[match] += 1
                elif jsonl:
                    out.write(b'{"path":' + json_string(path) + b',"match":' + json_string(match) + b"}\n")
                else:
                    out.write(path + b"\t" + match + b"\n")
    if count:
        for match, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            if jsonl:
                out.write(b'{"match":' + json_string(match) + b',"count":' + str(n).encode() + b"}\n")
            else:
                out.write(str(n).encode() + b"\t" + match + b"\n")


if __name__ == "__main__":
    main()
