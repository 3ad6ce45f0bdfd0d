"""The base of the Redis ledger's parts: the client, and reading document records."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis

from docproc.ledger import keyspace


class RedisStore:
    """A part of the ledger kept in one Redis server."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def get(self, key: str) -> dict[str, Any] | None:
        """Return a document's record, or None."""
        raw = self.redis.hgetall(keyspace.doc(key))
        return decode_record(raw) if raw else None

    def get_many(self, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        """Return the records of several documents in one round trip, None for those gone."""
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(keyspace.doc(key))
        return [decode_record(raw) if raw else None for raw in pipe.execute()]


def decode_record(raw: dict[str, Any]) -> dict[str, Any]:
    """Return a document's record with its numbers and stage times parsed."""
    record: dict[str, Any] = dict(raw)
    for name in ("bytes", "retries", "recoveries"):
        if name in record:
            record[name] = int(record[name])
    for name in ("received_ts", "updated_ts", "finished_ts"):
        if record.get(name):
            record[name] = float(record[name])
    record["stages"] = json.loads(record.get("stages") or "{}")
    return record
