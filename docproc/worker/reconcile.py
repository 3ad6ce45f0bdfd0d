"""Recovery: send documents again that no live worker holds and no queue carries.

Celery on Redis redelivers a dead worker's unacknowledged tasks only after the
visibility timeout (an hour). Instead, each worker node publishes every second
which documents it holds (reserved or running) under a key that expires in a few
seconds. A document that is not finished, not held by a live node and not waiting
in the queue, for two passes in a row, is sent again from its first stage; tasks
are idempotent by document key, so a late redelivery of the old task does no harm.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import Celery

from docproc import queues
from docproc.ledger.keyspace import LAST_FULL_PASS_NOTE, SERVER_RUN_ID_NOTE
from docproc.ledger.redis_ledger import RedisLedger
from docproc.model import State

log = logging.getLogger("docproc.reconcile")

RECONCILE_SECONDS = 3.0
# A document whose record changed this recently is on its way; leave it alone.
QUIET_SECONDS = 4.0
# Without a view of the queue (AMQP, whose broker redelivers a dead consumer's tasks itself),
# only running documents quiet for this long are suspected.
BLIND_QUIET_SECONDS = 120.0
# A suspect must still look orphaned this long later (a heartbeat may lag by one period).
CONFIRM_SECONDS = 2.5
# Full passes read every unfinished document, which costs seconds at a backlog of 100,000.
# They run when a worker node vanished, the broker restarted, a pass found suspects, or
# this long after the last one (a hard time limit ends a task without any of those signs).
FULL_PASS_SECONDS = 60.0


@dataclass(frozen=True)
class Outcome:
    """What one reconcile pass did."""

    resent: list[str]
    failed: list[str]


def queued_keys(client: Any, queue: str) -> set[str]:
    """Return the keys of documents whose next task waits in a Redis-backed Celery queue."""
    keys: set[str] = set()
    for raw in client.lrange(queue, 0, -1):
        keys.update(_document_keys(raw))
    return keys


def queued_documents(app: Celery, broker: str, client: Any) -> set[str] | None:
    """Return the keys of documents waiting in the document queues; None when none can be seen."""
    if not broker.startswith("amqp"):
        return set().union(*(queued_keys(client, queue) for queue in queues.DOCUMENT_QUEUES))
    # RabbitMQ cannot list its queues; empty ones at least say that nothing waits.
    with app.connection_for_write() as connection:
        for queue in queues.DOCUMENT_QUEUES:
            _, waiting, _ = connection.default_channel.queue_declare(queue, passive=True)
            if waiting:
                return None
    return set()


def _document_keys(raw: str | bytes) -> list[str]:
    """Return the document keys a stage task message carries (its first argument: the jobs)."""
    try:
        message = json.loads(raw)
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        jobs = json.loads(body)[0][0]
        return [str(job["key"]) for job in jobs]
    except (ValueError, KeyError, IndexError, TypeError):
        return []


class Reconciler:
    """Find orphaned documents and send them again, or fail them after too many recoveries."""

    def __init__(
        self,
        ledger: RedisLedger,
        resend: Callable[[dict[str, Any]], None],
        give_up: Callable[[dict[str, Any], str], None],
        max_recoveries: int,
        held: Callable[[], set[str]] = set,
    ) -> None:
        self.ledger = ledger
        self.resend = resend
        self.give_up = give_up
        self.max_recoveries = max_recoveries
        self.held = held

    def due(self, now: float) -> str | None:
        """Return why a full pass is due now, or None."""
        if self.ledger.vanished_nodes():
            return "a worker node stopped beating"
        if self.ledger.note(SERVER_RUN_ID_NOTE) != self.ledger.server_run_id():
            return "the broker restarted"
        if self.ledger.suspects():
            return "documents look orphaned"
        if now - float(self.ledger.note(LAST_FULL_PASS_NOTE) or 0) > FULL_PASS_SECONDS:
            return "the periodic check"
        return None

    def run_if_due(self, queued: Callable[[], set[str] | None], now: float | None = None
                   ) -> Outcome | None:
        """Run a full pass when one is due; queued gives the keys waiting in the queue."""
        now = time.time() if now is None else now
        reason = self.due(now)
        if reason is None:
            return None
        log.debug("reconciling: %s", reason)
        vanished = self.ledger.vanished_nodes()
        run_id = self.ledger.server_run_id()
        outcome = self.run_once(queued(), now)
        self.ledger.forget_nodes(vanished)
        self.ledger.note(SERVER_RUN_ID_NOTE, run_id)
        self.ledger.note(LAST_FULL_PASS_NOTE, str(now))
        return outcome

    def run_once(self, queued: set[str] | None, now: float | None = None) -> Outcome:
        """Run one pass; queued is None when the queue cannot be seen."""
        now = time.time() if now is None else now
        held = self.ledger.held_by_live_nodes()
        # Documents held for the outbox wait in their own line, not in a worker or queue.
        waiting_for_outbox = self.held()
        suspects = self.ledger.suspects()
        quiet = QUIET_SECONDS if queued is not None else BLIND_QUIET_SECONDS
        outcome = Outcome([], [])
        for record in self.ledger.active():
            key = record["key"]
            if queued is None and record.get("status") == State.QUEUED:
                continue  # it may be waiting in a queue we cannot see
            if key in held or key in waiting_for_outbox or (queued is not None and key in queued):
                if key in suspects:
                    self.ledger.clear_suspect(key)
                continue
            if now - record.get("updated_ts", now) < quiet:
                # Too recent to judge, yet neither held nor queued: on its way, or its worker
                # died moments ago. As a suspect it keeps the next pass due; otherwise, with
                # the vanished node forgotten (or one killed before its first heartbeat), the
                # next pass would be the periodic one, a minute later.
                if queued is not None and key not in suspects:
                    self.ledger.mark_suspect(key, now)
                elif queued is None and key in suspects:
                    self.ledger.clear_suspect(key)
                continue
            if key not in suspects:
                self.ledger.mark_suspect(key, now)
                continue
            if now - suspects[key] < CONFIRM_SECONDS:
                continue
            recoveries = self.ledger.requeued(key)
            where = f"{record.get('stage')} on {record.get('worker') or 'no worker'}"
            if recoveries > self.max_recoveries:
                reason = (f"its worker died or was killed {recoveries - 1} times ({where}); "
                          "the file may exceed workers.task_time_limit or "
                          "workers.max_memory_per_child_mb")
                log.error("%s failed: %s", key, reason)
                self.give_up(record, reason)
                outcome.failed.append(key)
            else:
                log.warning("%s: no live worker holds it (%s); sending it again", key, where)
                self.resend(record)
                outcome.resent.append(key)
        return outcome
