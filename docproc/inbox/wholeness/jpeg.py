"""Tell whether a JPEG has its end-of-image marker, skipping segments by their lengths."""

from __future__ import annotations

from docproc.inbox.wholeness.reader import MAX_STEPS, RUNS_OFF, OpenFile, ends_with, zero_tail

MAX_SCAN = 16 << 20  # bytes of JPEG image data searched for the end-of-image marker
SCAN_CHUNK = 1 << 20
JPEG_NO_EOI = "a JPEG without its end-of-image marker"


def check(f: OpenFile) -> str | None:
    """Check for the end-of-image marker at the end, or after the first scan when data follows."""
    scan = _jpeg_scan_start(f)
    if scan == RUNS_OFF:
        return JPEG_NO_EOI
    if ends_with(f.tail, b"\xff\xd9"):
        return None
    if scan is None:
        return JPEG_NO_EOI if zero_tail(f) else None
    # Phones append data after the image (Motion Photos a whole MP4). Image data stuffs every
    # FF as FF 00, so the first FF D9 after the first scan starts is the image's end.
    found = _find(f, b"\xff\xd9", scan, MAX_SCAN)
    return JPEG_NO_EOI if found is False else None


def _jpeg_scan_start(f: OpenFile) -> int | None:
    """Return where the first scan's data starts, RUNS_OFF if the file ends first, else None.

    Segments are skipped by their lengths, so an EXIF thumbnail's end marker is never taken
    for the image's.
    """
    pos = 2
    for _ in range(MAX_STEPS):
        marker = f.at(pos, 4)
        if len(marker) < 2:
            return RUNS_OFF
        if marker[0] != 0xFF:
            return None
        kind = marker[1]
        if kind == 0xFF:  # fill byte
            pos += 1
        elif kind in (0x01, 0xD8) or 0xD0 <= kind <= 0xD7:  # no length
            pos += 2
        elif kind == 0xD9:
            return None
        elif len(marker) < 4:
            return RUNS_OFF
        else:
            pos += 2 + int.from_bytes(marker[2:4], "big")
            if pos > f.size:
                return RUNS_OFF
            if kind == 0xDA:
                return pos
    return None


def _find(f: OpenFile, needle: bytes, start: int, limit: int) -> bool | None:
    """Tell whether needle occurs from start on; None when limit bytes were searched in vain."""
    pos, carry = start, b""
    while pos < f.size:
        if pos - start >= limit:
            return None
        chunk = f.read(pos, SCAN_CHUNK)
        if not chunk:
            break
        if needle in carry + chunk:
            return True
        carry = chunk[1 - len(needle):]
        pos += len(chunk)
    return False
