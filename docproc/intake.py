"""Intake: record a claimed file in the ledger and send it through the stages."""

from __future__ import annotations

import logging
from collections.abc import Callable

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
