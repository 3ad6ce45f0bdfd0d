"""Intake: record claimed files in the ledger and send them through the stages, in batches.

Claims gather while the watcher is busy and go out when it pauses (or when a batch
is full): one ledger round trip and a few chains for many files under a burst, a
chain of one right away for a file dropped on an idle daemon.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from docproc.inbox.spool import Claimed, spooled_claim, token_ns
from docproc.ledger.interface import DocumentLedger
from docproc.ledger.model import Receipt
from docproc.model import TERMINAL, Job, name_from_hex
from docproc.settings import Settings
from docproc.stages import new_job

log = logging.getLogger("docproc.intake")


# Enough claims to make one ledger round trip and one publish worth a short wait.
MAX_PENDING = 64
# Under a burst, claims go out at least this often, so workers start at once and stay fed.
FLUSH_SECONDS = 0.05
# Documents per task: more saves hops, fewer keeps both cores busy on a short burst.
MAX_PER_TASK = 16


def batch_sizes(count: int, max_per_task: int = MAX_PER_TASK) -> list[int]:
    """Split count documents into task batches: alone when few, up to max_per_task when many.

    At least two batches, so that two worker processes share a short burst.
    """
    per_task = max(1, min(max_per_task, count // 2))
    return [min(per_task, count - start) for start in range(0, count, per_task)]


class Intake:
    """Turn claimed files into queued jobs, once each, whatever is retried."""

    def __init__(
        self, settings: Settings, ledger: DocumentLedger, send: Callable[[list[Job]], None]
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.send = send
        self.pending: list[Claimed] = []
        self._pending_tokens: set[str] = set()
        self._lock = threading.RLock()
        self._flushed_at = float("-inf")

    def __call__(self, claimed: Claimed) -> None:
        """Take a claimed file; send the pending ones when there are many.

        A claim handed over again after a failed flush is already pending: it waits once.
        """
        with self._lock:
            if claimed.token not in self._pending_tokens:
                self._pending_tokens.add(claimed.token)
                self.pending.append(claimed)
            if (len(self.pending) >= MAX_PENDING
                    or time.monotonic() - self._flushed_at >= FLUSH_SECONDS):
                self.flush()

    def flush(self) -> None:
        """Record the pending claims and send their jobs; on failure keep them for next time.

        Recording is idempotent by claim token, so a flush repeated after a failure
        records nothing twice.
        """
        with self._lock:
            if not self.pending:
                return
            self._flushed_at = time.monotonic()
            claims = list(self.pending)
            receipts = self.ledger.record_many(claims)
            jobs = [self._job(claimed, receipt)
                    for claimed, receipt in zip(claims, receipts, strict=True)]
            start = 0
            for size in batch_sizes(len(jobs)):
                self.send(jobs[start:start + size])
                start += size
                # What was sent is not sent again if a later batch fails.
                self._pending_tokens.difference_update(c.token for c in self.pending[:size])
                del self.pending[:size]

    def _job(self, claimed: Claimed, receipt: Receipt) -> Job:
        work_dir = self.settings.spool_dir / f"{claimed.token}.work"
        return new_job(claimed, receipt, claimed.spool_path, work_dir)

    def job_for(self, record: dict[str, Any]) -> Job:
        """Rebuild a recorded document's job, to send it again from its first stage."""
        token = record["token"]
        claimed = Claimed(
            token=token,
            spool_path=self.settings.spool_dir / f"{token}.data",
            name=name_from_hex(record["raw_name"]),
            relpath=record["relpath"],
            bytes=record["bytes"],
            sha256=record["sha256"],
            received_at=record["received_at"],
            mtime_ns=int(record.get("mtime_ns") or 0),
            incomplete=record.get("incomplete") or None,
        )
        receipt = Receipt(record["key"], record.get("duplicate_of") or None)
        work_dir = self.settings.spool_dir / f"{token}.work"
        return new_job(claimed, receipt, claimed.spool_path, work_dir,
                       received_ts=record.get("received_ts"))

    def claim_again(self, job: Job) -> Job | None:
        """Record anew, as a new document of its whole content, a file written on after its claim.

        Its earlier record goes: one report comes out, of the whole file. None when the
        document finished meanwhile or its file is gone.
        """
        if not self.ledger.withdraw(job.key):
            return None
        shutil.rmtree(job.work_dir, ignore_errors=True)
        # The spool file is now one the ledger does not know: should this process die here,
        # the watcher's sweep sends it on.
        claimed = spooled_claim(self.settings.spool_dir, job.token)
        if claimed is None:
            return None
        [receipt] = self.ledger.record_many([claimed])
        log.warning("%s was written on after its claim (%d bytes then, %d now); processing the "
                    "whole file as %s", claimed.relpath, job.source.bytes, claimed.bytes,
                    receipt.key)
        return self._job(claimed, receipt)

    def resend(self, record: dict[str, Any]) -> None:
        """Send a recorded document through its stages again."""
        self.send([self.job_for(record)])

    def sweep(self, spool_dir: Path, min_age: float) -> int:
        """Send on spool files older than min_age seconds that the ledger does not know.

        The broker may lose its last second of writes when it dies; the spool does not.
        """
        now_ns = time.time_ns()
        tokens = []
        for entry in os.scandir(spool_dir):
            token = entry.name.removesuffix(".data")
            if entry.name.endswith(".data") and _age_seconds(token, now_ns) > min_age:
                tokens.append(token)
        recovered = 0
        for token in tokens:
            if self.ledger.key_for_token(token) is None:
                claimed = spooled_claim(spool_dir, token)
                if claimed is not None:
                    log.warning("%s was in the spool but not in the ledger; sending it on",
                                claimed.relpath)
                    self(claimed)
                    recovered += 1
        self.flush()
        return recovered

    def recover(self, spooled: list[Claimed]) -> None:
        """Send on spool files that were claimed but never recorded; drop those already finished."""
        for claimed in spooled:
            key = self.ledger.key_for_token(claimed.token)
            record = self.ledger.get(key) if key else None
            if record is None:
                log.info("recovering %s from the spool", claimed.relpath)
                self(claimed)
            elif record["status"] in TERMINAL and not record.get("outdir"):
                # Its end never reached the outbox (earlier versions failed a document when
                # the outbox could not be written): the spool holds its only copy; run it again.
                if self.ledger.reopen(str(key)):
                    log.warning("%s ended %s without an outbox folder; processing it again",
                                claimed.relpath, record["status"])
                    self.resend(record)
            elif record["status"] in TERMINAL:
                claimed.spool_path.unlink(missing_ok=True)
                claimed.spool_path.with_suffix(".claim.json").unlink(missing_ok=True)
        self.flush()


def written_after_claim(job: Job) -> bool:
    """Return True when a spooled file's size or mtime changed since its claim."""
    if job.keep_source or not job.claimed_mtime_ns:
        return False
    try:
        now = os.stat(job.source_path)
    except OSError:
        return False
    return now.st_size != job.source.bytes or now.st_mtime_ns != job.claimed_mtime_ns


def _age_seconds(token: str, now_ns: int) -> float:
    made = token_ns(token)
    return float("inf") if made is None else (now_ns - made) / 1e9
