"""The ledger: every received document, its state, stage and worker, kept in Redis."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
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


# Record a claim once (by token): a key from the content id, and the original it repeats.
RECORD_LUA = """
local prefix, doc_id, sha, token, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local existing = redis.call('GET', prefix .. 'token:' .. token)
if existing then
  return {existing, redis.call('HGET', prefix .. 'doc:' .. existing, 'duplicate_of') or ''}
end
local seq = redis.call('INCR', prefix .. 'seq:' .. doc_id)
local key = doc_id
if seq > 1 then key = doc_id .. '-' .. seq end
local content = prefix .. 'sha:' .. sha
local original = redis.call('GET', content)
local duplicate_of = ''
if original then
  local status = redis.call('HGET', prefix .. 'doc:' .. original, 'status')
  if status and status ~= 'failed' then duplicate_of = original end
end
if duplicate_of == '' then redis.call('SET', content, key) end
local fields = cjson.decode(ARGV[6])
local doc = prefix .. 'doc:' .. key
redis.call('HSET', doc, 'key', key, 'duplicate_of', duplicate_of, 'received_ts', now)
for name, value in pairs(fields) do redis.call('HSET', doc, name, tostring(value)) end
redis.call('ZADD', prefix .. 'docs', now, key)
redis.call('ZADD', prefix .. 'active', now, key)
redis.call('SET', prefix .. 'token:' .. token, key)
return {key, duplicate_of}
"""
# Mark a stage started unless the document is finished; return 1 when it is.
START_LUA = """
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'done' or status == 'failed' or status == 'duplicate' then return 1 end
redis.call('HSET', KEYS[1], 'status', 'running', 'stage', ARGV[1], 'worker', ARGV[2],
           'updated_ts', ARGV[4])
if ARGV[3] ~= '{}' then redis.call('HSET', KEYS[1], 'stages', ARGV[3]) end
return 0
"""
# Record the end state once: terminal counts stay exact whatever is redelivered.
FINISH_LUA = """
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'done' or status == 'failed' or status == 'duplicate' then return 0 end
local prefix, key = ARGV[1], ARGV[2]
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'stage', ARGV[3], 'outdir', ARGV[4],
           'error_type', ARGV[5], 'finished_ts', ARGV[6], 'updated_ts', ARGV[6])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'stages', ARGV[7]) end
redis.call('ZREM', prefix .. 'active', key)
redis.call('HDEL', prefix .. 'suspects', key)
redis.call('HINCRBY', prefix .. 'counts', ARGV[3], 1)
return 1
"""


def _now() -> float:
    return round(time.time(), 3)


class Ledger:
    """Document records in Redis: a hash per document, a time index and a content index."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def record(self, claim: ClaimInfo) -> Receipt:
        """Record a claimed file as queued; give it a key; find an earlier copy of its content."""
        return self.record_many([claim])[0]

    def record_many(self, claims: Sequence[ClaimInfo]) -> list[Receipt]:
        """Record claimed files in one round trip; recording the same claim again is a no-op."""
        pipe = self.redis.pipeline(transaction=False)
        for claim in claims:
            fields = {
                "id": claim.sha256[:12], "token": claim.token, "name": printable(claim.name),
                "raw_name": os.fsencode(claim.name).hex(), "relpath": printable(claim.relpath),
                "bytes": claim.bytes, "sha256": claim.sha256, "received_at": claim.received_at,
                "status": "queued", "stage": "queued", "worker": "", "retries": 0,
                "stages": "{}", "updated_ts": _now(),
            }
            self._record_script(
                args=[PREFIX, claim.sha256[:12], claim.sha256, claim.token, _now(),
                      json.dumps(fields)],
                client=pipe,
            )
        return [Receipt(str(key), str(original) or None) for key, original in pipe.execute()]

    def start_stage_many(self, progress: dict[str, str], stage: str, worker: str) -> set[str]:
        """Mark documents running in a stage; return the keys of those already finished.

        progress maps each document key to the JSON of its stage times so far.
        """
        pipe = self.redis.pipeline(transaction=False)
        now = _now()
        for key, stages in progress.items():
            self._start_script(keys=[f"{PREFIX}doc:{key}"], args=[stage, worker, stages, now],
                               client=pipe)
        return {key for key, finished in zip(progress, pipe.execute(), strict=True) if finished}

    @cached_property
    def _record_script(self) -> Any:
        return self.redis.register_script(RECORD_LUA)

    @cached_property
    def _start_script(self) -> Any:
        return self.redis.register_script(START_LUA)

    @cached_property
    def _finish_script(self) -> Any:
        return self.redis.register_script(FINISH_LUA)

    def key_for_token(self, token: str) -> str | None:
        """Return the key recorded for a spool token."""
        value = self.redis.get(f"{PREFIX}token:{token}")
        return None if value is None else str(value)

    def get(self, key: str) -> dict[str, Any] | None:
        """Return a document's record, or None."""
        raw = self.redis.hgetall(f"{PREFIX}doc:{key}")
        return _decode(raw) if raw else None

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
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(f"{PREFIX}node:{node}", json.dumps(held), px=int(ttl * 1000))
        pipe.sadd(f"{PREFIX}nodes", node)
        pipe.execute()

    def vanished_nodes(self) -> set[str]:
        """Return the worker nodes that beat once and beat no longer."""
        known = self.redis.smembers(f"{PREFIX}nodes")
        if not known:
            return set()
        pipe = self.redis.pipeline(transaction=False)
        for node in known:
            pipe.exists(f"{PREFIX}node:{node}")
        return {node for node, alive in zip(known, pipe.execute(), strict=True) if not alive}

    def forget_nodes(self, nodes: set[str]) -> None:
        """Stop remembering worker nodes whose documents were taken care of."""
        if nodes:
            self.redis.srem(f"{PREFIX}nodes", *nodes)

    def server_run_id(self) -> str:
        """Return the id of the Redis server's current run: it changes when it restarts."""
        return str(self.redis.info("server").get("run_id", ""))

    def note(self, name: str, value: str | None = None) -> str | None:
        """Read a small piece of bookkeeping, or write it when a value is given."""
        if value is not None:
            self.redis.hset(f"{PREFIX}notes", name, value)
            return value
        found = self.redis.hget(f"{PREFIX}notes", name)
        return None if found is None else str(found)

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

    def finish(
        self, key: str, status: str, outdir: str, error_type: str | None, stages: str = ""
    ) -> None:
        """Record a document's end state and where its outputs are, once."""
        self._finish_script(
            keys=[f"{PREFIX}doc:{key}"],
            args=[PREFIX, key, status, outdir, error_type or "", _now(), stages],
        )

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

    def record_many(self, claims: Sequence[ClaimInfo]) -> list[Receipt]:
        return [self._record_one(claim) for claim in claims]

    def _record_one(self, claim: ClaimInfo) -> Receipt:
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

    def start_stage_many(self, progress: dict[str, str], stage: str, worker: str) -> set[str]:
        finished = set()
        for key in progress:
            if self.docs[key]["status"] in TERMINAL:
                finished.add(key)
            else:
                self.docs[key].update(status="running", stage=stage, worker=worker)
        return finished

    def finish(
        self, key: str, status: str, outdir: str, error_type: str | None, stages: str = ""
    ) -> None:
        self.docs[key].update(status=status, stage=status, outdir=outdir)

    def counts(self) -> dict[str, int]:
        statuses = [record["status"] for record in self.docs.values()]
        return {state: statuses.count(state) for state in STATES}
