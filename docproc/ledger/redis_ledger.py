"""The ledger kept in Redis: every part of it on one client."""

from __future__ import annotations

from docproc.ledger import keyspace
from docproc.ledger.bookkeeping import RedisBookkeeping
from docproc.ledger.nodes import RedisNodes
from docproc.ledger.paging import RedisPaging
from docproc.ledger.records import RedisRecords
from docproc.ledger.retention import RedisRetention
from docproc.ledger.statistics import RedisStatistics
from docproc.model import COUNTED, State


class RedisLedger(RedisRecords, RedisPaging, RedisNodes, RedisStatistics, RedisRetention,
                  RedisBookkeeping):
    """Document records, worker nodes, statistics and bookkeeping in one Redis server."""

    def counts(self) -> dict[str, int]:
        """Return how many documents are in each state: running means a live worker holds it.

        Cheap at any backlog: finished counts are kept exactly, the unfinished are counted
        by the active index and the live workers' heartbeats.
        """
        finished = self.redis.hgetall(keyspace.COUNTS)
        counts = {str(state): int(finished.get(state, 0)) for state in COUNTED}
        active = int(self.redis.zcard(keyspace.ACTIVE))
        counts[State.RUNNING] = min(active, len(self.held_by_live_nodes()))
        counts[State.QUEUED] = active - counts[State.RUNNING]
        return counts

    def state_counts(self) -> dict[str, int]:
        """Return how many documents are in each state, retried ones included."""
        counts = self.counts()
        counts[str(State.RETRIED)] = int(self.redis.hget(keyspace.COUNTS, State.RETRIED) or 0)
        return counts
