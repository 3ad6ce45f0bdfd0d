"""Scans for the OCR queue's tests: many small pages, each with a word of its own."""

from __future__ import annotations

import re
from pathlib import Path

import redis
import yaml

from tests import scans
from tests.conftest import Daemon, ledger_url

# Words tesseract reads back without fail (digits in a word get misread: 0/o, 9/s).
WORDS = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu", "apple", "banana", "cherry",
    "lemon", "mango", "orange", "peach", "pear", "plum", "grape", "melon", "berry", "olive",
    "carrot",
]
# One line on a strip of an A4 page's width: a few hundredths of a second to read.
STRIP = (2480, 300)
DOCUMENT_WORKER = "docproc,docproc.finish,docproc.control"


def scan(path: Path, pages: int) -> Path:
    """Write an image-only PDF whose page n says WORDS[n]."""
    return scans.image_pdf(path, [scans.page(WORDS[n], 1, size=STRIP) for n in range(pages)])


def words_read(text: str) -> list[str]:
    """Return the page words found in a text, in the order they come."""
    return [word for word in re.findall(r"[a-z]+", text.lower()) if word in WORDS]


def folders(config: Path) -> tuple[Path, Path]:
    """Return the inbox and the outbox of a config file."""
    loaded = yaml.safe_load(config.read_text())
    return Path(loaded["inbox"]), Path(loaded["outbox"])


def start_workers(config: Path, logs: Path, ocr_concurrency: int = 2) -> tuple[Daemon, Daemon]:
    """Start the document worker, beat and watcher, and the OCR worker apart (its own log)."""
    main = Daemon(config, logs / "main")
    ocr = Daemon(config, logs / "ocr")
    for daemon in (main, ocr):
        daemon.log_dir.mkdir(parents=True, exist_ok=True)
    main.start("worker", "--queues", DOCUMENT_WORKER)
    ocr.start("worker", "--queues", "docproc.ocr", "--concurrency", str(ocr_concurrency))
    main.start("watch")
    return main, ocr


def ocr_done(broker: dict[str, str | None], key: str) -> int:
    """Return the pages of a document the ledger says are read."""
    client = redis.Redis.from_url(ledger_url(broker), decode_responses=True)
    return int(client.hget(f"docproc:doc:{key}", "ocr_done") or 0)


def scan_key(broker: dict[str, str | None]) -> str | None:
    """Return the key of the document in the ocr stage, if one is."""
    client = redis.Redis.from_url(ledger_url(broker), decode_responses=True)
    for key in client.zrange("docproc:active", 0, -1):
        if client.hget(f"docproc:doc:{key}", "stage") == "ocr":
            return str(key)
    return None
