"""Intake's spool sweep and hand-over, against a real Redis (the session's embedded Valkey)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis

from docproc.inbox.intake import Intake
from docproc.inbox.spool import Claimed
from docproc.ledger.redis_ledger import RedisLedger
from docproc.model import Job
from docproc.settings import Settings, load_settings
from tests.conftest import ledger_url


@pytest.fixture
def ledger(broker: dict[str, str | None]) -> RedisLedger:
    """A clean ledger where each broker of the matrix keeps it (RabbitMQ: its result store)."""
    return RedisLedger(redis.Redis.from_url(ledger_url(broker), decode_responses=True))


def _settings(tmp_path: Path) -> Settings:
    """Return the settings of an instance whose state is under tmp_path."""
    config = tmp_path / "docproc.yaml"
    config.write_text(f"state_dir: {tmp_path / 'state'}\n")
    return load_settings(config, environ={})


def _claimed(spool: Path, token: str, content: bytes = b"hello") -> Claimed:
    import hashlib

    (spool / f"{token}.data").write_bytes(content)
    (spool / f"{token}.claim.json").write_text(json.dumps(
        {"name": "a.txt", "relpath": "dept/a.txt", "received_at": "2026-11-23T10:00:00Z"}))
    return Claimed(token, spool / f"{token}.data", "a.txt", "dept/a.txt", len(content),
                   hashlib.sha256(content).hexdigest(), "2026-11-23T10:00:00Z")


def test_sweep_sends_on_old_spool_files_the_ledger_lost(
    ledger: RedisLedger, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    spool = settings.spool_dir
    spool.mkdir(parents=True)
    old = f"{time.time_ns() - 120 * 10**9:016x}-aaaaaaaa"
    young = f"{time.time_ns():016x}-bbbbbbbb"
    known = f"{time.time_ns() - 120 * 10**9:016x}-cccccccc"
    _claimed(spool, old, b"lost by the broker")
    _claimed(spool, young, b"being claimed right now")
    ledger.record(_claimed(spool, known, b"recorded"))
    sent: list[Job] = []
    assert Intake(settings, ledger, sent.extend).sweep(spool, min_age=30) == 1
    assert [job.source.relpath for job in sent] == ["dept/a.txt"]
    assert sent[0].token == old and ledger.key_for_token(old) == sent[0].key


def test_a_failed_flush_keeps_unsent_claims_and_records_nothing_twice(
    ledger: RedisLedger, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    sent: list[list[Job]] = []
    failures = iter([True, False, False, False, False])

    def send(jobs: list[Job]) -> None:
        if next(failures):
            raise ConnectionError("broker away")
        sent.append(jobs)

    intake = Intake(settings, ledger, send)
    with pytest.raises(ConnectionError):
        intake(_claimed(tmp_path, "00-tok", b"file 0"))  # the first claim after a pause goes out
    for number in range(1, 4):
        intake(_claimed(tmp_path, f"{number:02d}-tok", f"file {number}".encode()))
    assert len(intake.pending) == 4
    intake.flush()
    keys = [job.key for batch in sent for job in batch]
    assert len(keys) == len(set(keys)) == 4 and intake.pending == []
    assert ledger.counts()["queued"] == 4


def test_a_claim_handed_over_again_after_a_failed_flush_is_sent_once(
    ledger: RedisLedger, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    sent: list[Job] = []
    failures = iter([True, False])

    def send(jobs: list[Job]) -> None:
        if next(failures):
            raise ConnectionError("broker away")
        sent.extend(jobs)

    intake = Intake(settings, ledger, send)
    claimed = _claimed(tmp_path, "00-once", b"handed over twice")
    with pytest.raises(ConnectionError):
        intake(claimed)
    intake(claimed)  # what the watcher does after a failed hand-over
    intake.flush()  # and when it pauses
    assert [job.token for job in sent] == ["00-once"] and intake.pending == []


def test_recovery_keeps_the_original_of_a_failure_the_outbox_could_not_take(
    ledger: RedisLedger, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    unwritten = _claimed(tmp_path, "01-unwritten", b"its failure could not be written")
    written = _claimed(tmp_path, "02-written", b"its failure is in the outbox")
    for claimed, outdir in ((unwritten, ""), (written, str(tmp_path / "failed" / "x"))):
        ledger.finish(ledger.record(claimed).key, "failed", outdir, "internal")
    Intake(settings, ledger, lambda jobs: None).recover([unwritten, written])
    assert unwritten.spool_path.exists() and not written.spool_path.exists()
