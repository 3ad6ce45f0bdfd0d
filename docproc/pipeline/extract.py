"""Get the text and the facts out of a PDF, image or text file."""

from __future__ import annotations

import codecs
import ctypes
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image
from pypdf import PasswordType, PdfReader

from docproc.errors import DocumentError
from docproc.pipeline.detect import FileType, pillow_formats

log = logging.getLogger(__name__)

# PDFium is not thread-safe, not even across documents: every use of it holds this lock.
PDFIUM_LOCK = threading.RLock()

PAGE_SEPARATOR = "\f"
# Symbol fonts without a Unicode map come out as C0 controls (a stray form feed would pass
# for a page break), and PDFium marks a hyphen it removed at a line end with U+FFFE.
PDF_TEXT_JUNK = re.compile("[\x00-\x08\x0b-\x1f\x7f\ufffe]")
PDFIUM_ERRORS = {
    # PDFium refused the document and recorded no error (a catalog without its page tree);
    # pypdfium2's message would read "Failed to load document (PDFium: Success)".
    pdfium_c.FPDF_ERR_SUCCESS: "not a PDF, or damaged beyond repair",
    pdfium_c.FPDF_ERR_UNKNOWN: "unknown error",
    pdfium_c.FPDF_ERR_FILE: "file not found or not readable",
    pdfium_c.FPDF_ERR_FORMAT: "not a PDF, or damaged beyond repair",
    pdfium_c.FPDF_ERR_PAGE: "page not found or content error",
}
# Keeps one absurd Info entry from bloating every report that carries the metadata.
MAX_METADATA_CHARS = 2000
PDF_INFO_KEYS = {
    "/Title": "title",
    "/Author": "author",
    "/Subject": "subject",
    "/Keywords": "keywords",
    "/Creator": "creator",
    "/Producer": "producer",
    "/CreationDate": "creation_date",
    "/ModDate": "mod_date",
}
# Longest BOMs first: the UTF-32-LE BOM starts with the UTF-16-LE one.
TEXT_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True)
class ImageInfo:
    """What the image header says: size, format and number of frames."""

    width: int
    height: int
    format: str
    frames: int

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Extraction:
    """The text of a document and what was learnt while reading it."""

    text: str
    pages: int | None
    image: ImageInfo | None
    encrypted: bool
    metadata: dict[str, str]


def extract(path: Path, file_type: FileType, *, max_image_pixels: int) -> Extraction:
    """Extract text (a PDF's text layer) and facts; raise DocumentError when it cannot be read."""
    if file_type.kind == "other":
        raise unsupported_error(path, file_type)
    try:
        if file_type.kind == "pdf":
            result = _extract_pdf(path)
        elif file_type.kind == "image":
            result = _extract_image(path, max_image_pixels)
        else:
            result = Extraction(
                text=decode_text(path.read_bytes()), pages=None, image=None,
                encrypted=False, metadata={},
            )
    # A vanished or unreadable file is the environment's fault, not the document's.
    except (DocumentError, MemoryError, FileNotFoundError, PermissionError):
        raise
    except Exception as exc:
        raise library_error(path, exc) from exc
    return result


def unsupported_error(path: Path, file_type: FileType) -> DocumentError:
    """Return the error for a file that is none of the kinds docproc reads."""
    mime = file_type.mime
    if mime.startswith("image/"):
        hint = "an image format docproc cannot read; convert it to PNG or JPEG and drop it again"
    elif mime == "application/octet-stream":
        hint = "binary data of no known format; if it should be one of those, it is damaged"
    else:
        hint = "convert it to PDF or plain text to have it processed"
    return DocumentError(
        "unsupported_type",
        f"docproc reads PDFs, images and text; this file is {mime} ({hint})",
    )


PDFIUM_STATUS = re.compile(r"\s*\(PDFium: [^)]*\)")


def pdfium_reason(exc: Exception) -> str:
    """Say in words why PDFium refused a document."""
    reason = PDFIUM_ERRORS.get(getattr(exc, "err_code", None))
    if reason is not None:
        return reason
    # pypdfium2 appends PDFium's last error to its message, "(PDFium: Success)" included.
    return PDFIUM_STATUS.sub("", str(exc)).strip().rstrip(".") or type(exc).__name__


def library_error(path: Path, exc: Exception) -> DocumentError:
    """Turn a library's exception on bad input into a DocumentError a person can act on."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, Image.DecompressionBombError):
        return DocumentError(
            "too_large",
            f"the image is refused as a possible decompression bomb ({detail}); "
            "if it is a genuine image, shrink or split it and drop it again",
        )
    # Pillow's guard against PNG text chunks that inflate to gigabytes (CVE-2019-16865).
    if isinstance(exc, ValueError) and ("MAX_TEXT" in detail or "text chunks" in detail):
        return DocumentError(
            "too_large",
            f"the image is refused: its compressed metadata expands beyond Pillow's safety "
            f"limit ({detail}); re-save the image without the oversized text chunks",
        )
    return DocumentError(
        "corrupt",
        f"the file is damaged or malformed and could not be read ({detail}); "
        "re-export or re-download it and drop it again",
    )


def encrypted_error(path: Path) -> DocumentError:
    """Return the error for a PDF that needs a user password."""
    return DocumentError(
        "encrypted",
        "the PDF is encrypted and needs a password; decrypt it "
        "(e.g. qpdf --decrypt --password=… in.pdf out.pdf) and drop it again",
    )


# PDFium's last error is one value for the whole process, set only when a load fails with a
# reason: a load that fails without one would report the reason of an earlier document, or
# "Success". A one-byte load sets it to "not a PDF" first (about 1 µs).
_NOT_A_PDF = ctypes.create_string_buffer(b"x", 1)


def open_pdf(path: Path) -> Any:
    """Open path with PDFium and the empty password (hold PDFIUM_LOCK); raise if it needs one."""
    pdfium_c.FPDF_LoadMemDocument(_NOT_A_PDF, 1, None)
    try:
        return pdfium.PdfDocument(path, password="")
    except pdfium.PdfiumError as exc:
        if exc.err_code == pdfium_c.FPDF_ERR_PASSWORD:
            raise encrypted_error(path) from exc
        if exc.err_code == pdfium_c.FPDF_ERR_SECURITY:
            raise DocumentError(
                "encrypted",
                "the PDF is protected by a security handler other than a standard "
                "password (e.g. certificate or DRM); remove the protection in the program "
                "that made it and drop it again",
            ) from exc
        raise


@contextmanager
def open_image(path: Path, max_image_pixels: int) -> Iterator[Image.Image]:
    """Open path with Pillow, refusing it before any pixel is decoded if it is too large."""
    with path.open("rb") as fh, Image.open(fh, formats=pillow_formats()) as img:
        check_pixels(path, img.size, max_image_pixels)
        yield img


def check_pixels(path: Path, size: tuple[int, int], max_image_pixels: int) -> None:
    """Raise DocumentError("too_large") if an image of size would exceed max_image_pixels."""
    width, height = size
    if width * height > max_image_pixels:
        raise DocumentError(
            "too_large",
            f"the image is {width}x{height} = {width * height} pixels, more than "
            f"pipeline.max_image_pixels ({max_image_pixels}); shrink it, or raise the limit "
            "if it is genuine",
        )


def decode_text(data: bytes) -> str:
    """Decode text bytes: by BOM, else UTF-8, else Windows-1252, else Latin-1."""
    for bom, encoding in TEXT_BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _extract_pdf(path: Path) -> Extraction:
    try:
        pages, texts, encrypted = _read_with_pdfium(path)
    except pdfium.PdfiumError as exc:
        return _extract_pdf_with_pypdf(path, exc)
    return Extraction(
        text=PAGE_SEPARATOR.join(texts), pages=pages, image=None,
        encrypted=encrypted, metadata=_pdf_metadata(path),
    )


def _read_with_pdfium(path: Path) -> tuple[int, list[str], bool]:
    with PDFIUM_LOCK:
        doc = open_pdf(path)
        try:
            encrypted = pdfium_c.FPDF_GetSecurityHandlerRevision(doc.raw) != -1
            pages = len(doc)
            return pages, [_pdfium_page_text(doc, index) for index in range(pages)], encrypted
        finally:
            doc.close()


def _pdfium_page_text(doc: Any, index: int) -> str:
    try:
        page = doc[index]
    except pdfium.PdfiumError as exc:
        # One unloadable page should not cost the text of all the others.
        log.warning("page %d of %s cannot be loaded: %s", index + 1, doc, exc)
        return ""
    try:
        textpage = page.get_textpage()
        try:
            text: str = textpage.get_text_range()
        finally:
            textpage.close()
    finally:
        page.close()
    # PDFium ends lines with CRLF whatever the platform.
    return _clean_pdf_text(text.replace("\r\n", "\n"))


def _clean_pdf_text(text: str) -> str:
    return PDF_TEXT_JUNK.sub("", text.replace("\r", "\n"))


def _extract_pdf_with_pypdf(path: Path, pdfium_error: Exception) -> Extraction:
    try:
        reader = PdfReader(path)
        encrypted = reader.is_encrypted
        if encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise encrypted_error(path)
        pages = len(reader.pages)
        if pages < 1:
            raise ValueError("no pages")
        texts = [_clean_pdf_text(page.extract_text()) for page in reader.pages]
    except (DocumentError, MemoryError):
        raise
    except Exception as exc:
        raise DocumentError(
            "corrupt",
            f"the file is not a readable PDF (PDFium: {pdfium_reason(pdfium_error)}; pypdf: "
            f"{str(exc) or type(exc).__name__}); re-export or repair it "
            "(e.g. qpdf in.pdf out.pdf) and drop it again",
        ) from exc
    log.info("%s read with pypdf: PDFium says %s", path.name, pdfium_reason(pdfium_error))
    return Extraction(
        text=PAGE_SEPARATOR.join(texts), pages=pages, image=None,
        encrypted=encrypted, metadata=_pdf_metadata(path),
    )


def _pdf_metadata(path: Path) -> dict[str, str]:
    try:
        reader = PdfReader(path)
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            return {}
        info = reader.metadata
        if info is None:
            return {}
        metadata: dict[str, str] = {}
        for key, name in PDF_INFO_KEYS.items():
            value = _metadata_value(info, key)
            if value:
                metadata[name] = value[:MAX_METADATA_CHARS]
        return metadata
    except MemoryError:
        raise
    except Exception as exc:
        # Metadata is a nicety: a broken Info dictionary must never fail the document.
        log.info("metadata of %s is unreadable: %s", path.name, exc)
        return {}


def _metadata_value(info: Any, key: str) -> str:
    value = info.get(key)
    if hasattr(value, "get_object"):
        value = value.get_object()
    if key in ("/CreationDate", "/ModDate"):
        try:
            parsed = info.creation_date if key == "/CreationDate" else info.modification_date
        except Exception:
            parsed = None
        if parsed is not None:
            return str(parsed.isoformat())
    if isinstance(value, bytes):
        value = decode_text(value)
    if not isinstance(value, str):
        return ""
    return value.replace("\x00", "").strip()


def _extract_image(path: Path, max_image_pixels: int) -> Extraction:
    with open_image(path, max_image_pixels) as img:
        width, height = img.size
        image_format = img.format or "unknown"
        frames = int(getattr(img, "n_frames", 1))
        if frames > 1:
            _check_frames(path, frames, max_image_pixels)
        _verify_decodes(img)
    return Extraction(
        text="", pages=None, image=ImageInfo(width, height, image_format, frames),
        encrypted=False, metadata={},
    )


def _check_frames(path: Path, frames: int, max_image_pixels: int) -> None:
    # A later frame can be larger than the header says (GIF frame extents). The scan runs
    # on its own handle so the first frame stays current for verification; seeking reads
    # headers and decodes at most frames that already passed the check.
    with open_image(path, max_image_pixels) as scan:
        first = scan.tell()  # PSD numbers its layers from 1
        for index in range(first + 1, first + frames):
            scan.seek(index)
            check_pixels(path, scan.size, max_image_pixels)


def _verify_decodes(img: Image.Image) -> None:
    if img.format == "JPEG":
        # DCT scaling still walks the whole entropy-coded stream, at an eighth of the cost.
        img.draft(img.mode, (max(1, img.width // 8), max(1, img.height // 8)))
    img.load()

