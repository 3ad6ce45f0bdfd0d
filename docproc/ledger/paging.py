"""Reading documents newest first, a page at a time, filtered by status and receipt time."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from docproc.ledger import keyspace
from docproc.ledger.store import RedisStore
from docproc.model import State


def make_cursor(score: float, key: str) -> str:
    """Return the opaque page cursor after a document."""
    return f"{score!r}_{key}"


def parse_cursor(cursor: str) -> tuple[float, str]:
    """Return (receipt time, key) from a page cursor; raise ValueError when it is not one.

    A bare receipt time (what earlier versions gave) has no key: the page starts before it.
    """
    score, _, key = cursor.partition("_")
    value = float(score)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"not a cursor: {cursor!r}")
    return value, key


class RedisPaging(RedisStore):
    """Pages over the time index of every document, or of the failed ones."""

    def recent(self, limit: int = 50, before: float | None = None) -> list[dict[str, Any]]:
        """Return up to limit documents, newest first, received before a timestamp."""
        upper: float | str = "+inf" if before is None else f"({before}"
        keys = self.redis.zrevrangebyscore(keyspace.DOCS, upper, "-inf", start=0, num=limit)
        return [record for record in self.get_many(keys) if record is not None]

    def page(
        self, statuses: Collection[str] = (), since: float | None = None, limit: int = 50,
        cursor: str | None = None, scan_limit: int = 5000,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Return documents newest first, filtered by status and receipt time, and a next cursor.

        A filtered page holds fewer than limit documents when scan_limit records were read
        without filling it; the cursor then goes on from the last record read. Failed
        documents have an index of their own, so listing them reads no other record.
        """
        docs = keyspace.FAILED if set(statuses) == {State.FAILED} else keyspace.DOCS
        lower: float | str = "-inf" if since is None else since
        upper: float | str = "+inf"
        skip = 0
        if cursor is not None:
            score, after = parse_cursor(cursor)
            if after:
                # Members with equal scores come in reverse key order: skip up to the cursor's.
                upper = score
                ties = self.redis.zrevrangebyscore(docs, score, score)
                skip = sum(1 for key in ties if key >= after)
            else:
                upper = f"({score!r}"
        chunk = limit if not statuses else min(500, max(4 * limit, 100))
        found: list[dict[str, Any]] = []
        scanned = 0
        last: tuple[float, str] | None = None
        while len(found) < limit and scanned < scan_limit:
            entries = self.redis.zrevrangebyscore(docs, upper, lower, start=skip + scanned,
                                                  num=chunk, withscores=True)
            if not entries:
                return found, None
            records = self.get_many([key for key, _ in entries])
            for (key, score), record in zip(entries, records, strict=True):
                scanned += 1
                last = (float(score), str(key))
                if record is not None and (not statuses or record.get("status") in statuses):
                    found.append(record)
                    if len(found) == limit:
                        break
        more = self.redis.zrevrangebyscore(docs, upper, lower, start=skip + scanned, num=1)
        return found, (make_cursor(*last) if more and last else None)
