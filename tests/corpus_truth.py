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
BOMBS = {"images-bad/decompression_bomb.gif", "images-bad/decompression_bomb_extents.gif"}
MAY_FAIL_PREFIXES = ("images-bad/", "pdf-hard/lzw_decoder_table_overflow.bin")
UNREADABLE_META = "pdf/017-unreadable-meta-data_unreadablemetadata.pdf"


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
    if relpath in NEEDS_PASSWORD:
        if status != "failed" or error["type"] != "encrypted":
            return f"expected failed/encrypted, got {status} {error}"
        return None
    if relpath in BOMBS:
        if status != "failed" or error["type"] != "too_large":
            return f"expected failed/too_large, got {status} {error}"
        return None
    if relpath.startswith(MAY_FAIL_PREFIXES):
        if status == "failed" and error["type"] not in ("corrupt", "too_large", "unsupported_type"):
            return f"expected a clear failure, got {error}"
        if status == "failed" and not error["message"]:
            return "failure without a message"
        return None
    if status != "done":
        if relpath == UNREADABLE_META and status == "failed" and error["type"] == "corrupt":
            return None
        return f"expected done, got {status} {error}"
    if relpath in pages and report["pages"] != pages[relpath]:
        return f"expected {pages[relpath]} pages, got {report['pages']}"
    if relpath in EMPTY_PASSWORD and not report["type"]["encrypted"]:
        return "expected type.encrypted true"
    if relpath.startswith("images/") and not report["image"]:
        return "expected image facts"
    if report["type"]["kind"] in ("pdf", "image") and not report["thumbnail"]:
        return "expected a thumbnail"
    return None
