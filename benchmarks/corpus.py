"""Build the benchmark corpus: distinct copies of the corpus PDFs and photo-sized JPEGs."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium
from PIL import Image

from benchmarks.common import REPO, BenchError

# The project's own copy of the shared real-world corpus, with its licences.
SOURCE = REPO / "tests" / "data" / "corpus"
# 005 needs a password and 017 has unreadable metadata: neither is an ordinary document.
SKIPPED_PREFIXES = ("005-", "017-")
PHOTO_SIZES = ((1280, 960), (1440, 1080), (1600, 1200))  # 1.2, 1.6 and 1.9 megapixels
MIN_PHOTO_SIDE = 100  # smaller sources (an 8x8 EXIF sample) would upscale to flat colour


@dataclass(frozen=True)
class Corpus:
    """A flat folder of distinct files, the same for every throughput measurement."""

    folder: Path
    pdfs: int
    jpegs: int
    bytes: int

    @property
    def count(self) -> int:
        return self.pdfs + self.jpegs


def source_pdfs() -> list[Path]:
    """Return the corpus PDFs every benchmark may use."""
    found = [p for p in sorted((SOURCE / "pdf").glob("*.pdf"))
             if not p.name.startswith(SKIPPED_PREFIXES)]
    if not found:
        raise BenchError(f"no PDFs in {SOURCE / 'pdf'}")
    return found


def distinct_pdf(source: Path, serial: int) -> bytes:
    """Return the PDF's bytes with a unique comment line after %%EOF, which readers ignore."""
    data = source.read_bytes()
    if not data.endswith(b"\n"):
        data += b"\n"
    return data + f"%docproc-benchmark copy {serial}\n".encode()


def write_pdfs(folder: Path, count: int, prefix: str = "p") -> list[Path]:
    """Write count distinct PDFs cycling through the corpus ones; return their paths."""
    written = []
    for serial, source in zip(range(count), itertools.cycle(source_pdfs()), strict=False):
        target = folder / f"{prefix}{serial:04d}-{source.name}"
        target.write_bytes(distinct_pdf(source, serial))
        written.append(target)
    return written


def _page_count(path: Path) -> int:
    document = pdfium.PdfDocument(str(path))
    try:
        return len(document)
    finally:
        document.close()


def verify_pdfs(copies: list[Path]) -> None:
    """Check that the first copy of each source opens with as many pages as its source."""
    sources = {p.name: p for p in source_pdfs()}
    checked: set[str] = set()
    for copy in copies:
        name = copy.name.split("-", 1)[1]
        if name in checked:
            continue
        checked.add(name)
        if _page_count(copy) != _page_count(sources[name]):
            raise BenchError(f"{copy.name} does not open like {name} after the appended comment")


def _photo_bases() -> list[tuple[str, Image.Image]]:
    """Return each corpus JPEG resized to photo sizes, with a little grain like a real photo."""
    bases = []
    for path in sorted((SOURCE / "images").glob("*.jpg")):
        with Image.open(path) as image:
            if min(image.size) < MIN_PHOTO_SIDE:
                continue
            rgb = image.convert("RGB")
        for size in PHOTO_SIZES:
            resized = rgb.resize(size, Image.Resampling.LANCZOS)
            grain = Image.effect_noise(size, 40).convert("RGB")
            bases.append((f"{path.stem}-{size[0]}x{size[1]}", Image.blend(resized, grain, 0.12)))
    if not bases:
        raise BenchError(f"no usable JPEGs in {SOURCE / 'images'}")
    return bases


def write_jpegs(folder: Path, count: int) -> list[Path]:
    """Write count distinct JPEGs: photo-sized bases, each copy with one pixel of its own."""
    written = []
    bases = _photo_bases()
    for serial, (stem, base) in zip(range(count), itertools.cycle(bases), strict=False):
        image = base.copy()
        image.putpixel((serial % image.width, 0), (serial % 256, serial // 256 % 256, 7))
        target = folder / f"j{serial:03d}-{stem}.jpg"
        image.save(target, "JPEG", quality=88)
        written.append(target)
    return written


def check_distinct(paths: list[Path]) -> None:
    """Raise BenchError unless every file has its own content (no duplicate detection)."""
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
    if len(digests) != len(paths):
        raise BenchError(f"{len(paths) - len(digests)} corpus files repeat another's content")


def build_corpus(folder: Path, pdfs: int, jpegs: int) -> Corpus:
    """Write the corpus into a fresh flat folder and check it."""
    folder.mkdir(parents=True)
    pdf_paths = write_pdfs(folder, pdfs)
    verify_pdfs(pdf_paths)
    jpeg_paths = write_jpegs(folder, jpegs)
    check_distinct(pdf_paths + jpeg_paths)
    size = sum(p.stat().st_size for p in pdf_paths + jpeg_paths)
    return Corpus(folder, len(pdf_paths), len(jpeg_paths), size)
