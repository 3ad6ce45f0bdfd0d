"""Retention on disk: which outbox folders, reports and spool leftovers a purge lets go."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import yaml

from docproc.ledger.redis_ledger import RedisLedger
from docproc.schedule.retention import apply_plan, describe, make_plan
from docproc.settings import load_settings

NOW = datetime.datetime(2030, 6, 10, 12, tzinfo=datetime.UTC)


class EmptyLedger:
    """A ledger that knows no document."""

    def key_for_token(self, token: str) -> str | None:
        return None

    def received_before(self, before: float, offset: int, limit: int) -> list[tuple[str, float]]:
        return []

    def get_many(self, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        return []

    def forget(self, keys: Sequence[str]) -> dict[str, str]:
        return {}


def day_folder(outbox: Path, section: str, days_ago: int) -> Path:
    """Make an outbox day folder holding one document, received days before NOW."""
    day = (NOW - datetime.timedelta(days=days_ago)).date().isoformat()
    document = outbox / section / day / "scan.0123456789ab"
    document.mkdir(parents=True)
    (document / "report.json").write_text("{}")
    return document.parent


def test_a_purge_lets_go_what_is_past_retention_and_keeps_the_rest(tmp_path: Path) -> None:
    config = tmp_path / "docproc.yaml"
    config.write_text(yaml.safe_dump({
        "inbox": str(tmp_path / "inbox"), "outbox": str(tmp_path / "outbox"),
        "state_dir": str(tmp_path / "state"), "retention": {"days": 30, "failed_days": 90}}))
    settings = load_settings(config, environ={})
    outbox = settings.outbox
    old_done, recent_done = day_folder(outbox, "documents", 40), day_folder(outbox, "documents", 10)
    old_failed, older_failed = day_folder(outbox, "failed", 40), day_folder(outbox, "failed", 100)
    reports = outbox / "reports"
    reports.mkdir()
    for days in (100, 40):
        (reports / f"daily-{(NOW - datetime.timedelta(days=days)).date()}.json").write_text("{}")
    spool = settings.spool_dir
    spool.mkdir(parents=True)
    token = f"{int((NOW - datetime.timedelta(days=35)).timestamp() * 1e9):016x}-10570000"
    (spool / f"{token}.claim.json").write_text("{}")  # a leftover: its file went long ago
    unrecorded = token.replace("10570000", "0ec0ded0")
    (spool / f"{unrecorded}.data").write_text("claimed, never recorded: the sweep sends it on")

    plan = make_plan(settings, cast(RedisLedger, EmptyLedger()), NOW)
    lines = describe(plan)
    assert any(line.endswith(f"{old_done}/  (1 document)") for line in lines)
    assert any(line.endswith(f"{older_failed}/  (1 document)") for line in lines)
    assert any(line.endswith(f"{token}.claim.json  (not in the ledger)") for line in lines)
    outcome = apply_plan(plan, cast(RedisLedger, EmptyLedger()))

    assert not outcome.errors and outcome.items == len(plan.items) == 4
    assert not old_done.exists() and not older_failed.exists()
    assert recent_done.is_dir() and old_failed.is_dir()
    assert [path.name for path in reports.iterdir()] == [
        f"daily-{(NOW - datetime.timedelta(days=40)).date()}.json"]
    assert [path.name for path in spool.iterdir()] == [f"{unrecorded}.data"]
