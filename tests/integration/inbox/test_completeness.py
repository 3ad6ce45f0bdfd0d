"""Each file is claimed once, whole, however its writer writes it (real watcher, tmp folders)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from docproc.settings import WatcherSettings
from tests.conftest import Daemon, reports, wait_until
from tests.integration.inbox.harness import Running, sha, wait_for
from tests.writers import (
    FOUR_PAGE_PDF,
    PDF_FIRST_WORDS,
    PDF_LAST_WORDS,
    PHOTO_JPEG,
    csv_export,
    folder_moved_in,
    parts,
    real_writers,
    renamed_from_beside,
    run_all,
)

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")

PDF = FOUR_PAGE_PDF.read_bytes()
JPEG = PHOTO_JPEG.read_bytes()
CSV = csv_export()


def settings(mode: str, **overrides: float) -> WatcherSettings:
    values: dict[str, object] = {
        "mode": mode, "poll_interval": 0.25, "settle_seconds": 1.0, "quiet_seconds": 2.0,
        "empty_grace_seconds": 30.0, "incomplete_grace_seconds": 120.0, "rescan_interval": 60.0,
    }
    values.update(overrides)
    return WatcherSettings.model_validate(values)


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Return the inbox, the spool, and a folder beside the inbox on the same filesystem."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    return inbox, tmp_path / "state" / "spool", tmp_path / "beside"


@pytest.fixture
def started() -> Iterator[list[Running]]:
    running: list[Running] = []
    yield running
    for watcher in running:
        watcher.close()


@pytest.mark.parametrize("mode", ["events", "polling"])
def test_each_real_writer_gives_one_claim_of_the_whole_file(
    mode: str, folders: tuple[Path, Path, Path], started: list[Running],
) -> None:
    inbox, spool, beside = folders
    running = Running(inbox, spool, settings(mode)).start()
    started.append(running)
    expected, writers = real_writers(inbox, beside)

    run_all(writers)
    wait_for(lambda: set(expected) <= set(running.relpaths()), timeout=30,
             what=f"a claim of each file; claimed so far: {sorted(running.relpaths())}")

    claims = [(claim.relpath, claim.sha256) for claim in running.claims]
    assert sorted(claims) == sorted((relpath, sha(data)) for relpath, data in expected.items())
    assert all(claim.incomplete is None for claim in running.claims)
    assert not [path for path in inbox.rglob("*") if path.is_file()]


def test_renames_into_the_inbox_are_claimed_without_waiting(
    folders: tuple[Path, Path, Path], started: list[Running],
) -> None:
    inbox, spool, beside = folders
    # Waits this long would outlast the test's deadline: only "a rename is done" explains a claim.
    # (Events mode only: polling sees a file renamed in between two scans as a new file.)
    running = Running(inbox, spool, settings(
        "events", settle_seconds=120.0, quiet_seconds=120.0)).start()
    started.append(running)
    (inbox / ".scan.pdf.part").write_bytes(PDF)
    os.rename(inbox / ".scan.pdf.part", inbox / "scan.pdf")
    renamed_from_beside(inbox / "from-beside.pdf", PDF, beside)
    folder_moved_in(inbox / "batch", {"a.pdf": PDF, "b.jpg": JPEG}, beside)

    wanted = {"scan.pdf", "from-beside.pdf", "batch/a.pdf", "batch/b.jpg"}
    wait_for(lambda: wanted <= set(running.relpaths()), timeout=20,
             what="each renamed file claimed without waiting quiet_seconds or settle_seconds")


@pytest.mark.parametrize("mode", ["events", "polling"])
def test_a_file_its_writer_still_holds_open_is_not_claimed(
    mode: str, folders: tuple[Path, Path, Path], started: list[Running],
) -> None:
    inbox, spool, _ = folders
    running = Running(inbox, spool, settings(mode, settle_seconds=0.3, quiet_seconds=0.3)).start()
    started.append(running)
    first, rest = parts(CSV, 2)
    with (inbox / "held.csv").open("wb") as handle:
        handle.write(first)
        handle.flush()
        # Unchanged far longer than settle_seconds, but its writer still has it open.
        running.sentinel("a.txt")
        running.sentinel("b.txt")
        assert "held.csv" not in running.relpaths()
        waiting = running.watcher.waiting()
        assert [w.relpath for w in waiting.oldest] == ["held.csv"]
        assert waiting.oldest[0].reason == "open_for_writing"
        handle.write(rest)
    assert running.claimed("held.csv").sha256 == sha(CSV)


@pytest.mark.parametrize("mode", ["events", "polling"])
def test_a_pdf_whose_writer_died_midway_is_claimed_incomplete_after_the_grace(
    mode: str, folders: tuple[Path, Path, Path], started: list[Running],
) -> None:
    inbox, spool, _ = folders
    running = Running(inbox, spool, settings(
        mode, settle_seconds=0.3, quiet_seconds=0.3, incomplete_grace_seconds=3.0)).start()
    started.append(running)
    half = PDF[: len(PDF) // 2]
    (inbox / "cut-short.pdf").write_bytes(half)
    wait_for(lambda: [w.reason for w in running.watcher.waiting().oldest] == ["incomplete"],
             what="the cut-short PDF to wait as incomplete")

    claimed = running.claimed("cut-short.pdf")
    assert claimed.sha256 == sha(half)
    assert claimed.incomplete is not None
    assert "PDF" in claimed.incomplete and "has not changed since" in claimed.incomplete
    record = (spool / f"{claimed.token}.claim.json").read_text()
    assert "incomplete" in record


# Through a real broker, watcher and worker: what the user sees is one report per file.


def _start(config: Path, daemon: Callable[[Path], Daemon], *components: str) -> Daemon:
    run = daemon(config)
    for component in components:
        run.start(component)
    return run


def _folders(config: Path) -> tuple[Path, Path]:
    loaded = yaml.safe_load(config.read_text())
    return Path(loaded["inbox"]), Path(loaded["outbox"])


@pytest.mark.parametrize("mode", ["events", "polling"])
@pytest.mark.parametrize("broker", ["embedded"], indirect=True)
def test_each_real_writer_gives_one_done_report_of_the_whole_document(
    mode: str, broker: dict[str, Any], make_config: Callable[..., Path],
    daemon: Callable[[Path], Daemon], tmp_path: Path,
) -> None:
    config = make_config(**broker, watcher={
        "mode": mode, "poll_interval": 0.25, "settle_seconds": 1.0, "quiet_seconds": 2.0,
        "empty_grace_seconds": 30.0})
    inbox, outbox = _folders(config)
    _start(config, daemon, "worker", "watch")
    expected, writers = real_writers(inbox, tmp_path / "beside")

    run_all(writers)
    found = wait_until(lambda: len(reports(outbox)) >= len(expected) and reports(outbox), 90,
                       message="a report for each file")

    assert sorted(r["source"]["relpath"] for r in found) == sorted(expected)
    for report in found:
        relpath = report["source"]["relpath"]
        assert report["status"] == "done", (relpath, report["error"])
        assert report["source"]["sha256"] == sha(expected[relpath]), relpath
        text = (report["_folder"] / "text.txt").read_text()
        if relpath.lower().endswith(".pdf"):
            assert report["pages"] == 4, relpath
            assert PDF_FIRST_WORDS in text and PDF_LAST_WORDS in text, relpath
        elif relpath.endswith(".csv"):
            assert text.startswith("invoice,customer,amount") and "INV-00399" in text
        else:
            assert report["type"]["kind"] == "image" and report["image"]["width"] == 128


@pytest.mark.parametrize("broker", ["embedded"], indirect=True)
def test_a_writer_that_dies_midway_leaves_one_truncated_failure_with_the_original(
    broker: dict[str, Any], make_config: Callable[..., Path], daemon: Callable[[Path], Daemon],
) -> None:
    config = make_config(**broker, watcher={"quiet_seconds": 0.3,
                                            "incomplete_grace_seconds": 3.0})
    inbox, outbox = _folders(config)
    _start(config, daemon, "worker", "watch")
    half = PDF[: len(PDF) // 2]
    (inbox / "scan-cut-short.pdf").write_bytes(half)

    [report] = wait_until(lambda: reports(outbox), 60, message="the report of the cut-short scan")
    assert report["status"] == "failed"
    assert report["error"]["type"] == "truncated"
    assert "PDF" in report["error"]["message"]
    assert "has not changed since" in report["error"]["message"]
    assert report["type"]["mime"] == "application/pdf"
    assert (report["_folder"] / "original" / "scan-cut-short.pdf").read_bytes() == half


@pytest.mark.parametrize("broker", ["embedded"], indirect=True)
def test_a_writer_that_writes_on_after_the_claim_gives_one_report_of_the_whole_file(
    broker: dict[str, Any], make_config: Callable[..., Path], daemon: Callable[[Path], Daemon],
    tmp_path: Path,
) -> None:
    from docproc.broker import redis_client
    from docproc.ledger.redis_ledger import RedisLedger
    from docproc.settings import load_settings

    config = make_config(**broker, watcher={"quiet_seconds": 0.3})
    settings = load_settings(config, environ={})
    ledger = RedisLedger(redis_client(settings))
    inbox, outbox = _folders(config)
    run = _start(config, daemon, "watch")
    (inbox / "first.txt").write_text("a file to know the watcher watches\n")
    wait_until(lambda: ledger.counts()["queued"] == 1, 30, message="the watcher to watch")
    first, rest = parts(CSV, 2)
    beside = tmp_path / "beside"
    beside.mkdir()
    with (beside / "export.csv").open("wb") as handle:
        handle.write(first)
        handle.flush()
        # It says it is done (a rename into the inbox), and then writes on through its handle.
        os.rename(beside / "export.csv", inbox / "export.csv")
        wait_until(lambda: ledger.counts()["queued"] == 2, 30, message="the claim of export.csv")
        handle.write(rest)
    run.start("worker")

    found = wait_until(lambda: len(reports(outbox)) == 2 and reports(outbox), 60,
                       message="the report of export.csv")
    [report] = [r for r in found if r["source"]["name"] == "export.csv"]
    assert report["status"] == "done"
    assert (report["source"]["bytes"], report["source"]["sha256"]) == (len(CSV), sha(CSV))
    assert (report["_folder"] / "text.txt").read_text() == CSV.decode()
    wait_until(lambda: ledger.counts()["queued"] + ledger.counts()["running"] == 0, 30,
               message="no record left of the part first claimed")
    assert sorted(r["status"] for r in ledger.recent(limit=10)) == ["done", "done"]
