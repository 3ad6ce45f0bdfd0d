"""Draw a small PNG preview of a PDF's first page or of an image."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pypdfium2 as pdfium
from PIL import ExifTags, Image

from docproc.errors import DocumentError
from docproc.pipeline.detect import FileType
from docproc.pipeline.extract import (
    PDFIUM_LOCK,
    library_error,
    open_image,
    open_pdf,
    pdfium_reason,
)

ALPHA_MODES = frozenset({"RGBA", "LA", "La", "PA", "RGBa"})
EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def make_thumbnail(
    path: Path,
    file_type: FileType,
    size: tuple[int, int],
    dest: Path,
    *,
    max_image_pixels: int,
) -> tuple[int, int] | None:
    """Write a PNG thumbnail fitting size to dest and return its size; None for text and other."""
    if file_type.kind not in ("pdf", "image"):
        return None
    try:
        if file_type.kind == "pdf":
            thumb = _pdf_thumbnail(path, size)
        else:
            thumb = _image_thumbnail(path, size, max_image_pixels)
    # A vanished or unreadable file is the environment's fault, not the document's.
    except (DocumentError, MemoryError, FileNotFoundError, PermissionError):
        raise
    except Exception as exc:
        raise library_error(path, exc) from exc
    # Outside the try: failing to write dest is the environment's fault, not the document's.
    thumb.save(dest, format="PNG")
    return thumb.size


def _pdf_thumbnail(path: Path, size: tuple[int, int]) -> Image.Image:
    with PDFIUM_LOCK:
        try:
            doc = open_pdf(path)
        except pdfium.PdfiumError as exc:
            raise DocumentError(
                "corrupt",
                f"the PDF cannot be rendered by PDFium ({pdfium_reason(exc)}); "
                "re-export or repair it (e.g. qpdf in.pdf out.pdf) and drop it again",
            ) from exc
        try:
            # Without a form environment, filled-in form fields would render blank.
            doc.init_forms()
            page = doc[0]
            try:
                image = _render(page, size)
            finally:
                page.close()
        finally:
            doc.close()
    # Rounding up in the render can overshoot size by a pixel.
    image.thumbnail(size)
    return image


def _render(page: Any, size: tuple[int, int]) -> Image.Image:
    width, height = page.get_size()
    if width <= 0 or height <= 0:
        raise ValueError(f"page 1 has no area ({width}x{height} pt)")
    # Render straight at thumbnail scale: a full-resolution render would only be thrown away.
    scale = min(size[0] / width, size[1] / height)
    bitmap = page.render(scale=scale, rev_byteorder=True)
    try:
        # convert() copies, so the image outlives the PDFium buffer it was made from.
        return bitmap.to_pil().convert("RGB")
    finally:
        bitmap.close()


def _image_thumbnail(path: Path, size: tuple[int, int], max_image_pixels: int) -> Image.Image:
    with open_image(path, max_image_pixels) as img:
        img.draft("RGB", size)
        img.load()
        # Only after load(): PNG's getexif() loads the image itself, and a decode error
        # swallowed there would leave a half-decoded image that a second load() accepts.
        orientation = _exif_orientation(img)
        if img.mode in ("RGB", "RGBA", "L", "LA"):
            img.thumbnail(size)
            thumb = _displayable(img)
        else:
            thumb = _displayable(img)
            thumb.thumbnail(size)
    transpose = EXIF_TRANSPOSE.get(orientation or 1)
    return thumb.transpose(transpose) if transpose is not None else thumb


def _exif_orientation(img: Image.Image) -> int | None:
    try:
        value = img.getexif().get(ExifTags.Base.Orientation)
    except MemoryError:
        raise
    except Exception:
        # Broken EXIF only costs the rotation hint, never the thumbnail.
        return None
    return value if isinstance(value, int) else None


def _displayable(img: Image.Image) -> Image.Image:
    """Return a new RGB or RGBA copy of img that a PNG viewer shows as intended."""
    if img.mode in ("RGB", "RGBA"):
        return img.copy()
    if img.mode.startswith("I") or img.mode == "F":
        return _stretch_to_grey(img).convert("RGB")
    if img.mode in ALPHA_MODES or (img.mode == "P" and "transparency" in img.info):
        return img.convert("RGBA")
    return img.convert("RGB")


def _stretch_to_grey(img: Image.Image) -> Image.Image:
    # 16-bit and 12-bit samples would clip to white if cut to 8 bits; stretch the range used.
    wide = img if img.mode == "F" else img.convert("I")
    low, high = cast(tuple[float, float], wide.getextrema())
    factor = 255 / (high - low) if high > low else 0.0
    return wide.point(lambda v: v * factor - low * factor).convert("L")
