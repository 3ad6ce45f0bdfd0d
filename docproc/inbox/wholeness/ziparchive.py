"""Tell whether a ZIP (and Office, OpenDocument, EPUB) file has its end of central directory."""

from __future__ import annotations

import struct

from docproc.inbox.wholeness.reader import NAMES, OpenFile

ZIP_EOCD = b"PK\x05\x06"
ZIP_EOCD_SEARCH = 22 + 0xFFFF  # the record and the longest comment


def check(f: OpenFile) -> str | None:
    """Check for an end of central directory whose central directory lies inside the file."""
    if _zip_has_end(f, f.tail, f.size - len(f.tail)):
        return None
    # Only a long archive comment puts the record further back.
    start = max(0, f.size - ZIP_EOCD_SEARCH)
    if start < f.size - len(f.tail) and _zip_has_end(f, f.read(start, ZIP_EOCD_SEARCH), start):
        return None
    name = NAMES.get(f.suffix, "")
    name = name if name.startswith("a ZIP") else "a ZIP file"
    return f"{name} without its end of central directory"


def _zip_has_end(f: OpenFile, data: bytes, base: int) -> bool:
    """Tell whether data, read at byte base, holds a valid end-of-central-directory record."""
    end = len(data)
    while (found := data.rfind(ZIP_EOCD, 0, end)) >= 0:
        if _zip_directory_inside(f, base + found, data[found:found + 22]):
            return True
        end = found
    return False


def _zip_directory_inside(f: OpenFile, at: int, record: bytes) -> bool:
    """Tell whether the end-of-central-directory record at byte at points to a whole directory."""
    if len(record) < 22:
        return False
    entries, size, offset = struct.unpack("<10xHII", record[:20])
    if 0xFFFFFFFF in (size, offset) or entries == 0xFFFF:
        locator = f.at(at - 20, 20) if at >= 20 else b""
        if locator[:4] == b"PK\x06\x07":
            at = struct.unpack("<8xQ4x", locator)[0]
            zip64 = f.at(at, 56)
            if len(zip64) < 56 or zip64[:4] != b"PK\x06\x06":
                return False
            entries, size, offset = struct.unpack("<32xQQQ", zip64)
        elif 0xFFFFFFFF in (size, offset):
            return False
    if offset + size > at:
        return False
    return entries == 0 or f.at(offset, 4) == b"PK\x01\x02"
