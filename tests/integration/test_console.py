"""The commands for people, run as a person would: ingest --wait, status, retry."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from docproc import console
from docproc.console import Progress, copy_into_inbox, plan_ingest, render_status, table
from docproc.settings import load_settings
from docproc.status.timestamps import parse_since
from tests.conftest import Daemon, reports, wait_until

ENCRYPTED = "pdf-hard/r6-user-password.pdf"


def docproc(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("DOCPROC_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "docproc", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=90, env=env)


@pytest.fixture
def running(valkey_socket: Path, make_config: Callable[..., Path],
            daemon: Callable[[Path], Daemon]) -> Path:
    redis.Redis(unix_socket_path=str(valkey_socket)).flushdb()
    config = make_config(broker_url=f"redis+socket://{valkey_socket}")
    run = daemon(config)
    run.start("worker")
    run.start("watch")
    return config


def test_ingest_wait_status_and_retry_from_the_command_line(
    running: Path, corpus: Path, tmp_path: Path
) -> None:
    settings = load_settings(running, environ={})
    scans = tmp_path / "scans"
    (scans / "dept").mkdir(parents=True)
    (scans / "dept" / "memo.txt").write_text("Memo about the invoices of the quarter.\n")
    shutil.copy(corpus / ENCRYPTED, scans / "locked.pdf")
    (scans / "draft.tmp").write_text("an editor's temporary file")
    shutil.copy(corpus / "images" / "hopper.jpg", tmp_path / "hopper.jpg")

    ingested = docproc(running, "ingest", str(scans), str(tmp_path / "hopper.jpg"), "--wait")
    assert ingested.returncode == 1, ingested.stderr  # one of them failed
    out = ingested.stdout
    assert "copied 3 files" in out and "3 files in" in out and "2 done, 1 failed" in out
    assert "scans/locked.pdf" in out and "encrypted" in out and "password" in out
    assert "draft.tmp: skipped" in ingested.stderr
    assert {r["source"]["relpath"] for r in reports(settings.outbox)} == {
        "scans/dept/memo.txt", "scans/locked.pdf", "hopper.jpg"}

    shown = docproc(running, "status", "--json")
    assert shown.returncode == 0, shown.stderr
    snapshot = json.loads(shown.stdout)
    assert snapshot["counts"]["done"] == 2 and snapshot["counts"]["failed"] == 1
    assert snapshot["failures"][0]["relpath"] == "scans/locked.pdf"
    key = snapshot["failures"][0]["key"]
    text = docproc(running, "status").stdout
    assert "done" in text and "Recent failures" in text and key in text and "encrypted" in text

    retried = docproc(running, "retry", key)
    assert retried.returncode == 0, retried.stderr
    assert f"{key}  sent again as scans/locked.pdf" in retried.stdout
    again = docproc(running, "retry", key, "ffffffffffff")
    assert again.returncode == 1
    assert "only failed documents" in again.stderr and "no document ffffffffffff" in again.stderr

    def counts() -> dict[str, int]:
        result: dict[str, int] = json.loads(docproc(running, "status", "--json").stdout)["counts"]
        return result

    wait_until(lambda: counts()["failed"] == 1 and counts()["retried"] == 1, 30,
               interval=0.3, message="the retried document to fail again")
    all_failed = docproc(running, "retry", "--all-failed")
    assert all_failed.returncode == 0 and "1 document sent again" in all_failed.stdout
    missing = docproc(running, "ingest", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_ingest_plans_inbox_paths_and_skips_what_the_watcher_would_ignore(
    make_config: Callable[..., Path], tmp_path: Path,
) -> None:
    settings = load_settings(make_config(), environ={})
    source = tmp_path / "export"
    (source / "a").mkdir(parents=True)
    (source / "a" / "one.pdf").write_bytes(b"%PDF-1.4")
    (source / ".hidden").write_text("x")
    (source / "b.part").write_text("x")
    (settings.inbox / "waiting.txt").write_text("already in the inbox")
    planned, warnings = plan_ingest(settings, [source, settings.inbox / "waiting.txt"])
    assert [item.relpath for item in planned] == ["export/a/one.pdf"]
    assert len(warnings) == 3 and any("in the inbox already" in w for w in warnings)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_and_table_read_well(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    bar = Progress("copying", terminal)
    bar.update(5, 10, "5/10 files")
    bar.update(10, 10, "10/10 files")
    bar.close()
    shown = terminal.getvalue()
    assert "\r" in shown and " 50% 5/10 files" in shown and "100% 10/10 files" in shown
    assert "[" + "#" * 5 in shown
    piped = io.StringIO()
    quiet = Progress("copying", piped)
    quiet.update(1, 4, "1/4 files")
    assert piped.getvalue() == ""  # quick work prints no progress into a log
    real = time.monotonic
    monkeypatch.setattr(console.time, "monotonic", lambda: real() + 60)
    quiet.update(2, 4, "2/4 files")
    assert piped.getvalue() == "copying: 50% 2/4 files\n"
    rows: list[list[Any]] = [["done", 12], ["failed", 3]]
    assert table(rows, ["STATE", "N"], right=[1], indent="").splitlines() == [
        "STATE    N", "done    12", "failed   3"]


def test_status_lists_the_files_waiting_for_their_writer_after_the_inbox_line(
    make_config: Callable[..., Path],
) -> None:
    settings = load_settings(make_config(), environ={})
    now = time.time()
    waiting = [
        {"relpath": "scans/old.pdf", "bytes": 4_700_000, "since": "2026-03-01T02:14:07Z",
         "waiting_seconds": 7300.0, "reason": "open_for_writing"},
        {"relpath": "evil\x1b[2J\u202etxt.exe", "bytes": 512, "since": "2026-03-01T04:15:00Z",
         "waiting_seconds": 3.24, "reason": "quiet_period"},
        {"relpath": "b\udcff.txt", "bytes": 0, "since": "2026-03-01T04:15:03Z",
         "waiting_seconds": 0.5, "reason": "empty"},
    ]
    snapshot: dict[str, Any] = {
        "counts": {"queued": 0, "running": 0, "done": 1, "failed": 0, "duplicate": 0,
                   "retried": 0},
        "throughput": {"last_1m": 0, "last_5m": 0, "last_15m": 0},
        "queues": {"docproc": 0}, "workers": [], "stages": {}, "oldest_unfinished": None,
        "spool": {"files": 0, "bytes": 0},
        "watcher": {"online": 1, "backlog": 5, "waiting": waiting,
                    "waiting_by_reason": {"open_for_writing": 1, "quiet_period": 1,
                                          "incomplete": 0, "settling": 2, "empty": 1}},
    }
    lines = render_status(settings, snapshot, now).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("inbox "))
    assert lines[start + 1] == "  waiting for their writer:"
    old, evil, empty, more = lines[start + 2:start + 6]
    clock = time.strftime("%H:%M:%S", time.localtime(parse_since(waiting[0]["since"])))
    assert old.split() == ["scans/old.pdf", "4.7", "MB", "since", clock, "open", "for",
                           "writing"]
    assert evil.split() == ["evil\\x1b[2J\\u202etxt.exe", "512", "B", "for", "3.2", "s",
                            "quiet", "period", "after", "close"]
    assert empty.split() == ["b\ufffd.txt", "0", "B", "for", "0.5", "s", "empty,", "waiting",
                             "for", "content"]
    assert more == "    and 2 more" and lines[start + 6].startswith("spool ")
    assert not any(ord(char) < 32 for char in "".join(lines))
    # Without waiting files the inbox line is followed by the spool's.
    snapshot["watcher"] |= {"waiting": [], "waiting_by_reason": {}}
    lines = render_status(settings, snapshot, now).splitlines()
    assert lines[start + 1].startswith("spool ")


def test_ingest_stopped_midway_leaves_nothing_hidden_in_the_inbox(
    make_config: Callable[..., Path], tmp_path: Path,
) -> None:
    settings = load_settings(make_config(), environ={})
    source = tmp_path / "batch"
    source.mkdir()
    (source / "a.txt").write_text("first page\n")
    (source / "b.txt").write_text("second page\n")
    planned, _ = plan_ingest(settings, [source])
    (source / "b.txt").unlink()  # vanishes before it is copied: the copy stops there
    with pytest.raises(FileNotFoundError):
        copy_into_inbox(settings, planned, Progress("copying", io.StringIO()))
    assert sorted(p.relative_to(settings.inbox).as_posix()
                  for p in settings.inbox.rglob("*")) == ["batch", "batch/a.txt"]
