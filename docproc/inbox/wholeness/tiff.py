"""Tell whether a TIFF's IFD chain, and its first and last IFD's data, lie inside the file."""

from __future__ import annotations

import struct
from typing import Literal

from docproc.inbox.wholeness.reader import OpenFile

MAX_IFDS = 10_000
MAX_TIFF_ENTRIES = 4096  # entries of an IFD read for its tags; more is odd, only bounds are checked
MAX_TIFF_VALUES = 16_384  # strip or tile offsets read for one IFD


class Layout:
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


def check(f: OpenFile) -> str | None:
    """Follow the IFD chain inside the file; the first and last IFD's data must lie inside too.

    A writer appends page after page: only the last IFD can point to data not yet written.
    """
    big = f.head[2:4] in (b"+\0", b"\0+")
    layout = Layout("<" if f.head[:2] == b"II" else ">", big)
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


def _tiff_ifd_data(f: OpenFile, layout: Layout, offset: int) -> str | None:
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


def _tiff_data_end(f: OpenFile, layout: Layout, fields: list[tuple[int, int, int, bytes]]) -> int:
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


def _tiff_uints(layout: Layout, kind: int, count: int, data: bytes) -> list[int]:
    """Return the count unsigned numbers of a type in data; none when they are not numbers."""
    fmt = TIFF_UINTS.get(kind)
    if fmt is None or len(data) < count * struct.calcsize(fmt):
        return []
    return list(struct.unpack_from(f"{layout.order}{count}{fmt}", data))
