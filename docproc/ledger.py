"""The ledger: every received document, its state, stage and worker, kept in Redis."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from docproc.outbox import printable

PREFIX = "docproc:"
TERMINAL = frozenset({"done", "failed", "duplicate"})
STATES = ("queued", "running", "done", "failed", "duplicate")
Fields = dict[str | bytes, bytes | float | int | str]


@dataclass(frozen=True)
class Receipt:
    """What the ledger assigned to a claimed file: its key and the document it repeats, if any."""

    key: str
    duplicate_of: str | None


class ClaimInfo(Protocol):
    """What the ledger needs of a claimed file."""

    @property
    def token(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def relpath(self) -> str: ...
    @property
    def bytes(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    @property
    def received_at(self) -> str: ...


def _now() -> float:
    return round(time.time(), 3)


class Ledger:
    """Document records in Redis: a hash per document, a time index and a content index."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def record(self, claim: ClaimInfo) -> Receipt:
        """Record a claimed file as queued; give it a key; find an earlier copy of its content."""
        doc_id = claim.sha256[:12]
        seq = int(self.redis.incr(f"{PREFIX}seq:{doc_id}"))
        key = doc_id if seq == 1 else f"{doc_id}-{seq}"
        original = self._claim_content(claim.sha256, key)
        fields: Fields = {
            "key": key, "id": doc_id, "token": claim.token, "name": printable(claim.name),
            "raw_name": os.fsencode(claim.name).hex(), "relpath": printable(claim.relpath),
            "bytes": claim.bytes, "sha256": claim.sha256,
            "received_at": claim.received_at, "received_ts": _now(), "status": "queued",
            "stage": "queued", "worker": "", "retries": 0, "stages": "{}",
            "duplicate_of": original or "", "updated_ts": _now(),
        }
        pipe = self.redis.pipeline()
        pipe.hset(f"{PREFIX}doc:{key}", mapping=fields)
        pipe.zadd(f"{PREFIX}docs", {key: fields["received_ts"]})
        pipe.zadd(f"{PREFIX}active", {key: fields["received_ts"]})
        pipe.set(f"{PREFIX}token:{claim.token}", key)
        pipe.execute()
        return Receipt(key, original)

    def _claim_content(self, sha256: str, key: str) -> str | None:
        """Make key the original of this content unless a live (not failed) copy exists."""
        content_key = f"{PREFIX}sha:{sha256}"
        for _ in range(5):
            if self.redis.set(content_key, key, nx=True):
                return None
            original = self.redis.get(content_key)
            if original is None:
                continue
            status = self.redis.hget(f"{PREFIX}doc:{original}", "status")
            if status not in (None, "failed"):
                return str(original)
            # The earlier copy failed or was purged: this one is processed afresh.
            self.redis.delete(content_key)
        return None

    def key_for_token(self, token: str) -> str | None:
        """Return the key recorded for a spool token."""
        value = self.redis.get(f"{PREFIX}token:{token}")
        return None if value is None else str(value)

    def get(self, key: str) -> dict[str, Any] | None:
        """Return a document's record, or None."""
        raw = self.redis.hgetall(f"{PREFIX}doc:{key}")
        return _decode(raw) if raw else None

    def start_stage(self, key: str, stage: str, worker: str) -> str | None:
        """Mark a document running in a stage on a worker; return its state before."""
        return self._update_stage(key, stage, "started", status="running", worker=worker)

    def active(self) -> list[dict[str, Any]]:
        """Return every document not yet done, failed or duplicate, oldest first."""
        keys = self.redis.zrange(f"{PREFIX}active", 0, -1)
        pipe = self.redis.pipeline()
        for key in keys:
            pipe.hgetall(f"{PREFIX}doc:{key}")
        records = []
        for key, raw in zip(keys, pipe.execute(), strict=True):
            if raw and raw.get("status") not in TERMINAL:
                records.append(_decode(raw))
            else:
                self.redis.zrem(f"{PREFIX}active", key)
        return records

    def heartbeat(self, node: str, held: list[str], ttl: float) -> None:
        """Say that a worker node is alive and which documents it holds."""
        self.redis.set(f"{PREFIX}node:{node}", json.dumps(held), px=int(ttl * 1000))

    def held_by_live_nodes(self) -> dict[str, str]:
        """Return {document key: node} for every document a live worker node holds."""
        held: dict[str, str] = {}
        for name in self.redis.scan_iter(f"{PREFIX}node:*", count=100):
            value = self.redis.get(name)
            if value is not None:
                node = str(name).removeprefix(f"{PREFIX}node:")
                held.update(dict.fromkeys(json.loads(value), node))
        return held

    def suspects(self) -> dict[str, float]:
        """Return {document key: since when} for documents that looked orphaned."""
        raw = self.redis.hgetall(f"{PREFIX}suspects")
        return {key: float(since) for key, since in raw.items()}

    def mark_suspect(self, key: str, now: float) -> None:
        """Note that a document looks orphaned."""
        self.redis.hsetnx(f"{PREFIX}suspects", key, now)

    def clear_suspect(self, key: str) -> None:
        """Forget that a document looked orphaned."""
        self.redis.hdel(f"{PREFIX}suspects", key)

    def requeued(self, key: str) -> int:
        """Count one more recovery of a document; return how many it has had."""
        pipe = self.redis.pipeline()
        pipe.hincrby(f"{PREFIX}doc:{key}", "recoveries", 1)
        pipe.hset(f"{PREFIX}doc:{key}", mapping={"status": "queued", "stage": "queued",
                                                "updated_ts": _now()})
        pipe.hdel(f"{PREFIX}suspects", key)
        recoveries, *_ = pipe.execute()
        return int(recoveries)

    def lock(self, name: str, seconds: float) -> bool:
        """Take a named lock that expires by itself; return whether this caller has it."""
        return bool(self.redis.set(f"{PREFIX}lock:{name}", _now(), nx=True, px=int(seconds * 1000)))

    def end_stage(self, key: str, stage: str) -> None:
        """Mark a stage of a document ended."""
        self._update_stage(key, stage, "ended")

    def _update_stage(
        self, key: str, stage: str, event: str, status: str | None = None, worker: str | None = None
    ) -> str | None:
        doc_key = f"{PREFIX}doc:{key}"
        previous, raw_stages = self.redis.hmget(doc_key, ["status", "stages"])
        if previous in TERMINAL:
            return str(previous)
        stages = json.loads(raw_stages or "{}")
        stages.setdefault(stage, {})[event] = _now()
        mapping: Fields = {"stage": stage, "stages": json.dumps(stages), "updated_ts": _now()}
        if worker is not None:
            mapping["worker"] = worker
        if status is not None:
            mapping["status"] = status
        self.redis.hset(doc_key, mapping=mapping)
        return None if previous is None else str(previous)

    def count_retry(self, key: str) -> None:
        """Count one more retry of a document."""
        self.redis.hincrby(f"{PREFIX}doc:{key}", "retries", 1)

    def finish(self, key: str, status: str, outdir: str, error_type: str | None) -> None:
        """Record a document's end state and where its outputs are."""
        doc_key = f"{PREFIX}doc:{key}"
        previous = self.redis.hget(doc_key, "status")
        if previous in TERMINAL:
            return
        pipe = self.redis.pipeline()
        pipe.hset(doc_key, mapping={
            "status": status, "stage": status, "outdir": outdir,
            "error_type": error_type or "", "finished_ts": _now(), "updated_ts": _now(),
        })
        pipe.zrem(f"{PREFIX}active", key)
        pipe.hdel(f"{PREFIX}suspects", key)
        pipe.hincrby(f"{PREFIX}counts", status, 1)
        pipe.execute()

    def counts(self) -> dict[str, int]:
        """Return how many documents are in each state."""
        finished = self.redis.hgetall(f"{PREFIX}counts")
        counts = {state: int(finished.get(state, 0)) for state in STATES}
        keys = self.redis.zrange(f"{PREFIX}active", 0, -1)
        pipe = self.redis.pipeline()
        for key in keys:
            pipe.hget(f"{PREFIX}doc:{key}", "status")
        for status in pipe.execute():
            if status in ("queued", "running"):
                counts[status] += 1
        return counts

    def recent(self, limit: int = 50, before: float | None = None) -> list[dict[str, Any]]:
        """Return up to limit documents, newest first, received before a timestamp."""
        upper: float | str = "+inf" if before is None else f"({before}"
        keys = self.redis.zrevrangebyscore(f"{PREFIX}docs", upper, "-inf", start=0, num=limit)
        pipe = self.redis.pipeline()
        for key in keys:
            pipe.hgetall(f"{PREFIX}doc:{key}")
        return [_decode(raw) for raw in pipe.execute() if raw]


def _decode(raw: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = dict(raw)
    for name in ("bytes", "retries", "recoveries"):
        if name in record:
            record[name] = int(record[name])
    for name in ("received_ts", "updated_ts", "finished_ts"):
        if record.get(name):
            record[name] = float(record[name])
    record["stages"] = json.loads(record.get("stages") or "{}")
    return record


class MemoryLedger(Ledger):
    """A ledger in this process only, for `docproc process` (no broker)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.docs: dict[str, dict[str, Any]] = {}
        self.originals: dict[str, str] = {}

    def record(self, claim: ClaimInfo) -> Receipt:
        with self._lock:
            doc_id = claim.sha256[:12]
            seq = sum(1 for record in self.docs.values() if record["id"] == doc_id) + 1
            key = doc_id if seq == 1 else f"{doc_id}-{seq}"
            original = self.originals.get(claim.sha256)
            if original is not None and self.docs[original]["status"] == "failed":
                original = None
            if original is None:
                self.originals[claim.sha256] = key
            self.docs[key] = {
                "key": key, "id": doc_id, "status": "queued", "stages": {},
                "duplicate_of": original or "", "name": claim.name,
            }
            return Receipt(key, original)

    def get(self, key: str) -> dict[str, Any] | None:
        return self.docs.get(key)

    def start_stage(self, key: str, stage: str, worker: str) -> str | None:
        previous = self.docs[key]["status"]
        self.docs[key].update(status="running", stage=stage, worker=worker)
        return str(previous)

    def end_stage(self, key: str, stage: str) -> None:
        pass

    def count_retry(self, key: str) -> None:
        pass

    def finish(self, key: str, status: str, outdir: str, error_type: str | None) -> None:
        self.docs[key].update(status=status, stage=status, outdir=outdir)

    def counts(self) -> dict[str, int]:
        statuses = [record["status"] for record in self.docs.values()]
        return {state: statuses.count(state) for state in STATES}
