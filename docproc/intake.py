"""Intake: record a claimed file in the ledger and send it through the stages."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from docproc.ledger import TERMINAL, Ledger, Receipt
from docproc.settings import Settings
from docproc.stages import Job, new_job
from docproc.watcher import Claimed

log = logging.getLogger("docproc.intake")


class Intake:
    """Turn claimed files into queued jobs, once each, whatever is retried."""

    def __init__(self, settings: Settings, ledger: Ledger, send: Callable[[Job], None]) -> None:
        self.settings = settings
        self.ledger = ledger
        self.send = send

    def __call__(self, claimed: Claimed) -> None:
        """Record the claimed file (unless a retry already did) and send its job."""
        key = self.ledger.key_for_token(claimed.token)
        record = self.ledger.get(key) if key else None
        if record is None:
            receipt = self.ledger.record(claimed)
        else:
            receipt = Receipt(record["key"], record.get("duplicate_of") or None)
        work_dir = self.settings.spool_dir / f"{claimed.token}.work"
        self.send(new_job(claimed, receipt, claimed.spool_path, work_dir))

    def job_for(self, record: dict[str, Any]) -> Job:
        """Rebuild a recorded document's job, to send it again from its first stage."""
        token = record["token"]
        claimed = Claimed(
            token=token,
            spool_path=self.settings.spool_dir / f"{token}.data",
            name=os.fsdecode(bytes.fromhex(record["raw_name"])),
            relpath=record["relpath"],
            bytes=record["bytes"],
            sha256=record["sha256"],
            received_at=record["received_at"],
        )
        receipt = Receipt(record["key"], record.get("duplicate_of") or None)
        work_dir = self.settings.spool_dir / f"{token}.work"
        return new_job(claimed, receipt, claimed.spool_path, work_dir,
                       received_ts=record.get("received_ts"))

    def resend(self, record: dict[str, Any]) -> None:
        """Send a recorded document through its stages again."""
        self.send(self.job_for(record))

    def recover(self, spooled: list[Claimed]) -> None:
        """Send on spool files that were claimed but never recorded; drop those already finished."""
        for claimed in spooled:
            key = self.ledger.key_for_token(claimed.token)
            record = self.ledger.get(key) if key else None
            if record is None:
                log.info("recovering %s from the spool", claimed.relpath)
                self(claimed)
            elif record["status"] in TERMINAL:
                claimed.spool_path.unlink(missing_ok=True)
                claimed.spool_path.with_suffix(".claim.json").unlink(missing_ok=True)
