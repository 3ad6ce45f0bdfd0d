"""Tell what a PDF still lacks at its end: %%EOF, startxref, or its linearized length."""

from __future__ import annotations

import re

from docproc.inbox.wholeness.reader import OpenFile

PDF_NO_EOF = "a PDF without %%EOF after its startxref"
PDF_NO_STARTXREF = "a PDF without startxref before its %%EOF"
STARTXREF = re.compile(rb"startxref[\s\0]*(\d+)")
LINEARIZED = re.compile(rb"/Linearized\b.{0,200}?/L\s+(\d+)", re.DOTALL)


def check(f: OpenFile) -> str | None:
    """Check for %%EOF near the end, after a startxref that points inside the file."""
    tail = f.tail
    eof = tail.rfind(b"%%EOF", max(0, len(tail) - 1024))
    if eof < 0:
        return PDF_NO_EOF
    start = tail.rfind(b"startxref", 0, eof)
    found = STARTXREF.match(tail, start, eof) if start >= 0 else None
    if found is None:
        return PDF_NO_STARTXREF
    offset = int(found.group(1))
    if offset >= f.size:
        return f"a PDF whose startxref ({offset}) lies past the end (file has {f.size} bytes)"
    if offset == 0:
        # The first-page trailer of a linearized file says startxref 0: only its start is here.
        declared = LINEARIZED.search(f.head)
        if declared is not None and int(declared.group(1)) > f.size:
            return (f"a PDF shorter than its linearization dictionary says "
                    f"({declared.group(1).decode()} bytes, file has {f.size})")
    return None
