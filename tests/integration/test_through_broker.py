"""Dropped files come out in the outbox through a real broker, watcher and worker."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Daemon, drop_tree, reports, wait_until
from tests.corpus_truth import check_report, page_counts

SAMPLE = [
    "pdf/004-pdflatex-4-pages_pdflatex-4-pages.pdf",
    "pdf-hard/r6-user-password.pdf",
    "pdf-hard/r2-empty-password.pdf",
    "images/hopper.jpg",
    "images-bad/decompression_bomb.gif",
]


def _outbox(config: Path) -> Path:
    return Path(yaml.safe_load(config.read_text())["outbox"])


def _inbox(config: Path) -> Path:
    return Path(yaml.safe_load(config.read_text())["inbox"])


def _run(config: Path, daemon: Callable[[Path], Daemon]) -> tuple[Path, Path]:
    """Start a worker and a watcher; return the inbox and the outbox."""
    run = daemon(config)
    run.start("worker")
    run.start("watch")
    return _inbox(config), _outbox(config)


def test_corpus_sample_comes_out_as_the_readme_says(
    broker: dict[str, Any], make_config: Callable[..., Path],
    daemon: Callable[[Path], Daemon], corpus: Path,
) -> None:
    inbox, outbox = _run(make_config(**broker), daemon)
    drop_tree({"dept-a/" + relpath.replace("/", "__"): corpus / relpath for relpath in SAMPLE},
              inbox, inbox.parent / "beside")
    (inbox / "notes.txt").write_text("Invoices and receipts for the quarterly invoices review.\n")

    found = wait_until(lambda: len(reports(outbox)) == len(SAMPLE) + 1 and reports(outbox), 90,
                       message="a report for each file")
    by_name = {report["source"]["name"]: report for report in found}
    pages = page_counts(corpus)
    problems = {
        relpath: check_report(relpath, by_name[relpath.replace("/", "__")], pages)
        for relpath in SAMPLE
    }
    assert {k: v for k, v in problems.items() if v} == {}
    notes = by_name["notes.txt"]
    assert notes["status"] == "done" and notes["type"]["kind"] == "text"
    assert "invoices" in notes["analysis"]["keywords"]
    assert (notes["_folder"] / "text.txt").read_text().startswith("Invoices")
    pdf = by_name[SAMPLE[0].replace("/", "__")]
    assert pdf["source"]["relpath"] == "dept-a/" + SAMPLE[0].replace("/", "__")
    assert (pdf["_folder"] / "thumbnail.png").stat().st_size > 0
    assert (pdf["_folder"] / "original" / pdf["source"]["name"]).exists()
    assert pdf["worker"].startswith("worker1@")
    assert set(pdf["timings_ms"]) >= {"wait", "detect", "extract", "analyze", "thumbnail", "total"}
    assert not [p for p in inbox.rglob("*") if p.is_file()]


@pytest.mark.parametrize("broker", ["embedded"], indirect=True)
def test_same_content_twice_is_processed_once(
    broker: dict[str, Any], make_config: Callable[..., Path],
    daemon: Callable[[Path], Daemon], corpus: Path,
) -> None:
    inbox, outbox = _run(make_config(**broker), daemon)
    source = corpus / "pdf" / "001-trivial_minimal-document.pdf"
    shutil.copy(source, inbox / "first.pdf")
    wait_until(lambda: len(reports(outbox)) == 1, 60, message="the first report")
    shutil.copy(source, inbox / "again.pdf")
    found = wait_until(lambda: len(reports(outbox)) == 2 and reports(outbox), 60,
                       message="the second report")
    by_name = {report["source"]["name"]: report for report in found}
    first, again = by_name["first.pdf"], by_name["again.pdf"]
    assert first["status"] == "done"
    assert again["status"] == "duplicate"
    assert again["duplicate_of"] == first["id"] and again["id"] == first["id"]
    assert (again["_folder"] / "original" / "again.pdf").exists()


@pytest.mark.parametrize("broker", ["embedded", "rabbitmq"], indirect=True)
def test_under_a_backlog_documents_finish_while_others_have_not_started(
    broker: dict[str, Any], make_config: Callable[..., Path], daemon: Callable[[Path], Daemon],
) -> None:
    from docproc.broker import redis_client
    from docproc.ledger.redis_ledger import RedisLedger
    from docproc.settings import load_settings

    config = make_config(**broker, workers={"concurrency": 1})
    settings = load_settings(config, environ={})
    ledger = RedisLedger(redis_client(settings))
    run = daemon(config)
    run.start("watch")
    inbox = _inbox(config)
    inbox.mkdir(parents=True, exist_ok=True)
    count = 240
    for number in range(count):
        (inbox / f"note-{number:03d}.txt").write_text(f"backlog note number {number}\n")
    wait_until(lambda: ledger.counts()["queued"] == count, 60,
               message="the whole backlog to be queued before any worker runs")
    run.start("worker")
    first = wait_until(lambda: reports(_outbox(config)), 60, message="a first report")
    not_started = [record for record in ledger.recent(limit=count)
                   if record["stage"] == "queued"]
    # A document's second hop does not wait behind every first hop of the backlog.
    assert first and len(not_started) > count // 4
    wait_until(lambda: len(reports(_outbox(config))) == count, 120, message="every report")
