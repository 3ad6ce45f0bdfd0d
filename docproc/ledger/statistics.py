"""Statistics in Redis: end-state totals, duration histograms, minutes, published stats."""

from __future__ import annotations

import json
import time
from typing import Any

from docproc.ledger import keyspace
from docproc.ledger.model import DURATION_BUCKETS, MINUTE_TTL_SECONDS, now
from docproc.ledger.store import RedisStore


class RedisStatistics(RedisStore):
    """What finish.lua adds up, and what live components publish of themselves."""

    def finished_totals(self) -> dict[tuple[str, str, str], int]:
        """Return {(status, kind, error type): documents} of every end state ever recorded."""
        totals: dict[tuple[str, str, str], int] = {}
        for field, value in self.redis.hgetall(keyspace.FINISHED).items():
            status, kind, error = [*str(field).split("|", 2), "", ""][:3]
            totals[(status, kind, error)] = int(value)
        return totals

    def durations(self) -> dict[str, tuple[list[int], float, int]]:
        """Return {name: (count per bucket of DURATION_BUCKETS and +Inf, sum, count)}.

        Names are `document` (receipt to end state), `wait` (receipt to the first stage)
        and `stage:<stage>`.
        """
        found: dict[str, tuple[list[int], float, int]] = {}
        for field, value in self.redis.hgetall(keyspace.SECONDS).items():
            name, _, part = str(field).rpartition(":")
            buckets, total, count = found.get(name, ([0] * (len(DURATION_BUCKETS) + 1), 0.0, 0))
            if part == "sum":
                total = float(value)
            elif part == "count":
                count = int(value)
            elif part.isdigit() and 1 <= int(part) <= len(buckets):
                buckets[int(part) - 1] = int(value)
            found[name] = (buckets, total, count)
        return found

    def minutes(self, count: int, now: float | None = None) -> list[tuple[int, dict[str, float]]]:
        """Return the last count minutes, oldest first: (minute start, what finished in it)."""
        current = int((time.time() if now is None else now) // 60)
        numbers = list(range(current - count + 1, current + 1))
        pipe = self.redis.pipeline(transaction=False)
        for number in numbers:
            pipe.hgetall(keyspace.minute(number))
        return [(number * 60, {name: float(value) for name, value in raw.items()})
                for number, raw in zip(numbers, pipe.execute(), strict=True)]

    def count_ocr_pages(self, key: str, pages: int, done: int, total: int) -> None:
        """Add pages a worker read by OCR to the totals; record the document's pages done."""
        number = int(time.time() // 60)
        pipe = self.redis.pipeline(transaction=False)
        if pages:
            pipe.incrby(keyspace.OCR_PAGES, pages)
            pipe.incrby(keyspace.ocr_minute(number), pages)
            pipe.expire(keyspace.ocr_minute(number), MINUTE_TTL_SECONDS)
        pipe.hset(keyspace.doc(key), mapping={"ocr_done": done, "ocr_total": total,
                                              "updated_ts": now()})
        pipe.execute()

    def ocr_pages(self, minutes: int = 5) -> tuple[int, float]:
        """Return the pages ever read by OCR and the pages per minute of the last minutes."""
        clock = time.time()
        current = int(clock // 60)
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(keyspace.OCR_PAGES)
        for number in range(current - minutes, current + 1):
            pipe.get(keyspace.ocr_minute(number))
        total, *recent = pipe.execute()
        # The current minute counts for the part of it gone by: the first pages of a job
        # show at once, and a rate is never diluted by the seconds still to come.
        span = minutes + (clock % 60) / 60
        return int(total or 0), sum(int(value or 0) for value in recent) / span

    def oldest_active(self) -> tuple[str, float] | None:
        """Return the key and receipt time of the oldest unfinished document, if any."""
        oldest = self.redis.zrange(keyspace.ACTIVE, 0, 0, withscores=True)
        return (str(oldest[0][0]), float(oldest[0][1])) if oldest else None

    def publish(self, kind: str, name: str, stats: dict[str, Any], ttl: float) -> None:
        """Publish a component's current stats under its name, for ttl seconds."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(keyspace.published(kind, name), json.dumps(stats), px=int(ttl * 1000))
        pipe.sadd(keyspace.published_names(kind), name)
        pipe.execute()

    def published(self, kind: str) -> dict[str, dict[str, Any]]:
        """Return {name: stats} that live components of a kind published."""
        # The set of names keeps this independent of the keyspace's size.
        names = sorted(self.redis.smembers(keyspace.published_names(kind)))
        if not names:
            return {}
        values = self.redis.mget([keyspace.published(kind, name) for name in names])
        gone = [name for name, value in zip(names, values, strict=True) if value is None]
        if gone:
            self.redis.srem(keyspace.published_names(kind), *gone)
        return {name: json.loads(value)
                for name, value in zip(names, values, strict=True) if value is not None}
