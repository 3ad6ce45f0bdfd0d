"""Tell whether a GIF has its trailer, walking its blocks when it does not end with one."""

from __future__ import annotations

from docproc.inbox.wholeness.reader import MAX_STEPS, OpenFile, zero_tail

GIF_NO_TRAILER = "a GIF without its trailer"


def check(f: OpenFile) -> str | None:
    """Check for the trailer after the last block's terminator, else walk the blocks to it."""
    if f.tail.endswith(b"\0;"):
        return None
    steps, images = 0, 0
    pos = 13 + _color_table(f.head[10:11])
    while steps < MAX_STEPS:
        introducer = f.at(pos, 1)
        if introducer == b";":
            return None
        if introducer == b"":
            # Some writers leave the trailer out: ending after a whole image is whole enough.
            return None if images and not zero_tail(f) else GIF_NO_TRAILER
        if introducer == b"!":  # extension: label, then sub-blocks
            pos += 2
        elif introducer == b",":  # image: descriptor, color table, LZW code size, sub-blocks
            descriptor = f.at(pos, 10)
            if len(descriptor) < 10:
                return GIF_NO_TRAILER
            pos += 11 + _color_table(descriptor[9:10])
            images += 1
        else:
            # Zeros where a block belongs: space reserved, not yet written.
            return GIF_NO_TRAILER if introducer == b"\0" or zero_tail(f) else None
        while steps < MAX_STEPS:
            steps += 1
            length = f.at(pos, 1)
            if not length:
                return GIF_NO_TRAILER
            pos += 1 + length[0]
            if length == b"\0":
                break
    return None


def _color_table(flags: bytes) -> int:
    """Return the size of the color table that a GIF flags byte announces."""
    if not flags or not flags[0] & 0x80:
        return 0
    return 3 << ((flags[0] & 7) + 1)
