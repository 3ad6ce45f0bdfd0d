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
import stat
from collections.abc import Callable

from docproc.inbox.wholeness import gif, jpeg, pdf, png, tiff, ziparchive
from docproc.inbox.wholeness.reader import HEAD, NAMES, OpenFile, zero_tail

TEXT_SUFFIXES = frozenset(
    {".csv", ".tsv", ".txt", ".json", ".xml", ".html", ".htm", ".md", ".eml", ".log"}
)
RESERVED = "whose first bytes are still zeros (space reserved, not yet written)"
TEXT_RESERVED = "a text file whose end is still zeros (space reserved, not yet written)"

MAGIC: tuple[tuple[bytes, Callable[[OpenFile], str | None]], ...] = (
    (b"\xff\xd8\xff", jpeg.check),
    (b"\x89PNG\r\n\x1a\n", png.check),
    (b"GIF87a", gif.check),
    (b"GIF89a", gif.check),
    (b"PK\x03\x04", ziparchive.check),
    (b"PK\x05\x06", ziparchive.check),
    (b"II*\0", tiff.check),
    (b"MM\0*", tiff.check),
    (b"II+\0", tiff.check),
    (b"MM\0+", tiff.check),
)


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
        f = OpenFile(fd, info.st_size, suffix)
        check = _checker(f)
        if check is not None:
            return check(f)
        return _reserved(f)
    except OSError:
        return None
    finally:
        os.close(fd)


def _checker(f: OpenFile) -> Callable[[OpenFile], str | None] | None:
    """Return the check for the file's format, told by its first bytes."""
    for magic, check in MAGIC:
        if f.head.startswith(magic):
            return check
    start = f.head.find(b"%PDF-", 0, HEAD)
    # Past byte 0, a mention of %PDF- in a text file is not a header.
    if start == 0 or (start > 0 and f.suffix not in TEXT_SUFFIXES):
        return pdf.check
    return None


def _reserved(f: OpenFile) -> str | None:
    """Return the phrase for a file of unknown content whose reserved space is still zeros."""
    if f.suffix in NAMES and not f.head[:8].strip(b"\0"):
        return f"{NAMES[f.suffix]} {RESERVED}"
    if f.suffix in TEXT_SUFFIXES and (zero_tail(f) or not f.tail.strip(b"\0")):
        return TEXT_RESERVED
    return None
