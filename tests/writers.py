"""How real producers write files into an inbox, reproduced byte for byte with their pauses.

Scanners close and reopen a file per page (Paperless-ngx #43, #4626), slow Wi-Fi scanners
pause longer than any settle time on one open handle (#2918), Windows over SMB sets a file's
size first and fills it after, FTP scanners create an empty file before the scan is done
(#1279, #14047), and careful tools write beside the inbox and rename the file in.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

DATA = Path(__file__).parent / "data"
FOUR_PAGE_PDF = DATA / "four-pages.pdf"
PHOTO_JPEG = DATA / "hopper.jpg"
# Words from the first and the last page of four-pages.pdf.
PDF_FIRST_WORDS = "Hello, here is some text without a meaning"
PDF_LAST_WORDS = "There is no need for special"


def csv_export(rows: int = 400) -> bytes:
    """Return a CSV export, as a reporting job writes one."""
    lines = ["invoice,customer,amount"]
    lines += [f"INV-{n:05d},customer {n % 37},{n * 7 % 1000}.{n % 100:02d}" for n in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def variant(data: bytes, label: str) -> bytes:
    """Return a copy of a PDF, JPEG or text file whose content differs by label, still valid.

    Each file of a test needs content of its own, or it comes out a duplicate of the first.
    """
    tag = label.encode()
    if data.startswith(b"%PDF"):
        # A comment line takes the place of the same number of bytes of another comment.
        start = data.index(b"\n%", 0, 64) + 2
        end = data.index(b"\n", start)
        return data[:start] + tag[: end - start].ljust(end - start, b" ") + data[end:]
    if data.startswith(b"\xff\xd8"):
        # A COM segment right after the start-of-image marker.
        return data[:2] + b"\xff\xfe" + (len(tag) + 2).to_bytes(2, "big") + tag + data[2:]
    return data.replace(b"\n", b"," + tag + b"\n", 1)


def parts(data: bytes, count: int) -> list[bytes]:
    """Split data into count consecutive parts of about equal size."""
    step = -(-len(data) // count)
    return [data[start:start + step] for start in range(0, len(data), step)]


def reopen_per_part(path: Path, data: bytes, count: int, gap: float) -> None:
    """Write each part with its own open, write and close, pausing gap seconds between."""
    for index, part in enumerate(parts(data, count)):
        if index:
            time.sleep(gap)
        with path.open("ab" if index else "wb") as handle:
            handle.write(part)


def one_handle_with_pauses(path: Path, data: bytes, count: int, gap: float) -> None:
    """Write the parts through one open handle, pausing gap seconds between them."""
    with path.open("wb") as handle:
        for index, part in enumerate(parts(data, count)):
            if index:
                time.sleep(gap)
            handle.write(part)
            handle.flush()


def preallocated_then_filled(path: Path, data: bytes, count: int, gap: float) -> None:
    """Set the file's full size first, then fill it from the front (Windows copying over SMB)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, len(data))
        offset = 0
        for part in parts(data, count):
            time.sleep(gap)
            os.pwrite(fd, part, offset)
            offset += len(part)
    finally:
        os.close(fd)


def placeholder_then_filled(path: Path, data: bytes, delay: float) -> None:
    """Create the file empty and close it; write its content delay seconds later."""
    path.touch()
    time.sleep(delay)
    path.write_bytes(data)


def renamed_from_beside(path: Path, data: bytes, beside: Path) -> None:
    """Write the file whole in a folder beside the inbox, then rename it in."""
    beside.mkdir(parents=True, exist_ok=True)
    staged = beside / path.name
    staged.write_bytes(data)
    os.rename(staged, path)


def folder_moved_in(folder: Path, files: dict[str, bytes], beside: Path) -> None:
    """Write a folder of files beside the inbox, then rename the folder in."""
    staged = beside / folder.name
    staged.mkdir(parents=True)
    for name, data in files.items():
        (staged / name).write_bytes(data)
    os.rename(staged, folder)


Writers = dict[str, Callable[[], None]]
# Longer than settle_seconds (1.0): what a slow Wi-Fi scanner does on one open handle.
LONG_PAUSE = 1.6
# Scanners reopen the file per page 0.2 to 4 s apart; quiet_seconds covers the gap used here.
PAGE_GAP = 0.8


def run_all(writers: Writers) -> None:
    """Run each writer in a thread of its own, as independent producers do, and wait for all."""
    errors: list[BaseException] = []

    def guarded(write: Callable[[], None]) -> None:
        try:
            write()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(write,)) for write in writers.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors


def real_writers(inbox: Path, beside: Path) -> tuple[dict[str, bytes], Writers]:
    """Return what each file must hold when whole, and the writer that produces it."""
    pdf, jpeg, csv = FOUR_PAGE_PDF.read_bytes(), PHOTO_JPEG.read_bytes(), csv_export()
    pages = {f"page-{n}.jpg": variant(jpeg, f"batch page {n}") for n in range(1, 4)}
    expected = {
        "scan-reopened-per-page.pdf": variant(pdf, "reopened"),
        "scan-one-handle-slow.pdf": variant(pdf, "one-handle"),
        "SCAN_0001.PDF": variant(pdf, "preallocated"),
        "photo-reopened.jpg": variant(jpeg, "reopened"),
        "export-reopened.csv": variant(csv, "reopened"),
        "export-one-handle-slow.csv": variant(csv, "one-handle"),
        "placeholder-filled-later.pdf": variant(pdf, "placeholder"),
        "renamed-from-beside.pdf": variant(pdf, "beside"),
        **{f"batch/{name}": data for name, data in pages.items()},
    }
    def write(name: str, how: Callable[..., None], *args: object) -> Callable[[], None]:
        return lambda: how(inbox / name, expected[name], *args)

    writers: Writers = {
        "scan-reopened-per-page.pdf": write(
            "scan-reopened-per-page.pdf", reopen_per_part, 4, PAGE_GAP),
        "scan-one-handle-slow.pdf": write(
            "scan-one-handle-slow.pdf", one_handle_with_pauses, 3, LONG_PAUSE),
        "SCAN_0001.PDF": write("SCAN_0001.PDF", preallocated_then_filled, 4, 0.5),
        "photo-reopened.jpg": write("photo-reopened.jpg", reopen_per_part, 3, PAGE_GAP),
        "export-reopened.csv": write("export-reopened.csv", reopen_per_part, 4, PAGE_GAP),
        "export-one-handle-slow.csv": write(
            "export-one-handle-slow.csv", one_handle_with_pauses, 3, LONG_PAUSE),
        "placeholder-filled-later.pdf": write(
            "placeholder-filled-later.pdf", placeholder_then_filled, 2.5),
        "renamed-from-beside.pdf": write("renamed-from-beside.pdf", renamed_from_beside, beside),
        "batch": lambda: folder_moved_in(inbox / "batch", pages, beside),
    }
    return expected, writers


