"""Retention in Redis: reading documents by receipt time, forgetting and withdrawing them."""

from __future__ import annotations

from collections.abc import Sequence

from docproc.ledger import keyspace, scripts
from docproc.ledger.keyspace import PREFIX
from docproc.ledger.store import RedisStore


class RedisRetention(RedisStore):
    """The receipt-time index read for reports and purges, and the removal of records."""

    def received_between(self, start: float, end: float) -> list[str]:
        """Return the keys of the documents received from start up to (not including) end."""
        return [str(key) for key in self.redis.zrangebyscore(keyspace.DOCS, start, f"({end}")]

    def count_received_between(self, start: float, end: float) -> int:
        """Return how many documents were received from start up to (not including) end."""
        return int(self.redis.zcount(keyspace.DOCS, start, f"({end}"))

    def received_before(self, before: float, offset: int, limit: int) -> list[tuple[str, float]]:
        """Return (key, receipt time) of documents received before a time, oldest first."""
        entries = self.redis.zrangebyscore(keyspace.DOCS, "-inf", f"({before}", start=offset,
                                           num=limit, withscores=True)
        return [(str(key), float(score)) for key, score in entries]

    def forget(self, keys: Sequence[str]) -> dict[str, str]:
        """Remove finished documents' records; return {key: status} of those removed.

        Unfinished documents are never removed, whatever is asked.
        """
        statuses = scripts.run_many(self.redis, "forget", [([], [PREFIX, key]) for key in keys])
        return {key: str(status) for key, status in zip(keys, statuses, strict=True) if status}

    def withdraw(self, key: str) -> bool:
        """Remove an unfinished document's records so that its file can be recorded anew."""
        return bool(scripts.run(self.redis, "withdraw", [], [PREFIX, key]))
