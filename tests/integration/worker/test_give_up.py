"""The real give-up path: a document orphaned more than workers.max_retries times fails as
`timeout`, with a failed folder that says why and keeps the original.

The reconciler runs with the worker's own `give_up` against the session's embedded Valkey;
only the resend is a stand-in (no worker would take the message), and the passes are given
their moments instead of waiting for them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from docproc import tasks
from docproc.app import app, configure
from docproc.inbox.spool import Claimed
from docproc.settings import Settings, load_settings
from docproc.worker.reconcile import CONFIRM_SECONDS, QUIET_SECONDS, Reconciler
from docproc.worker.reconcile_task import give_up
from tests.conftest import reports

CONTENT = b"a scan that kills every worker that opens it\n"
CACHED = ("ledger", "outbox", "holding")


@pytest.fixture
def configured(
    broker: dict[str, Any], make_config: Callable[..., Path]
) -> Iterator[Settings]:
    """Configure the worker's app as `docproc worker` would; undo it afterwards."""
    settings = load_settings(make_config(**broker, workers={"max_retries": 2}), environ={})
    before = app._settings
    for name in CACHED:
        app.__dict__.pop(name, None)
    tasks.intake.cache_clear()
    configure(settings)
    settings.outbox.mkdir(parents=True)  # as `docproc worker` does at start
    yield settings
    for name in CACHED:
        app.__dict__.pop(name, None)
    tasks.intake.cache_clear()
    app._settings = before


def _claim(spool: Path, token: str) -> Claimed:
    spool.mkdir(parents=True, exist_ok=True)
    (spool / f"{token}.data").write_bytes(CONTENT)
    (spool / f"{token}.claim.json").write_text(json.dumps(
        {"name": "scan.tiff", "relpath": "dept/scan.tiff",
         "received_at": "2026-11-23T10:00:00Z"}))
    return Claimed(token, spool / f"{token}.data", "scan.tiff", "dept/scan.tiff", len(CONTENT),
                   hashlib.sha256(CONTENT).hexdigest(), "2026-11-23T10:00:00Z")


@pytest.mark.parametrize("broker", ["embedded"], indirect=True)
def test_a_document_orphaned_more_than_max_retries_times_fails_as_timeout_with_its_original(
    configured: Settings,
) -> None:
    ledger = app.ledger
    key = ledger.record(_claim(configured.spool_dir, f"{time.time_ns():016x}-deadbeef")).key
    ledger.start_stage_many({key: "{}"}, "extract", "worker1@host")
    resent: list[str] = []
    reconciler = Reconciler(ledger, lambda record: resent.append(record["key"]),
                            give_up, configured.workers.max_retries)

    failed: list[str] = []
    now = time.time() + QUIET_SECONDS + 1
    for _ in range(configured.workers.max_retries + 1):
        # Each time: no live worker holds it and no queue has it, seen twice (suspect, confirm).
        assert reconciler.run_once(set(), now).failed == []
        failed = reconciler.run_once(set(), now + CONFIRM_SECONDS).failed
        now += 2 * QUIET_SECONDS + CONFIRM_SECONDS
    assert resent == [key] * configured.workers.max_retries
    assert failed == [key]

    [report] = reports(configured.outbox)
    folder = report["_folder"]
    assert folder.parent.parent == configured.outbox / "failed"
    assert report["status"] == "failed" and report["id"] == key
    assert report["error"]["type"] == "timeout"
    assert "died or was killed 2 times" in report["error"]["message"]
    assert "workers.task_time_limit" in report["error"]["message"]
    assert (folder / "original" / "scan.tiff").read_bytes() == CONTENT
    record = ledger.get(key)
    assert record is not None and record["status"] == "failed"
    assert not ledger.active()
