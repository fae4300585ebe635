#!/usr/bin/env python3
"""Replaces one section of docs/benchmarks.md with standard input.

  some-benchmark | scripts/bench_section.py NAME

The section is the text between `<!-- BEGIN NAME -->` and `<!-- END NAME -->`; it is appended (with
its markers) when the file does not have it yet. The file is rewritten atomically.
"""
import os
import sys
import tempfile

name = sys.argv[1]
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "benchmarks.md")
body = sys.stdin.read().rstrip("\n") + "\n"
begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
if begin in text and end in text:
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    text = f"{head}{begin}\n{body}{end}{tail}"
else:
    text = text.rstrip("\n") + f"\n\n{begin}\n{body}{end}\n"
fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path))
with os.fdopen(fd, "w") as f:
    f.write(text)
os.replace(tmp, path)
print(f"updated section {name} of {os.path.normpath(path)}", file=sys.stderr)
