"""Decide what a file is from its content, not its name."""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from pathlib import Path

import magic
from PIL import Image, UnidentifiedImageError

from docproc.errors import DocumentError
from docproc.model import Kind

# libmagic itself looks at no more than its default bytes_max (1 MiB), so reading more is waste.
SNIFF_BYTES = 1 << 20

TEXT_MIMES = frozenset({
    "application/json",
    "application/ld+json",
    "application/x-ndjson",
    "application/xml",
    "application/csv",
    "application/x-yaml",
    "application/yaml",
    "application/toml",
    "application/javascript",
    "application/x-subrip",
    "message/rfc822",
})

# EPS is excluded because Pillow renders it by running Ghostscript on the untrusted file.
_EXCLUDED_PILLOW_FORMATS = frozenset({"EPS"})

_magic: magic.Magic | None = None
# A libmagic cookie is not safe to use from two threads at once.
_magic_lock = threading.Lock()


@dataclass(frozen=True)
class FileType:
    """A file's MIME type and the kind of processing it gets."""

    mime: str
    kind: Kind


def detect(path: Path) -> FileType:
    """Detect the file type of path from its content; raise DocumentError for empty files."""
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if not head:
        raise DocumentError(
            "empty",
            "the file is empty (0 bytes); if it was still being written, "
            "drop it again once it is complete",
        )
    mime = _sniff(head)
    return FileType(mime=mime, kind=_kind(mime, path))


@functools.cache
def pillow_formats() -> tuple[str, ...]:
    """Return the Pillow formats docproc lets parse untrusted files, in Pillow's order."""
    Image.init()
    return tuple(name for name in Image.ID if name not in _EXCLUDED_PILLOW_FORMATS)


def _sniff(head: bytes) -> str:
    global _magic
    with _magic_lock:
        if _magic is None:
            _magic = magic.Magic(mime=True)
        return str(_magic.from_buffer(head))


def _kind(mime: str, path: Path) -> Kind:
    if mime == "application/pdf":
        return "pdf"
    if mime.startswith("image/"):
        return "image" if _pillow_claims(path) else "other"
    if mime.startswith("text/") or mime in TEXT_MIMES or mime.endswith(("+json", "+xml")):
        return "text"
    return "other"


def _pillow_claims(path: Path) -> bool:
    with path.open("rb") as fh:
        try:
            with Image.open(fh, formats=pillow_formats()):
                return True
        except UnidentifiedImageError:
            return False
        except MemoryError:
            raise
        except Exception:
            # A plugin accepted the signature and then failed (bomb, broken header): it is
            # an image, and extract() reports the precise failure.
            return True
