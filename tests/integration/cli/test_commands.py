"""The commands for people, run as a person would: ingest --wait, status, retry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from docproc.settings import load_settings
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
