"""The daily report: Beat's chord through real workers, a failing summary task, `docproc report`.

Files are processed for real by a watcher and a worker; then the ledger records them as
received yesterday morning (tests/aging.py), one minute apart.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from celery import Celery

from tests.aging import age, clear_of_midnight, records_by_name
from tests.conftest import Daemon, drop, free_port, reports, run_docproc, short_tmpdir, wait_until

FILES = {
    "report.pdf": "pdf/004-pdflatex-4-pages_pdflatex-4-pages.pdf",
    "locked.pdf": "pdf-hard/r6-user-password.pdf",
    "bomb.gif": "images-bad/decompression_bomb.gif",
    "hopper.jpg": "images/hopper.jpg",
}
TEXTS = {
    "notes.txt": "Invoices and receipts for the quarterly invoices review.\n",
    "notes-copy.txt": "Invoices and receipts for the quarterly invoices review.\n",
    "memo.txt": "A memo about invoices, ledgers and the quarterly close.\n",
    "slow-share.txt": "Invoices again, in a document whose report sits on a share that hangs.\n",
}


@dataclass
class Day:
    """Documents processed for real and recorded as received yesterday."""

    config: Path
    broker_url: str
    outbox: Path
    day: datetime.date
    client: redis.Redis
    records: dict[str, dict[str, Any]]

    def folder(self, name: str) -> Path:
        return Path(self.records[name]["outdir"])

    def report(self) -> dict[str, Any]:
        return json.loads((self.outbox / "reports" / f"daily-{self.day}.json").read_text())


def send(broker_url: str, task: str, *args: Any) -> None:
    """Send a task by name to the control queue, as Beat does."""
    sender = Celery("test-sender", broker=broker_url, set_as_current=False)
    try:
        sender.send_task(task, args=list(args), queue="docproc.control")
    finally:
        sender.close()


@pytest.fixture(scope="module")
def day(valkey_socket: Path, corpus: Path, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Day]:
    # The module's expected days (yesterday, today) are those of its start.
    clear_of_midnight(300)
    root = tmp_path_factory.mktemp("daily")
    broker_url = f"redis+socket://{valkey_socket}"
    client = redis.Redis(unix_socket_path=str(valkey_socket), decode_responses=True)
    client.flushdb()
    state = short_tmpdir("dpd-")
    config = root / "docproc.yaml"
    config.write_text(yaml.safe_dump({
        "inbox": str(root / "inbox"), "outbox": str(root / "outbox"),
        "state_dir": str(state), "broker_url": broker_url,
        "watcher": {"settle_seconds": 0.3},
        # A short soft limit, so that a summary task stuck on a hung read fails quickly.
        "workers": {"concurrency": 2, "task_time_limit": 6, "task_soft_time_limit": 2},
        "status_api": {"port": free_port()},
    }))
    (root / "logs").mkdir()
    daemon = Daemon(config, root / "logs")
    daemon.start("worker")
    daemon.start("watch")
    try:
        inbox, outbox = root / "inbox", root / "outbox"
        wait_until(inbox.is_dir, 30, message="the watcher to start")
        for name, relpath in FILES.items():
            drop(corpus / relpath, inbox / name)
        for name, text in TEXTS.items():
            (inbox / name).write_text(text)
        count = len(FILES) + len(TEXTS)
        wait_until(lambda: len(reports(outbox)) == count, 60, message=f"{count} reports")
        # A report is written before its document's end is recorded and its spool files go.
        wait_until(lambda: not any((state / "spool").iterdir()), 30,
                   message="the spool to be cleaned")
        yesterday = datetime.date.today() - datetime.timedelta(days=1)
        morning = datetime.datetime.combine(yesterday, datetime.time(9, 0)).astimezone()
        records = records_by_name(client)
        for minute, name in enumerate(sorted(records)):
            age(client, records[name]["key"], morning + datetime.timedelta(minutes=minute))
        yield Day(config, broker_url, outbox, yesterday, client, records_by_name(client))
    finally:
        daemon.stop()


def test_beat_task_builds_the_report_with_a_chord_listing_what_it_could_not_read(
    day: Day,
) -> None:
    memo = day.folder("memo.txt") / "report.json"
    original = memo.read_text()
    memo.write_text('{"schema": "docproc.report/1", "status": ')  # cut off mid-write
    try:
        # As Beat sends it at schedule.daily_report, here in chunks of 3 documents.
        send(day.broker_url, "docproc.daily.report", day.day.isoformat(), 3)
        path = day.outbox / "reports" / f"daily-{day.day}.json"
        wait_until(path.exists, 30, message="the daily report")
    finally:
        memo.write_text(original)
    report = day.report()
    readable = [r for r in reports(day.outbox) if r["source"]["name"] != "memo.txt"]
    done = [r for r in readable if r["status"] == "done"]

    assert report["date"] == day.day.isoformat() and report["source"] == "ledger"
    assert report["documents"] == 8 and not report["complete"]
    assert report["by_status"] == {"done": 5, "failed": 2, "duplicate": 1, "retried": 0,
                                   "queued": 0, "running": 0}
    assert report["by_kind"]["pdf"] == 2 and report["by_kind"]["text"] == 3
    assert report["pages"] == sum(r["pages"] or 0 for r in done) >= 4
    assert report["words"] == sum(r["text"]["words"] for r in done) > 0
    assert set(report["failures"]) == {"encrypted", "too_large"}
    locked = report["failures"]["encrypted"]["documents"][0]
    assert locked["relpath"] == "locked.pdf" and locked["stage"] and locked["message"]
    assert Path(locked["folder"], "original", "locked.pdf").exists()
    assert report["keywords"][0] == {"keyword": "invoices", "documents": 2}  # memo unread
    for stage in ("detect", "extract", "analyze", "thumbnail", "total"):
        stats = report["timings_ms"][stage]
        assert stats["p50"] <= stats["p90"] <= stats["p99"] <= stats["max"]
    assert report["timings_ms"]["detect"]["count"] == 7
    nine = next(hour for hour in report["by_hour"] if hour["hour"] == "09:00")
    assert nine["documents"] == 8 and nine["failed"] == 2
    assert sum(hour["documents"] for hour in report["by_hour"]) == 8
    assert [(d["relpath"], d["reason"]) for d in report["not_summarized"]] == [
        ("memo.txt", "its report.json is not valid JSON")]

    html = (day.outbox / "reports" / f"daily-{day.day}.html").read_text()
    assert html.count("<svg") >= 4 and "<script" not in html and "src=" not in html
    assert "memo.txt" in html and "locked.pdf" in html and "invoices" in html


def test_a_failed_summary_task_still_yields_the_report(day: Day) -> None:
    stuck = day.folder("slow-share.txt") / "report.json"
    original = stuck.read_text()
    path = day.outbox / "reports" / f"daily-{day.day}.json"
    path.unlink(missing_ok=True)
    # Reading a FIFO without a writer blocks, like a report on a share that stopped answering:
    # that summary task runs into its time limit and fails, and with it the chord.
    stuck.unlink()
    os.mkfifo(stuck)
    try:
        day.client.delete(f"docproc:lock:daily:{day.day}")  # as if the last build were long ago
        send(day.broker_url, "docproc.daily.report", day.day.isoformat(), 1)
        wait_until(path.exists, 30, message="the daily report despite a failed task")
    finally:
        stuck.unlink()
        stuck.write_text(original)
    report = day.report()
    assert report["documents"] == 8
    [lost] = report["not_summarized"]
    assert lost["relpath"] == "slow-share.txt"
    assert lost["reason"].startswith("its summary task failed (SoftTimeLimitExceeded")
    assert report["by_status"]["done"] == 5 and report["pages"] >= 4
    assert sum(entry["count"] for entry in report["failures"].values()) == 2


def test_docproc_report_builds_it_now(day: Day) -> None:
    result = run_docproc(day.config, "report", "--date", day.day.isoformat())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"daily report of {day.day}: 8 documents (5 done, 2 failed, "
                               "1 duplicate)")
    assert lines[1:] == [f"  {day.outbox}/reports/daily-{day.day}.json",
                         f"  {day.outbox}/reports/daily-{day.day}.html"]
    assert day.report()["complete"]

    # Yesterday is the default.
    result = run_docproc(day.config, "report")
    assert result.returncode == 0 and " 8 documents" in result.stdout

    # A day retention purged since keeps the report built back then.
    old = day.outbox / "reports" / "daily-2001-02-03.json"
    old.write_text(json.dumps({**day.report(), "date": "2001-02-03"}))
    result = run_docproc(day.config, "report", "--date", "2001-02-03")
    assert result.returncode == 0 and "kept the report built before" in result.stderr
    assert json.loads(old.read_text())["documents"] == 8

    future = (datetime.date.today() + datetime.timedelta(days=2)).isoformat()
    result = run_docproc(day.config, "report", "--date", future)
    assert result.returncode == 2 and "in the future" in result.stderr
    result = run_docproc(day.config, "report", "--date", "yesterday")
    assert result.returncode == 2 and "YYYY-MM-DD" in result.stderr


def test_docproc_report_without_the_broker_reads_the_outbox(day: Day) -> None:
    # The outbox's report.json files still say the documents came today.
    today = datetime.date.today().isoformat()
    result = run_docproc(day.config, "report", "--date", today,
                     env={"DOCPROC_BROKER_URL": "redis+socket:///nonexistent/valkey.sock"})
    assert result.returncode == 0, result.stderr
    assert "does not answer" in result.stderr and "outbox folders" in result.stderr
    report = json.loads((day.outbox / "reports" / f"daily-{today}.json").read_text())
    assert report["source"] == "outbox" and report["documents"] == 8
    assert report["by_status"]["failed"] == 2
