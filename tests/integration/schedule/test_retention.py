"""Retention: `docproc purge [--dry-run]` on documents processed for real, then aged.

Processed files are made to look older (tests/aging.py moves their receipt time and their
outbox day folder); an unfinished document, spool leftovers, an interrupted outbox write and
old reports are laid out around them.
"""

from __future__ import annotations

import datetime
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from docproc.inbox.spool import Claimed
from docproc.ledger.redis_ledger import RedisLedger
from tests.aging import age, records_by_name
from tests.conftest import Daemon, drop, free_port, reports, run_docproc, short_tmpdir, wait_until

NOW = datetime.datetime.now(datetime.UTC)


def days_ago(days: int) -> datetime.datetime:
    return NOW - datetime.timedelta(days=days)


@dataclass
class Aged:
    config: Path
    root: Path
    outbox: Path
    spool: Path
    client: redis.Redis
    records: dict[str, dict[str, Any]]


def token_at(moment: datetime.datetime, tail: str) -> str:
    """Return a spool token as the watcher makes them, claimed at a moment."""
    return f"{int(moment.timestamp() * 1e9):016x}-{tail}"


@pytest.fixture(scope="module")
def aged(valkey_socket: Path, corpus: Path, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Aged]:
    root = tmp_path_factory.mktemp("retention")
    client = redis.Redis(unix_socket_path=str(valkey_socket), decode_responses=True)
    client.flushdb()
    state = short_tmpdir("dpr-")
    config = root / "docproc.yaml"
    config.write_text(yaml.safe_dump({
        "inbox": str(root / "inbox"), "outbox": str(root / "outbox"), "state_dir": str(state),
        "broker_url": f"redis+socket://{valkey_socket}", "watcher": {"settle_seconds": 0.3},
        "retention": {"days": 30, "failed_days": 90}, "status_api": {"port": free_port()},
    }))
    (root / "logs").mkdir()
    daemon = Daemon(config, root / "logs")
    daemon.start("worker")
    daemon.start("watch")
    inbox, outbox = root / "inbox", root / "outbox"
    try:
        wait_until(inbox.is_dir, 30, message="the watcher to start")
        # The copy comes after the first is reported, so that it is the duplicate.
        (inbox / "old.txt").write_text("Quarterly invoices.\n")
        wait_until(lambda: len(reports(outbox)) == 1, 60, message="the first report")
        (inbox / "old-copy.txt").write_text("Quarterly invoices.\n")
        (inbox / "recent.txt").write_text("Fresh.\n")
        shutil.copy(corpus / "pdf-hard/r6-user-password.pdf", inbox / "locked.pdf")
        drop(corpus / "images-bad/decompression_bomb.gif", inbox / "bomb.gif")
        wait_until(lambda: len(reports(outbox)) == 5, 60, message="5 reports")
        # A report is written before its document's end is recorded and its spool files go.
        wait_until(lambda: not any((state / "spool").iterdir()), 30,
                   message="the spool to be cleaned")
    finally:
        daemon.stop()
    records = records_by_name(client)
    assert records["old-copy.txt"]["status"] == "duplicate"
    for name, days in (("old.txt", 40), ("old-copy.txt", 40), ("recent.txt", 10),
                       ("locked.pdf", 40), ("bomb.gif", 100)):
        age(client, records[name]["key"], days_ago(days), move_folder=True)

    # A document still waiting for a worker, received 40 days ago, and its spooled file.
    spool = state / "spool"
    token = token_at(days_ago(40), "57uc4000")
    stuck = Claimed(token, spool / f"{token}.data", "stuck.txt", "stuck.txt", 5, "5" * 64,
                    days_ago(40).strftime("%Y-%m-%dT%H:%M:%SZ"))
    [receipt] = RedisLedger(client).record_many([stuck])
    age(client, receipt.key, days_ago(40))
    stuck.spool_path.write_text("stuck")
    # Leftovers: a finished document's file, a file the ledger never knew; and a recent one.
    (spool / f"{records['old.txt']['token']}.data").write_text("left behind")
    lost = token_at(days_ago(35), "10570000")
    (spool / f"{lost}.claim.json").write_text("{}")
    (spool / f"{lost}.work").mkdir()
    # A file claimed but never recorded (the broker lost it): the watcher's sweep sends it on.
    unrecorded = token_at(days_ago(35), "0ec0ded0")
    (spool / f"{unrecorded}.data").write_bytes(b"x" * 2000)
    (spool / f"{unrecorded}.claim.json").write_text('{"name": "unrecorded.txt"}')
    (spool / f"{token_at(days_ago(1), '0ecent00')}.data").write_text("recent")
    # An outbox write cut off long ago, and daily reports of 100 and 40 days ago.
    cut = outbox / ".incoming" / "old.abc.1234"
    cut.mkdir(parents=True)
    (cut / "report.json").write_text("{}")
    old_time = days_ago(40).timestamp()
    os.utime(cut, (old_time, old_time))
    (outbox / "reports").mkdir()
    for days in (100, 40):
        (outbox / "reports" / f"daily-{days_ago(days).date()}.json").write_text("{}")
    # Failed attempts that someone retried (docproc retry moves them to retried/).
    for days in (40, 10):
        attempt = outbox / "retried" / str(days_ago(days).date()) / f"scan.{days:012d}"
        attempt.mkdir(parents=True)
        (attempt / "report.json").write_text("{}")
    # The inbox is never touched, whatever it holds.
    (inbox / "2020-01-01").mkdir()
    (inbox / "2020-01-01" / "waiting.txt").write_text("not claimed yet")
    os.utime(inbox / "2020-01-01" / "waiting.txt", (0, 0))
    yield Aged(config, root, outbox, spool, client, records_by_name(client))


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_dry_run_lists_what_would_go_and_changes_nothing(aged: Aged) -> None:
    before = _tree(aged.root), _tree(aged.spool), aged.client.dbsize()
    result = run_docproc(aged.config, "purge", "--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.splitlines()[0] == (
        f"retention: documents received before {days_ago(30).date()} (retention.days 30), "
        f"failed ones before {days_ago(90).date()} (retention.failed_days 90)")
    assert f"outbox/documents/{days_ago(40).date()}/  (2 documents)" in out
    assert f"outbox/failed/{days_ago(100).date()}/  (1 document)" in out
    assert f"outbox/retried/{days_ago(40).date()}/  (1 document)" in out
    assert f"outbox/failed/{days_ago(40).date()}/" not in out
    assert f"outbox/retried/{days_ago(10).date()}/" not in out
    assert f"outbox/documents/{days_ago(10).date()}/" not in out
    assert f"daily-{days_ago(100).date()}.json" in out and f"daily-{days_ago(40).date()}" not in out
    assert "old.abc.1234/  (unfinished outbox write)" in out
    assert "(old.txt, done)" in out and out.count("(not in the ledger)") == 2
    assert "57uc4000" not in out and "0ecent00" not in out and "0ec0ded0" not in out
    assert "ledger: 3 document records" in out
    assert "would free" in out and "nothing was changed (--dry-run)" in out
    assert "kept 1 unfinished documents" in out
    assert (_tree(aged.root), _tree(aged.spool), aged.client.dbsize()) == before


def test_purge_removes_what_is_past_retention_and_nothing_else(aged: Aged) -> None:
    records = aged.records
    counts_before = aged.client.hgetall("docproc:counts")
    result = run_docproc(aged.config, "purge")
    assert result.returncode == 0, result.stderr
    assert "removed:" in result.stdout and "forgot 3 ledger records" in result.stdout

    outbox = aged.outbox
    assert not (outbox / "documents" / str(days_ago(40).date())).exists()
    assert not (outbox / "failed" / str(days_ago(100).date())).exists()
    assert (outbox / "failed" / str(days_ago(40).date())).exists()
    assert (outbox / "documents" / str(days_ago(10).date())).exists()
    assert [p.name for p in (outbox / "retried").iterdir()] == [str(days_ago(10).date())]
    assert not (outbox / ".incoming" / "old.abc.1234").exists()
    assert sorted(p.name for p in (outbox / "reports").iterdir()) == [
        f"daily-{days_ago(40).date()}.json"]
    unrecorded = token_at(days_ago(35), "0ec0ded0")
    assert sorted(p.name for p in aged.spool.iterdir()) == sorted(
        [f"{token_at(days_ago(40), '57uc4000')}.data", f"{token_at(days_ago(1), '0ecent00')}.data",
         f"{unrecorded}.data", f"{unrecorded}.claim.json"])
    assert (aged.root / "inbox" / "2020-01-01" / "waiting.txt").exists()

    ledger = RedisLedger(aged.client)
    for name in ("old.txt", "old-copy.txt", "bomb.gif"):
        record = records[name]
        assert ledger.get(record["key"]) is None
        assert aged.client.zscore("docproc:docs", record["key"]) is None
        assert aged.client.get(f"docproc:token:{record['token']}") is None
        assert aged.client.get(f"docproc:sha:{record['sha256']}") is None
        assert aged.client.get(f"docproc:seq:{record['id']}") is None
    for name in ("recent.txt", "locked.pdf", "stuck.txt"):
        assert ledger.get(records[name]["key"]) is not None
    assert aged.client.zscore("docproc:active", records["stuck.txt"]["key"]) is not None
    assert aged.client.get(f"docproc:sha:{records['recent.txt']['sha256']}") is not None
    counts = aged.client.hgetall("docproc:counts")
    assert {k: int(counts_before[k]) - int(counts[k]) for k in counts_before} == {
        "done": 1, "duplicate": 1, "failed": 1}

    again = run_docproc(aged.config, "purge")
    assert again.returncode == 0 and "nothing to purge" in again.stdout
    assert "kept 1 unfinished documents" in again.stdout


def test_purge_needs_the_ledger(aged: Aged, tmp_path: Path) -> None:
    config = tmp_path / "docproc.yaml"
    settings = yaml.safe_load(aged.config.read_text())
    config.write_text(yaml.safe_dump({**settings,
                                      "broker_url": "redis+socket:///nonexistent/valkey.sock"}))
    result = run_docproc(config, "purge", "--dry-run")
    assert result.returncode == 1 and "does not answer" in result.stderr
