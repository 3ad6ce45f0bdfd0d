"""Read a file's first and last bytes and bounded blocks; helpers every format check uses."""

from __future__ import annotations

import os
from functools import cached_property

HEAD = 1024  # %PDF- may follow up to this much junk
TAIL = 4096
BLOCK = 4096
# Bytes of NUL or whitespace allowed after an end marker; more NULs mean space reserved, unwritten.
PADDING = 64
PAD_BYTES = b"\0 \t\r\n\f"
MAX_STEPS = 2000  # chunks, blocks or segments a structural walk may visit (a few ms)

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

# The sentinel a walk returns when the structure runs off the end of the file.
RUNS_OFF = -1


class OpenFile:
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


def ends_with(data: bytes, marker: bytes) -> bool:
    """Tell whether data ends with marker, allowing a little padding after it."""
    body = data.rstrip(PAD_BYTES)
    return len(data) - len(body) <= PADDING and body.endswith(marker)


def zero_tail(f: OpenFile) -> bool:
    """Tell whether the file ends in zeros where data belongs: space reserved, not yet written."""
    return f.size >= PADDING and not f.tail[-PADDING:].strip(b"\0")
