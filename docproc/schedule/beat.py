"""One Beat only: a Celery Beat scheduler that sends tasks only while it holds a lock in Redis.

Every `docproc beat` ticks, but only the holder of `docproc:lock:beat` sends anything; the
others stand by and take over when the lock expires (a holder that died) or is released (a
holder that stopped). When a run is sent, its time is noted in Redis, so whichever Beat leads
next knows what already ran, runs once what was missed while none led, and starts the
catch-up of daily reports that were never built.
"""

from __future__ import annotations

import datetime
import logging
import os
import secrets
import socket
import time
from functools import cached_property
from typing import Any

from celery.beat import ScheduleEntry, Scheduler
from redis import RedisError

from docproc.broker import redis_client
from docproc.ledger.keyspace import BEAT_LOCK, last_run_note
from docproc.ledger.redis_ledger import RedisLedger

log = logging.getLogger("docproc.beat")
# A leader that stops renewing (killed, frozen, cut off) loses the lead after this long.
LOCK_SECONDS = 15.0
RENEW_SECONDS = 3.0
# How often a Beat on standby asks for the lead.
STANDBY_SECONDS = 2.0
CATCH_UP_TASK = "docproc.daily.catch_up"


class LeaderScheduler(Scheduler):
    """Celery's in-memory scheduler, sending only while this process holds the one-Beat lock."""

    def __init__(self, app: Any, *args: Any, **kwargs: Any) -> None:
        self.owner = f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"
        self.leading = False
        self._checked_at = float("-inf")
        self._unreachable = False
        self._standing_by_for: str | None = None
        kwargs["max_interval"] = min(kwargs.get("max_interval") or RENEW_SECONDS, RENEW_SECONDS)
        super().__init__(app, *args, **kwargs)

    @cached_property
    def ledger(self) -> RedisLedger:
        return RedisLedger(redis_client(self.app.settings))

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """Keep or seek the lead; run due entries only while leading."""
        self._check_lead()
        if not self.leading:
            return STANDBY_SECONDS
        return float(min(super().tick(*args, **kwargs), RENEW_SECONDS))

    def _check_lead(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < 1.0:
            return
        self._checked_at = now
        try:
            holds = self.ledger.hold_lock(BEAT_LOCK, self.owner, LOCK_SECONDS)
            holder = None if holds else self.ledger.lock_holder(BEAT_LOCK)
        except RedisError as exc:
            if not self._unreachable:
                log.warning("beat: cannot reach Redis for the Beat lock (%s); sending nothing "
                            "until it answers", exc)
            self._unreachable = True
            self.leading = False
            return
        self._unreachable = False
        if holds:
            if not self.leading:
                self.leading = True
                self._take_over()
            return
        if self.leading:
            log.warning("beat: %s took the lead from this Beat", holder)
            self.leading = False
        if holder != self._standing_by_for:
            log.info("beat: %s leads the schedule; this Beat stands by", holder)
            self._standing_by_for = holder

    def _take_over(self) -> None:
        """Start from the last runs that any Beat noted, then start the daily catch-up."""
        log.info("beat: this Beat (%s) leads the schedule", self.owner)
        for name, entry in self.schedule.items():
            try:
                noted = self.ledger.note(last_run_note(name))
            except RedisError:
                noted = None
            # Each entry's own schedule tells the time, as in Celery's due checks.
            entry.last_run_at = _parse(noted) or entry.default_now()
        self._heap = None
        try:
            self.app.send_task(CATCH_UP_TASK)
        except Exception as exc:  # kombu raises transport-specific errors
            log.warning("beat: could not send the daily report catch-up: %s", exc)

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        if entry.name != "reconcile":
            log.info("beat: sending %s (%s)", entry.name, entry.task)
        super().apply_entry(entry, producer=producer)
        try:
            self.ledger.note(last_run_note(entry.name), entry.default_now().isoformat())
        except RedisError as exc:
            log.warning("beat: could not note the run of %s: %s", entry.name, exc)

    def close(self) -> None:
        """Release the lead at once, so that a Beat on standby takes over without waiting."""
        if self.leading:
            try:
                self.ledger.release_lock(BEAT_LOCK, self.owner)
            except RedisError as exc:
                log.warning("beat: could not release the Beat lock: %s", exc)
            self.leading = False
        super().close()


def _parse(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
