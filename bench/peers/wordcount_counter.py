"""wordcount_counter.py: the Python reference for examples/wordcount: collections.Counter over each file's bytes.split(), printed COUNT<TAB>WORD.

    wordcount_counter.py FILE...

Words never span two files: each file is split on its own. Lines are sorted
by count, most frequent first, then by the word's bytes, as
examples/wordcount prints them, so that the two can be compared with cmp.
One file at a time, so memory holds one file's words, not the corpus's.
"""
import collections
import sys


def main():
    counts = collections.Counter()
    for path in sys.argv[1:]:
        with open(path, "rb") as file:
            counts.update(file.read().split())
    out = sys.stdout.buffer
    for word, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        out.write(b"%d\t%s\n" % (count, word))
    out.flush()


if __name__ == "__main__":
    main()
