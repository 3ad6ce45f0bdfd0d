"""What the corpus README (tests/data/corpus/README.md) says each file must come out as."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

NEEDS_PASSWORD = {
    "pdf/005-libreoffice-writer-password_libreoffice-writer-password.pdf",
    "pdf-hard/r2-user-password.pdf", "pdf-hard/r4-aes-user-password.pdf",
    "pdf-hard/r5-user-password.pdf", "pdf-hard/r6-user-password.pdf",
    "pdf-hard/crazyones-encrypted-256.pdf",
}
EMPTY_PASSWORD = {
    "pdf-hard/r2-empty-password.pdf", "pdf-hard/r3-empty-password.pdf",
    "pdf-hard/r4-owner-password.pdf", "pdf-hard/r6-empty-password.pdf",
    "pdf-hard/encrypted_doc_no_id.pdf",
}
# The README lets a bad file fail clearly or, where the library can honestly read it, come
# out done; each gets exactly one of those here: the type of its failure, or "done".
BROKEN = {
    "images-bad/broken.png": "unsupported_type",  # no PNG signature: not an image at all
    "images-bad/broken_data_stream.png": "corrupt",
    "images-bad/crash-0c7e0e8e11ce787078f00b5b0ca409a167f070e0.tif": "corrupt",
    "images-bad/crash-1152ec2d1a1a71395b6f2ce6721c38924d025bf3.tif": "corrupt",
    "images-bad/crash-2020-10-test.tif": "corrupt",
    "images-bad/crash-86214e58da443d2b80820cff9677a38a33dcbbca.tif": "corrupt",
    "images-bad/decompression_bomb.gif": "too_large",
    "images-bad/decompression_bomb_extents.gif": "too_large",
    "images-bad/exif-dpi-zerodivision.jpg": "done",
    "images-bad/invalid-exif.jpg": "done",
    "images-bad/photoshop-200dpi-broken.jpg": "done",
    "images-bad/png_decompression_dos.png": "too_large",
    "images-bad/truncated_end_chunk.png": "corrupt",
    "images-bad/truncated_image.png": "corrupt",
    "images-bad/truncated_jpeg.jpg": "corrupt",
    "pdf-hard/lzw_decoder_table_overflow.bin": "unsupported_type",
    # files.json says 4 pages, but the page tree is missing: no library finds a page.
    "pdf/017-unreadable-meta-data_unreadablemetadata.pdf": "corrupt",
}


def page_counts(corpus: Path) -> dict[str, int]:
    """Return the files.json page count of each PDF in pdf/, by its name on disk."""
    data = json.loads((corpus / "pdf" / "files.json").read_text())["data"]
    return {"pdf/" + entry["path"].replace("/", "_"): entry["pages"] for entry in data}


def corpus_files(corpus: Path) -> list[str]:
    """Return every corpus file, as a path relative to the corpus."""
    return sorted(
        path.relative_to(corpus).as_posix()
        for folder in ("pdf", "pdf-hard", "images", "images-bad")
        for path in (corpus / folder).iterdir()
        if path.is_file() and path.name != "files.json"
    )


def check_report(relpath: str, report: dict[str, Any], pages: dict[str, int]) -> str | None:
    """Return what is wrong with a corpus file's report, or None when it is as the README says."""
    status, error = report["status"], report["error"]
    if status == "failed" and "_folder" in report:
        original = report["_folder"] / "original"
        if not original.is_dir() or not any(original.iterdir()):
            return f"failed without its original kept: {status} {error}"
    if relpath in NEEDS_PASSWORD:
        if status != "failed" or error["type"] != "encrypted":
            return f"expected failed/encrypted, got {status} {error}"
        return None
    expected = BROKEN.get(relpath, "done")
    if expected != "done":
        if status != "failed" or error["type"] != expected:
            return f"expected failed/{expected}, got {status} {error}"
        if not error["message"]:
            return "failure without a message"
        return None
    if status != "done":
        return f"expected done, got {status} {error}"
    if relpath in pages and report["pages"] != pages[relpath]:
        return f"expected {pages[relpath]} pages, got {report['pages']}"
    if relpath in EMPTY_PASSWORD and not report["type"]["encrypted"]:
        return "expected type.encrypted true"
    if relpath.startswith("images/") and not report["image"]:
        return "expected image facts"
    if report["type"]["kind"] in ("pdf", "image"):
        if not report["thumbnail"]:
            return "expected a thumbnail"
        thumbnail = report.get("_folder", Path()) / report["thumbnail"]["path"]
        if "_folder" in report and not thumbnail.stat().st_size:
            return "expected a thumbnail.png with content"
    return None
