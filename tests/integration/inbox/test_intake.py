"""Intake's spool sweep and hand-over, against a real Redis (the session's embedded Valkey)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from docproc.inbox.intake import Intake
from docproc.ledger.redis_ledger import RedisLedger
from docproc.model import Job
from tests.claims import settings_under, spooled_file
from tests.conftest import ledger_url


@pytest.fixture
def ledger(broker: dict[str, str | None]) -> RedisLedger:
    """A clean ledger where each broker of the matrix keeps it (RabbitMQ: its result store)."""
    return RedisLedger(redis.Redis.from_url(ledger_url(broker), decode_responses=True))


def test_sweep_sends_on_old_spool_files_the_ledger_lost(
    ledger: RedisLedger, tmp_path: Path
) -> None:
    settings = settings_under(tmp_path)
    spool = settings.spool_dir
    spool.mkdir(parents=True)
    old = f"{time.time_ns() - 120 * 10**9:016x}-aaaaaaaa"
    young = f"{time.time_ns():016x}-bbbbbbbb"
    known = f"{time.time_ns() - 120 * 10**9:016x}-cccccccc"
    spooled_file(spool, old, b"lost by the broker")
    spooled_file(spool, young, b"being claimed right now")
    ledger.record(spooled_file(spool, known, b"recorded"))
    sent: list[Job] = []
    assert Intake(settings, ledger, sent.extend).sweep(spool, min_age=30) == 1
    assert [job.source.relpath for job in sent] == ["dept/a.txt"]
    assert sent[0].token == old and ledger.key_for_token(old) == sent[0].key


def test_a_failed_flush_keeps_unsent_claims_and_records_nothing_twice(
    ledger: RedisLedger, tmp_path: Path
) -> None:
    settings = settings_under(tmp_path)
    sent: list[list[Job]] = []
    failures = iter([True, False, False, False, False])

    def send(jobs: list[Job]) -> None:
        if next(failures):
            raise ConnectionError("broker away")
        sent.append(jobs)

    intake = Intake(settings, ledger, send)
    with pytest.raises(ConnectionError):
        # the first claim after a pause goes out
        intake(spooled_file(tmp_path, "00-tok", b"file 0"))
    for number in range(1, 4):
        intake(spooled_file(tmp_path, f"{number:02d}-tok", f"file {number}".encode()))
    assert len(intake.pending) == 4
    intake.flush()
    keys = [job.key for batch in sent for job in batch]
    assert len(keys) == len(set(keys)) == 4 and intake.pending == []
    assert ledger.counts()["queued"] == 4


def test_a_claim_handed_over_again_after_a_failed_flush_is_sent_once(
    ledger: RedisLedger, tmp_path: Path
) -> None:
    settings = settings_under(tmp_path)
    sent: list[Job] = []
    failures = iter([True, False])

    def send(jobs: list[Job]) -> None:
        if next(failures):
            raise ConnectionError("broker away")
        sent.extend(jobs)

    intake = Intake(settings, ledger, send)
    claimed = spooled_file(tmp_path, "00-once", b"handed over twice")
    with pytest.raises(ConnectionError):
        intake(claimed)
    intake(claimed)  # what the watcher does after a failed hand-over
    intake.flush()  # and when it pauses
    assert [job.token for job in sent] == ["00-once"] and intake.pending == []


def test_recovery_keeps_the_original_of_a_failure_the_outbox_could_not_take(
    ledger: RedisLedger, tmp_path: Path
) -> None:
    settings = settings_under(tmp_path)
    unwritten = spooled_file(tmp_path, "01-unwritten", b"its failure could not be written")
    written = spooled_file(tmp_path, "02-written", b"its failure is in the outbox")
    for claimed, outdir in ((unwritten, ""), (written, str(tmp_path / "failed" / "x"))):
        ledger.finish(ledger.record(claimed).key, "failed", outdir, "internal")
    Intake(settings, ledger, lambda jobs: None).recover([unwritten, written])
    assert unwritten.spool_path.exists() and not written.spool_path.exists()
