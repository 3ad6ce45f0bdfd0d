"""The OCR corpus: A4 pages at 300 dpi full of real text, saved as a scanner saves them.

The words come from the text layers of the shared corpus PDFs, set in a 12 pt serif font in about
36 lines a page, slightly turned and speckled; pages are bilevel (CCITT G4 in a PDF, as office
scanners write). Everything is cached under the temp folder, keyed by the generator's version.
"""

from __future__ import annotations

import hashlib
import random
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium
from PIL import Image, ImageDraw, ImageFont

from benchmarks.common import BenchError
from benchmarks.corpus import source_pdfs

VERSION = 2  # bump when the pages change, so a stale cache is not reused
A4_300_DPI = (2480, 3508)
MARGIN = 250  # px, ~2.1 cm
FONT_PX = 50  # 12 pt at 300 dpi: about 36 lines and 400 words a page, a full letter
LINE_PX = 84
FONTS = (Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"),
         Path("/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf"))
WORD = re.compile(r"[A-Za-z][A-Za-z'-]*[.,;:]?|\d+[.,]?")
CACHE = Path(tempfile.gettempdir()) / f"docproc-bench-ocr-v{VERSION}"


def words() -> list[str]:
    """Return the words of the corpus PDFs' text layers, in reading order."""
    found: list[str] = []
    for path in source_pdfs():
        doc = pdfium.PdfDocument(str(path))
        try:
            for index in range(min(len(doc), 40)):
                textpage = doc[index].get_textpage()
                found += WORD.findall(textpage.get_text_range())
                textpage.close()
        finally:
            doc.close()
    if len(found) < 1000:
        raise BenchError(f"only {len(found)} words in the corpus PDFs' text layers")
    return found


def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in FONTS:
        if path.is_file():
            return ImageFont.truetype(str(path), FONT_PX)
    return ImageFont.load_default(size=FONT_PX)


def page(serial: int, pool: Sequence[str]) -> Image.Image:
    """Return page `serial`: a header naming it, then justified-left lines of the word pool."""
    rng = random.Random(serial)
    img = Image.new("L", A4_300_DPI, 255)
    draw = ImageDraw.Draw(img)
    font = _font()
    width = A4_300_DPI[0] - 2 * MARGIN
    y = MARGIN
    draw.text((MARGIN, y), f"Benchmark scan page {serial + 1}", font=font, fill=0)
    y += 2 * LINE_PX
    position = rng.randrange(len(pool))
    while y < A4_300_DPI[1] - MARGIN:
        line: list[str] = []
        while draw.textlength(" ".join([*line, pool[position % len(pool)]]), font=font) < width:
            line.append(pool[position % len(pool)])
            position += 1
        draw.text((MARGIN, y), " ".join(line), font=font, fill=0)
        y += LINE_PX
    # A scanner's page is never quite straight nor clean.
    img = img.rotate(rng.uniform(-0.6, 0.6), resample=Image.Resampling.BICUBIC, fillcolor=255)
    speckle = Image.effect_noise(A4_300_DPI, 30)
    return Image.blend(img, speckle, 0.15).point(lambda v: 255 if v > 150 else 0).convert("1")


@dataclass(frozen=True)
class ScanCorpus:
    """Distinct page images (PNG) and the helpers making scanned PDFs of them."""

    folder: Path
    pages: list[Path]

    def pdf(self, path: Path, count: int, first: int = 0) -> Path:
        """Write an image-only PDF of count pages, cycling through the pages from first."""
        images = [Image.open(self.pages[(first + n) % len(self.pages)]) for n in range(count)]
        try:
            images[0].save(path, format="PDF", save_all=True, append_images=images[1:],
                           resolution=300)
        finally:
            for image in images:
                image.close()
        return path

    def cached_pdf(self, name: str, count: int, first: int = 0) -> Path:
        """Return a cached image-only PDF of count pages from first, writing it once."""
        path = self.folder / f"{name}-{count}p-from{first}.pdf"
        if not path.exists():
            self.pdf(path.with_suffix(".tmp"), count, first).rename(path)
        return path


def scan_corpus(count: int) -> ScanCorpus:
    """Return count distinct page images, generating the missing ones into the cache."""
    folder = CACHE
    folder.mkdir(parents=True, exist_ok=True)
    pool: list[str] | None = None
    paths = []
    for serial in range(count):
        path = folder / f"page-{serial:03d}.png"
        if not path.exists():
            pool = pool or words()
            tmp = path.with_suffix(".tmp")
            page(serial, pool).save(tmp, format="PNG")
            tmp.rename(path)
        paths.append(path)
    return ScanCorpus(folder, paths)


def digest(path: Path) -> str:
    """Return the first 12 hex digits of a file's SHA-256, as docproc names its folders."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]
