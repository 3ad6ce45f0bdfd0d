"""Tell whether a PNG has its IEND chunk, walking its chunks when it is not near the end."""

from __future__ import annotations

import struct

from docproc.inbox.wholeness.reader import MAX_STEPS, OpenFile, zero_tail

PNG_NO_IEND = "a PNG without its IEND chunk"
PNG_IEND = b"\0\0\0\0IEND\xaeB`\x82"


def check(f: OpenFile) -> str | None:
    """Check for the IEND chunk near the end, else walk the chunks to find it or run off."""
    if PNG_IEND in f.tail:
        return None
    pos = 8
    for _ in range(MAX_STEPS):
        header = f.at(pos, 8)
        if len(header) < 8:
            return PNG_NO_IEND
        length, kind = struct.unpack(">I4s", header)
        if not kind.isalpha():
            # Zeros where a chunk type belongs: space reserved, not yet written.
            return PNG_NO_IEND if b"\0" in kind or zero_tail(f) else None
        pos += 12 + length
        if pos > f.size:
            return PNG_NO_IEND
        if kind == b"IEND":
            return None
    return None
