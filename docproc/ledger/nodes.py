"""Worker nodes in Redis: heartbeats, the documents each holds, suspects, task-run counts."""

from __future__ import annotations

import json

from docproc.ledger import keyspace
from docproc.ledger.store import RedisStore


class RedisNodes(RedisStore):
    """Which worker nodes live, what they hold, and which documents look orphaned."""

    def heartbeat(self, node: str, held: list[str], ttl: float) -> None:
        """Say that a worker node is alive and which documents it holds."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(keyspace.node(node), json.dumps(held), px=int(ttl * 1000))
        pipe.sadd(keyspace.NODES, node)
        pipe.execute()

    def vanished_nodes(self) -> set[str]:
        """Return the worker nodes that beat once and beat no longer."""
        known = self.redis.smembers(keyspace.NODES)
        if not known:
            return set()
        pipe = self.redis.pipeline(transaction=False)
        for node in known:
            pipe.exists(keyspace.node(node))
        return {node for node, alive in zip(known, pipe.execute(), strict=True) if not alive}

    def forget_nodes(self, nodes: set[str]) -> None:
        """Stop remembering worker nodes whose documents were taken care of."""
        if nodes:
            self.redis.srem(keyspace.NODES, *nodes)

    def held_by_live_nodes(self) -> dict[str, str]:
        """Return {document key: node} for every document a live worker node holds."""
        return {key: node for node, keys in self.live_nodes().items() for key in keys}

    def live_nodes(self) -> dict[str, list[str]]:
        """Return {worker node: keys of the documents it holds} of every node beating now."""
        # The set of nodes that ever beat keeps this independent of the keyspace's size.
        nodes = sorted(self.redis.smembers(keyspace.NODES))
        if not nodes:
            return {}
        values = self.redis.mget([keyspace.node(node) for node in nodes])
        return {node: list(json.loads(value))
                for node, value in zip(nodes, values, strict=True) if value is not None}

    def suspects(self) -> dict[str, float]:
        """Return {document key: since when} for documents that looked orphaned."""
        raw = self.redis.hgetall(keyspace.SUSPECTS)
        return {key: float(since) for key, since in raw.items()}

    def mark_suspect(self, key: str, now: float) -> None:
        """Note that a document looks orphaned."""
        self.redis.hsetnx(keyspace.SUSPECTS, key, now)

    def clear_suspect(self, key: str) -> None:
        """Forget that a document looked orphaned."""
        self.redis.hdel(keyspace.SUSPECTS, key)

    def count_run(self, delivery: str, seconds: float) -> int:
        """Count one more start of a task message; above 1, an earlier run of it was cut off."""
        name = keyspace.task_run(delivery)
        pipe = self.redis.pipeline(transaction=False)
        pipe.incr(name)
        pipe.expire(name, int(seconds))
        runs, _ = pipe.execute()
        return int(runs)

    def server_run_id(self) -> str:
        """Return the id of the Redis server's current run: it changes when it restarts."""
        return str(self.redis.info("server").get("run_id", ""))
