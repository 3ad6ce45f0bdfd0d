"""Documents held while the outbox or spool cannot be written: kept in order, sent on once it can.

A full disk, a share remounted read-only or an unmounted outbox is never a document's
fault. A document that meets one is held: its job waits in the ledger's Redis, in the
order the documents came, and the reconciler sends the held ones on once a probe write
succeeds again (trying with backoff meanwhile). While any are held, documents finishing
join the end of the line instead of overtaking it.

Keyspace (prefix `docproc:`):
  held          sorted set: document key -> receipt time (the order they came)
  held:jobs     hash: document key -> the job, as JSON
  held:state    hash: since (first hold of this outage), reason (latest error),
                next_try, delay (seconds of the probe's backoff)
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from docproc.ledger.keyspace import HELD, HELD_JOBS, HELD_STATE
from docproc.model import Job

log = logging.getLogger("docproc.holding")

# The errors of a place we write to, not of what we write: they hold a document.
INFRASTRUCTURE_ERRNOS = frozenset({
    errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT,
    errno.EIO, errno.ESTALE, errno.ENOTCONN, errno.EHOSTDOWN, errno.EHOSTUNREACH,
    errno.ETIMEDOUT, errno.ENODEV, errno.ENXIO,
})
FIRST_DELAY_SECONDS = 2.0
MAX_DELAY_SECONDS = 15.0
# A probe writes this much: a filesystem with less free room cannot take a document either.
PROBE_BYTES = 64 * 1024
RELEASE_BATCH = 16


def is_infrastructure(exc: BaseException) -> bool:
    """Return True when an error says a place cannot be written, not that a document is bad."""
    return isinstance(exc, OSError) and exc.errno in INFRASTRUCTURE_ERRNOS


def probe_writable(folder: Path) -> str | None:
    """Write and remove a small file in folder; return why that failed, or None."""
    probe = folder / f".docproc-probe-{secrets.token_hex(4)}"
    try:
        with open(probe, "wb") as handle:
            handle.write(bytes(PROBE_BYTES))
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        return f"{folder}: {exc.strerror or exc}"
    finally:
        with contextlib.suppress(OSError):
            probe.unlink(missing_ok=True)
    return None


@dataclass(frozen=True)
class HoldingState:
    """How many documents are held, since when, and why."""

    count: int
    since: float | None
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "since": self.since, "reason": self.reason}


class Holding:
    """The line of held documents, kept in the ledger's Redis so every process sees it."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def hold(self, jobs: Sequence[Job], reason: str | None) -> None:
        """Hold jobs in the order they were received: for reason, or (None) behind held ones."""
        if not jobs:
            return
        now = time.time()
        pipe = self.redis.pipeline()
        for job in jobs:
            job.held = None
            job.released = False
            pipe.zadd(HELD, {job.key: float(job.received_ts)})
            pipe.hset(HELD_JOBS, job.key, json.dumps(job.to_message()))
        pipe.hsetnx(HELD_STATE, "since", repr(now))
        pipe.hsetnx(HELD_STATE, "next_try", repr(now + FIRST_DELAY_SECONDS))
        pipe.hsetnx(HELD_STATE, "delay", repr(FIRST_DELAY_SECONDS))
        if reason is not None:
            pipe.hset(HELD_STATE, "reason", reason)
        pipe.execute()
        documents = f"{len(jobs)} document{'s' if len(jobs) != 1 else ''}"
        if reason is None:
            log.info("%s wait behind held ones", documents)
        else:
            log.warning("%s held: %s; held documents go on by themselves once it can be "
                        "written", documents, reason)

    def count(self) -> int:
        """Return how many documents are held."""
        return int(self.redis.zcard(HELD))

    def keys(self) -> set[str]:
        """Return the keys of every held document."""
        return {str(key) for key in self.redis.zrange(HELD, 0, -1)}

    def state(self) -> HoldingState:
        """Return how many are held, since when and why."""
        pipe = self.redis.pipeline()
        pipe.zcard(HELD)
        pipe.hmget(HELD_STATE, ["since", "reason"])
        count, (since, reason) = pipe.execute()
        if not count:
            return HoldingState(0, None, None)
        return HoldingState(int(count), float(since) if since else None,
                            str(reason) if reason else None)

    def due(self, now: float | None = None) -> bool:
        """Return True when documents are held and their next try is due."""
        now = time.time() if now is None else now
        next_try = self.redis.hget(HELD_STATE, "next_try")
        return self.count() > 0 and (next_try is None or now >= float(next_try))

    def back_off(self, reason: str, now: float | None = None) -> float:
        """Put the next try off twice as long as last time (up to a bound); return the delay."""
        now = time.time() if now is None else now
        delay = float(self.redis.hget(HELD_STATE, "delay") or FIRST_DELAY_SECONDS)
        delay = min(MAX_DELAY_SECONDS, delay * 2)
        self.redis.hset(HELD_STATE, mapping={"delay": repr(delay), "next_try": repr(now + delay),
                                             "reason": reason})
        return delay

    def take(self, limit: int) -> list[Job]:
        """Remove and return up to limit held jobs, oldest first; end the outage at the last."""
        return self._take([str(key) for key in self.redis.zrange(HELD, 0, limit - 1)])

    def _take(self, keys: list[str]) -> list[Job]:
        """Remove and return the held jobs of keys, in that order.

        Removed before they are sent: should the sender die in between, their records are
        still unfinished, and the reconciler sends them on as it does any orphan.
        """
        jobs = []
        if keys:
            pipe = self.redis.pipeline()
            pipe.hmget(HELD_JOBS, keys)
            pipe.zrem(HELD, *keys)
            pipe.hdel(HELD_JOBS, *keys)
            raw, _, _ = pipe.execute()
            for value in raw:
                if value:
                    job = Job.from_message(json.loads(value))
                    job.released = True
                    jobs.append(job)
        if not self.redis.zcard(HELD):
            self.redis.delete(HELD_STATE)
        return jobs

    def release(self, problem: Callable[[], str | None],
                send: Callable[[list[Job]], None]) -> int | None:
        """When a try is due and problem() finds none, send on the documents held now.

        Returns how many went on, or None when none was tried. Only those held when the
        probe passed go, each once: one held again meanwhile waits for the next try, so a
        probe that passes where documents do not fit never turns this into a loop.
        """
        if not self.due():
            return None
        found = problem()
        if found is not None:
            delay = self.back_off(found)
            log.info("still holding %d: %s; trying again in %g s", self.count(), found, delay)
            return None
        held = [str(key) for key in self.redis.zrange(HELD, 0, -1)]
        sent = 0
        for start in range(0, len(held), RELEASE_BATCH):
            jobs = self._take(held[start:start + RELEASE_BATCH])
            if jobs:
                send(jobs)
                sent += len(jobs)
        log.warning("the outbox can be written again: %d held documents go on", sent)
        return sent
