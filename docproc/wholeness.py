"""Tell whether a file written in place is structurally whole yet, from its first and last bytes.

Scanners write PDFs page by page, copies over SMB reserve a file's size and fill it from the
front: a file can look quiet long before it is whole. missing_end names what such a file still
lacks at its end, for the formats whose end can be checked cheaply (PDF, JPEG, PNG, GIF, ZIP
and the Office/OpenDocument/EPUB files built on it, TIFF); anything else is None.

Calling a whole file incomplete is the worse error (it waits, then fails as truncated), so each
check is lenient where writers differ, and a structure that cannot be followed counts as whole.
"""

from __future__ import annotations

import os
import re
import stat
import struct
from collections.abc import Callable
from functools import cached_property
from typing import Literal

HEAD = 1024  # %PDF- may follow up to this much junk
TAIL = 4096
BLOCK = 4096
# Bytes of NUL or whitespace allowed after an end marker; more NULs mean space reserved, unwritten.
PADDING = 64
PAD_BYTES = b"\0 \t\r\n\f"
MAX_STEPS = 2000  # chunks, blocks or segments a structural walk may visit (a few ms)
MAX_SCAN = 16 << 20  # bytes of JPEG image data searched for the end-of-image marker
SCAN_CHUNK = 1 << 20
MAX_IFDS = 10_000
MAX_TIFF_ENTRIES = 4096  # entries of an IFD read for its tags; more is odd, only bounds are checked
MAX_TIFF_VALUES = 16_384  # strip or tile offsets read for one IFD

NAMES = {
    ".pdf": "a PDF",
    ".jpg": "a JPEG",
    ".jpeg": "a JPEG",
    ".png": "a PNG",
    ".gif": "a GIF",
    ".tif": "a TIFF",
    ".tiff": "a TIFF",
    ".zip": "a ZIP file",
    ".docx": "a ZIP (Office) file",
    ".xlsx": "a ZIP (Office) file",
    ".pptx": "a ZIP (Office) file",
    ".odt": "a ZIP (OpenDocument) file",
    ".ods": "a ZIP (OpenDocument) file",
    ".odp": "a ZIP (OpenDocument) file",
    ".epub": "a ZIP (EPUB) file",
}
TEXT_SUFFIXES = frozenset(
    {".csv", ".tsv", ".txt", ".json", ".xml", ".html", ".htm", ".md", ".eml", ".log"}
)
RESERVED = "whose first bytes are still zeros (space reserved, not yet written)"
TEXT_RESERVED = "a text file whose end is still zeros (space reserved, not yet written)"

PDF_NO_EOF = "a PDF without %%EOF after its startxref"
PDF_NO_STARTXREF = "a PDF without startxref before its %%EOF"
JPEG_NO_EOI = "a JPEG without its end-of-image marker"
PNG_NO_IEND = "a PNG without its IEND chunk"
GIF_NO_TRAILER = "a GIF without its trailer"

STARTXREF = re.compile(rb"startxref[\s\0]*(\d+)")
LINEARIZED = re.compile(rb"/Linearized\b.{0,200}?/L\s+(\d+)", re.DOTALL)
PNG_IEND = b"\0\0\0\0IEND\xaeB`\x82"
ZIP_EOCD = b"PK\x05\x06"
ZIP_EOCD_SEARCH = 22 + 0xFFFF  # the record and the longest comment

# The sentinel a walk returns when the structure runs off the end of the file.
RUNS_OFF = -1


class _File:
    """An open regular file: its size, name suffix, first bytes, last bytes and bounded reads."""

    def __init__(self, fd: int, size: int, suffix: str) -> None:
        self.fd = fd
        self.size = size
        self.suffix = suffix
        # A small file is read whole, once.
        self.head = os.pread(fd, TAIL if size <= TAIL else HEAD, 0)
        self._block_start = 0
        self._block = self.head

    @cached_property
    def tail(self) -> bytes:
        """Return the last TAIL bytes (the whole file when it is small)."""
        if self.size <= len(self.head):
            return self.head
        return os.pread(self.fd, TAIL, self.size - TAIL)

    def read(self, offset: int, length: int) -> bytes:
        """Return up to length bytes at offset."""
        return os.pread(self.fd, length, offset)

    def at(self, offset: int, length: int) -> bytes:
        """Return up to length bytes at offset, from the last block read when they are there."""
        start = offset - self._block_start
        if start < 0 or start + length > len(self._block):
            self._block_start, self._block = offset, os.pread(self.fd, max(length, BLOCK), offset)
            start = 0
        return self._block[start:start + length]


def missing_end(path: str | os.PathLike[str]) -> str | None:
    """Return what a file of a checkable format still lacks at its end.

    None when whole or not checkable (also for an empty, vanished or non-regular file).
    """
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size == 0:
            return None
        f = _File(fd, info.st_size, suffix)
        check = _checker(f)
        if check is not None:
            return check(f)
        return _reserved(f)
    except OSError:
        return None
    finally:
        os.close(fd)


def _checker(f: _File) -> Callable[[_File], str | None] | None:
    """Return the check for the file's format, told by its first bytes."""
    for magic, check in MAGIC:
        if f.head.startswith(magic):
            return check
    start = f.head.find(b"%PDF-", 0, HEAD)
    # Past byte 0, a mention of %PDF- in a text file is not a header.
    if start == 0 or (start > 0 and f.suffix not in TEXT_SUFFIXES):
        return _pdf
    return None


def _reserved(f: _File) -> str | None:
    """Return the phrase for a file of unknown content whose reserved space is still zeros."""
    if f.suffix in NAMES and not f.head[:8].strip(b"\0"):
        return f"{NAMES[f.suffix]} {RESERVED}"
    if f.suffix in TEXT_SUFFIXES and (_zero_tail(f) or not f.tail.strip(b"\0")):
        return TEXT_RESERVED
    return None


def _ends_with(data: bytes, marker: bytes) -> bool:
    """Tell whether data ends with marker, allowing a little padding after it."""
    body = data.rstrip(PAD_BYTES)
    return len(data) - len(body) <= PADDING and body.endswith(marker)


def _zero_tail(f: _File) -> bool:
    """Tell whether the file ends in zeros where data belongs: space reserved, not yet written."""
    return f.size >= PADDING and not f.tail[-PADDING:].strip(b"\0")


def _pdf(f: _File) -> str | None:
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


def _jpeg(f: _File) -> str | None:
    """Check for the end-of-image marker at the end, or after the first scan when data follows."""
    scan = _jpeg_scan_start(f)
    if scan == RUNS_OFF:
        return JPEG_NO_EOI
    if _ends_with(f.tail, b"\xff\xd9"):
        return None
    if scan is None:
        return JPEG_NO_EOI if _zero_tail(f) else None
    # Phones append data after the image (Motion Photos a whole MP4). Image data stuffs every
    # FF as FF 00, so the first FF D9 after the first scan starts is the image's end.
    found = _find(f, b"\xff\xd9", scan, MAX_SCAN)
    return JPEG_NO_EOI if found is False else None


def _jpeg_scan_start(f: _File) -> int | None:
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


def _find(f: _File, needle: bytes, start: int, limit: int) -> bool | None:
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


def _png(f: _File) -> str | None:
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
            return PNG_NO_IEND if b"\0" in kind or _zero_tail(f) else None
        pos += 12 + length
        if pos > f.size:
            return PNG_NO_IEND
        if kind == b"IEND":
            return None
    return None


def _gif(f: _File) -> str | None:
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
            return None if images and not _zero_tail(f) else GIF_NO_TRAILER
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
            return GIF_NO_TRAILER if introducer == b"\0" or _zero_tail(f) else None
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


def _zip(f: _File) -> str | None:
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


def _zip_has_end(f: _File, data: bytes, base: int) -> bool:
    """Tell whether data, read at byte base, holds a valid end-of-central-directory record."""
    end = len(data)
    while (found := data.rfind(ZIP_EOCD, 0, end)) >= 0:
        if _zip_directory_inside(f, base + found, data[found:found + 22]):
            return True
        end = found
    return False


def _zip_directory_inside(f: _File, at: int, record: bytes) -> bool:
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


class _Layout:
    """The field sizes of classic TIFF or BigTIFF in one byte order."""

    def __init__(self, order: str, big: bool) -> None:
        self.order = order
        # Formats and sizes of an IFD's entry count, of an offset, of an entry and of its value.
        self.count_fmt, self.count_size = ("Q", 8) if big else ("H", 2)
        self.offset_fmt, self.value = ("Q", 8) if big else ("I", 4)
        self.entry = 20 if big else 12
        # An entry: tag, type, count, and the value itself or the offset of the values.
        self.entry_fmt = order + ("HHQ8s" if big else "HHI4s")
        self.byteorder: Literal["little", "big"] = "little" if order == "<" else "big"

    def unpack(self, fmt: str, data: bytes, offset: int = 0) -> int:
        """Return the one number of fmt at offset in data."""
        return int(struct.unpack_from(self.order + fmt, data, offset)[0])


# TIFF field types that can hold strip or tile offsets and counts, by their sizes.
TIFF_UINTS = {3: "H", 4: "I", 16: "Q"}
# StripOffsets, StripByteCounts, TileOffsets, TileByteCounts.
IMAGE_DATA_TAGS = (273, 279, 324, 325)
TIFF_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8,
                   13: 4, 16: 8, 17: 8, 18: 8}


def _tiff(f: _File) -> str | None:
    """Follow the IFD chain inside the file; the first and last IFD's data must lie inside too.

    A writer appends page after page: only the last IFD can point to data not yet written.
    """
    big = f.head[2:4] in (b"+\0", b"\0+")
    layout = _Layout("<" if f.head[:2] == b"II" else ">", big)
    header = 16 if big else 8
    if len(f.head) < header:
        return "a TIFF whose header is cut short"
    offset = layout.unpack(layout.offset_fmt, f.head, header - layout.value)
    if offset == 0:
        return "a TIFF whose first IFD is not written yet"
    first, seen = offset, set[int]()
    while offset != 0:
        if offset in seen or len(seen) >= MAX_IFDS:
            return None  # a loop is a broken file, not an unfinished one; too long: unknown
        seen.add(offset)
        last = offset
        counted = f.at(offset, layout.count_size)
        count = layout.unpack(layout.count_fmt, counted) if len(counted) == layout.count_size else 0
        end = offset + layout.count_size + count * layout.entry + layout.value
        if not counted or end > f.size:
            return f"a TIFF whose IFD at byte {offset} lies past the end (file has {f.size} bytes)"
        if count == 0:
            return f"a TIFF whose IFD at byte {offset} is empty (not yet written)"
        offset = layout.unpack(layout.offset_fmt, f.at(end - layout.value, layout.value))
    for checked in dict.fromkeys((first, last)):
        if (problem := _tiff_ifd_data(f, layout, checked)) is not None:
            return problem
    return None


def _tiff_ifd_data(f: _File, layout: _Layout, offset: int) -> str | None:
    """Return what an IFD inside the file lacks: its entries, values, strips or tiles."""
    count = layout.unpack(layout.count_fmt, f.at(offset, layout.count_size))
    if count > MAX_TIFF_ENTRIES:
        return None
    entries = f.at(offset + layout.count_size, count * layout.entry)
    fields = list(struct.iter_unpack(layout.entry_fmt, entries))
    if any(tag == kind == 0 for tag, kind, _, _ in fields):
        return f"a TIFF whose IFD at byte {offset} is not fully written (zeros)"
    data_end = _tiff_data_end(f, layout, fields)
    if data_end > f.size:
        return (f"a TIFF whose IFD at byte {offset} points past the end "
                f"(to byte {data_end}, file has {f.size} bytes)")
    return None


def _tiff_data_end(f: _File, layout: _Layout, fields: list[tuple[int, int, int, bytes]]) -> int:
    """Return where the last of an IFD's standard values and its strips or tiles end."""
    end = 0
    arrays: dict[int, list[int]] = {}
    for tag, kind, count, value in fields:
        length = count * TIFF_TYPE_SIZES.get(kind, 0)
        # Private tags (32768 and up) may hold anything: only standard ones are trusted.
        if length > layout.value and tag < 32768:
            where = int.from_bytes(value, layout.byteorder)
            end = max(end, where + length)
            if tag in IMAGE_DATA_TAGS and count <= MAX_TIFF_VALUES and where + length <= f.size:
                arrays[tag] = _tiff_uints(layout, kind, count, f.at(where, length))
        elif tag in IMAGE_DATA_TAGS:
            arrays[tag] = _tiff_uints(layout, kind, count, value)
    for offsets, counts in (IMAGE_DATA_TAGS[:2], IMAGE_DATA_TAGS[2:]):
        pairs = zip(arrays.get(offsets, []), arrays.get(counts, []), strict=False)
        end = max([end, *(start + length for start, length in pairs if length)])
    return end


def _tiff_uints(layout: _Layout, kind: int, count: int, data: bytes) -> list[int]:
    """Return the count unsigned numbers of a type in data; none when they are not numbers."""
    fmt = TIFF_UINTS.get(kind)
    if fmt is None or len(data) < count * struct.calcsize(fmt):
        return []
    return list(struct.unpack_from(f"{layout.order}{count}{fmt}", data))


MAGIC: tuple[tuple[bytes, Callable[[_File], str | None]], ...] = (
    (b"\xff\xd8\xff", _jpeg),
    (b"\x89PNG\r\n\x1a\n", _png),
    (b"GIF87a", _gif),
    (b"GIF89a", _gif),
    (b"PK\x03\x04", _zip),
    (b"PK\x05\x06", _zip),
    (b"II*\0", _tiff),
    (b"MM\0*", _tiff),
    (b"II+\0", _tiff),
    (b"MM\0+", _tiff),
)
