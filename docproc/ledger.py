"""The ledger: every received document, its state, stage and worker, kept in Redis."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from docproc.model import name_to_hex, printable

PREFIX = "docproc:"
# A retried document stays as a record of its first attempt; its new receipt goes on.
TERMINAL = frozenset({"done", "failed", "duplicate", "retried"})
STATES = ("queued", "running", "done", "failed", "duplicate")
Fields = dict[str | bytes, bytes | float | int | str]


@dataclass(frozen=True)
class Receipt:
    """What the ledger assigned to a claimed file: its key and the document it repeats, if any."""

    key: str
    duplicate_of: str | None


@dataclass(frozen=True)
class Ending:
    """How a document ended: what the ledger records once it is finished."""

    key: str
    status: str
    outdir: str
    error_type: str | None
    stages: str = ""  # JSON of the stage times
    kind: str = ""


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
    @property
    def mtime_ns(self) -> int: ...
    @property
    def incomplete(self) -> str | None: ...


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
if status == 'done' or status == 'failed' or status == 'duplicate' or status == 'retried' then
  return 1
end
redis.call('HSET', KEYS[1], 'status', 'running', 'stage', ARGV[1], 'worker', ARGV[2],
           'updated_ts', ARGV[4])
if ARGV[3] ~= '{}' then redis.call('HSET', KEYS[1], 'stages', ARGV[3]) end
return 0
"""
# Upper bounds (seconds) of the duration histograms kept in Redis; the last bucket is +Inf.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    120.0, 300.0, 900.0, 3600.0)
# Per-minute throughput buckets live this long (the status page charts the last hour).
MINUTE_TTL_SECONDS = 7200
# Record the end state once: terminal counts, metrics counters and histograms stay exact
# whatever is redelivered, and add up across every worker process and machine.
FINISH_LUA = """
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'done' or status == 'failed' or status == 'duplicate' or status == 'retried' then
  return 0
end
local prefix, key = ARGV[1], ARGV[2]
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'stage', ARGV[3], 'outdir', ARGV[4],
           'error_type', ARGV[5], 'finished_ts', ARGV[6], 'updated_ts', ARGV[6])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'stages', ARGV[7]) end
redis.call('ZREM', prefix .. 'active', key)
redis.call('HDEL', prefix .. 'suspects', key)
redis.call('HINCRBY', prefix .. 'counts', ARGV[3], 1)
local received = tonumber(redis.call('HGET', KEYS[1], 'received_ts') or '')
if ARGV[3] == 'failed' then redis.call('ZADD', prefix .. 'failed', received or 0, key) end
local now = tonumber(ARGV[6])
local kind = ARGV[8]
if kind == nil or kind == '' then kind = 'unknown' end
if ARGV[5] ~= '' then kind = kind .. '|' .. ARGV[5] end
redis.call('HINCRBY', prefix .. 'm:finished', ARGV[3] .. '|' .. kind, 1)
local minute = prefix .. 'm:minute:' .. string.format('%d', math.floor(now / 60))
redis.call('HINCRBY', minute, ARGV[3], 1)
redis.call('EXPIRE', minute, ARGV[9])
local bounds = cjson.decode(ARGV[10])
local histograms = prefix .. 'm:seconds'
local function observe(name, seconds)
  local slot = #bounds + 1
  for i = 1, #bounds do
    if seconds <= bounds[i] then slot = i; break end
  end
  redis.call('HINCRBY', histograms, name .. ':' .. slot, 1)
  redis.call('HINCRBYFLOAT', histograms, name .. ':sum', string.format('%.6f', seconds))
  redis.call('HINCRBY', histograms, name .. ':count', 1)
end
if received then observe('document', math.max(0, now - received)) end
if ARGV[7] ~= '' then
  local ok, stages = pcall(cjson.decode, ARGV[7])
  if ok and type(stages) == 'table' then
    for stage, times in pairs(stages) do
      if type(times) == 'table' and tonumber(times.started) and tonumber(times.ended) then
        local seconds = math.max(0, tonumber(times.ended) - tonumber(times.started))
        observe('stage:' .. stage, seconds)
        redis.call('HINCRBYFLOAT', minute, stage .. ':sum', string.format('%.6f', seconds))
        redis.call('HINCRBY', minute, stage .. ':n', 1)
        if stage == 'detect' and received then
          observe('wait', math.max(0, tonumber(times.started) - received))
        end
      end
    end
  end
end
return 1
"""
# Mark a failed document retried, once: it leaves the failed count, and its content no longer
# points to it, so that the copy sent again is processed instead of becoming its duplicate.
RETRY_LUA = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'failed' then return status or '' end
local prefix, key, now = ARGV[1], ARGV[2], ARGV[3]
redis.call('HSET', KEYS[1], 'status', 'retried', 'stage', 'retried', 'retried_ts', now,
           'updated_ts', now)
redis.call('HINCRBY', prefix .. 'counts', 'failed', -1)
redis.call('HINCRBY', prefix .. 'counts', 'retried', 1)
redis.call('ZREM', prefix .. 'failed', key)
local sha = redis.call('HGET', KEYS[1], 'sha256')
if sha then
  local content = prefix .. 'sha:' .. sha
  if redis.call('GET', content) == key then redis.call('DEL', content) end
end
return 'retried'
"""
# Undo RETRY_LUA when the document could not be sent again after all.
UNRETRY_LUA = """
if redis.call('HGET', KEYS[1], 'status') ~= 'retried' then return 0 end
local prefix, key = ARGV[1], ARGV[2]
redis.call('HSET', KEYS[1], 'status', 'failed', 'stage', 'failed')
redis.call('HDEL', KEYS[1], 'retried_ts')
redis.call('HINCRBY', prefix .. 'counts', 'failed', 1)
redis.call('HINCRBY', prefix .. 'counts', 'retried', -1)
local received = tonumber(redis.call('HGET', KEYS[1], 'received_ts') or '0') or 0
redis.call('ZADD', prefix .. 'failed', received, key)
local sha = redis.call('HGET', KEYS[1], 'sha256')
if sha then redis.call('SET', prefix .. 'sha:' .. sha, key, 'NX') end
return 1
"""
# Reopen a document recorded as ended but whose end never reached the outbox (no outdir):
# earlier versions failed documents so when the outbox could not be written. It is active
# and queued again, out of the terminal counts; 1 when it was reopened.
REOPEN_LUA = """
local prefix, key, now = ARGV[1], ARGV[2], ARGV[3]
local fields = redis.call('HMGET', KEYS[1], 'status', 'outdir', 'received_ts')
local status, outdir = fields[1], fields[2]
if not (status == 'done' or status == 'failed' or status == 'duplicate') then return 0 end
if outdir and outdir ~= '' then return 0 end
redis.call('HINCRBY', prefix .. 'counts', status, -1)
redis.call('ZREM', prefix .. 'failed', key)
redis.call('HSET', KEYS[1], 'status', 'queued', 'stage', 'queued', 'worker', '',
           'stages', '{}', 'updated_ts', now)
redis.call('HDEL', KEYS[1], 'error_type', 'finished_ts', 'outdir')
redis.call('ZADD', prefix .. 'active', tonumber(fields[3]) or tonumber(now), key)
return 1
"""


def _now() -> float:
    return round(time.time(), 3)


class Ledger:
    """Document records in Redis: a hash per document, a time index and a content index."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._scripts: dict[str, Any] = {}

    def _script(self, lua: str) -> Any:
        """Return this Lua source registered with the client (its SHA computed once)."""
        script = self._scripts.get(lua)
        if script is None:
            script = self._scripts[lua] = self.redis.register_script(lua)
        return script

    def record(self, claim: ClaimInfo) -> Receipt:
        """Record a claimed file as queued; give it a key; find an earlier copy of its content."""
        return self.record_many([claim])[0]

    def record_many(self, claims: Sequence[ClaimInfo]) -> list[Receipt]:
        """Record claimed files in one round trip; recording the same claim again is a no-op."""
        calls: list[tuple[list[str], list[Any]]] = []
        for claim in claims:
            fields = {
                "id": claim.sha256[:12], "token": claim.token, "name": printable(claim.name),
                "raw_name": name_to_hex(claim.name), "relpath": printable(claim.relpath),
                "bytes": claim.bytes, "sha256": claim.sha256, "received_at": claim.received_at,
                "status": "queued", "stage": "queued", "worker": "", "retries": 0,
                "stages": "{}", "updated_ts": _now(),
                # A string: cjson would turn a nanosecond count into a rounded float.
                "mtime_ns": str(claim.mtime_ns), "incomplete": claim.incomplete or "",
            }
            calls.append(([], [PREFIX, claim.sha256[:12], claim.sha256, claim.token, _now(),
                               json.dumps(fields)]))
        return [Receipt(str(key), str(original) or None)
                for key, original in self._run_many(self._script(RECORD_LUA), calls)]

    def start_stage_many(self, progress: dict[str, str], stage: str, worker: str) -> set[str]:
        """Mark documents running in a stage; return the keys of those already finished.

        progress maps each document key to the JSON of its stage times so far.
        """
        now = _now()
        calls = [([f"{PREFIX}doc:{key}"], [stage, worker, stages, now])
                 for key, stages in progress.items()]
        done = self._run_many(self._script(START_LUA), calls)
        return {key for key, finished in zip(progress, done, strict=True) if finished}

    def _run_many(self, script: Any, calls: Sequence[tuple[list[str], list[Any]]]) -> list[Any]:
        """Run a script once per (keys, args) in one round trip, loading it if the server lost it.

        Unlike a redis-py pipeline of Script calls, this asks no SCRIPT EXISTS first.
        """
        def execute() -> list[Any]:
            pipe = self.redis.pipeline(transaction=False)
            for keys, args in calls:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            return list(pipe.execute())

        try:
            return execute()
        except redis.exceptions.NoScriptError:
            self.redis.script_load(script.script)
            return execute()

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
        records, stale = [], []
        for key, record in zip(keys, self.get_many(keys), strict=True):
            if record is not None and record.get("status") not in TERMINAL:
                records.append(record)
            else:
                stale.append(key)
        if stale:
            self.redis.zrem(f"{PREFIX}active", *stale)
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
        return {key: node for node, keys in self.live_nodes().items() for key in keys}

    def live_nodes(self) -> dict[str, list[str]]:
        """Return {worker node: keys of the documents it holds} of every node beating now."""
        # The set of nodes that ever beat keeps this independent of the keyspace's size.
        nodes = sorted(self.redis.smembers(f"{PREFIX}nodes"))
        if not nodes:
            return {}
        values = self.redis.mget([f"{PREFIX}node:{node}" for node in nodes])
        return {node: list(json.loads(value))
                for node, value in zip(nodes, values, strict=True) if value is not None}

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

    def count_run(self, delivery: str, seconds: float) -> int:
        """Count one more start of a task message; above 1, an earlier run of it was cut off."""
        name = f"{PREFIX}run:{delivery}"
        pipe = self.redis.pipeline(transaction=False)
        pipe.incr(name)
        pipe.expire(name, int(seconds))
        runs, _ = pipe.execute()
        return int(runs)

    def lock(self, name: str, seconds: float) -> bool:
        """Take a named lock that expires by itself; return whether this caller has it."""
        return bool(self.redis.set(f"{PREFIX}lock:{name}", _now(), nx=True, px=int(seconds * 1000)))

    def finish(
        self, key: str, status: str, outdir: str, error_type: str | None, stages: str = "",
        kind: str = "",
    ) -> None:
        """Record a document's end state, where its outputs are and its metrics, once."""
        self.finish_many([Ending(key, status, outdir, error_type, stages, kind)])

    def finish_many(self, endings: Sequence[Ending]) -> None:
        """Record several documents' end states in one round trip; each once."""
        if not endings:
            return
        now, buckets = _now(), json.dumps(DURATION_BUCKETS)
        self._run_many(self._script(FINISH_LUA), [
            ([f"{PREFIX}doc:{end.key}"],
             [PREFIX, end.key, end.status, end.outdir, end.error_type or "", now, end.stages,
              end.kind, MINUTE_TTL_SECONDS, buckets])
            for end in endings
        ])

    def counts(self) -> dict[str, int]:
        """Return how many documents are in each state: running means a live worker holds it.

        Cheap at any backlog: finished counts are kept exactly, the unfinished are counted
        by the active index and the live workers' heartbeats.
        """
        finished = self.redis.hgetall(f"{PREFIX}counts")
        counts = {state: int(finished.get(state, 0)) for state in STATES}
        active = int(self.redis.zcard(f"{PREFIX}active"))
        counts["running"] = min(active, len(self.held_by_live_nodes()))
        counts["queued"] = active - counts["running"]
        return counts

    def recent(self, limit: int = 50, before: float | None = None) -> list[dict[str, Any]]:
        """Return up to limit documents, newest first, received before a timestamp."""
        upper: float | str = "+inf" if before is None else f"({before}"
        keys = self.redis.zrevrangebyscore(f"{PREFIX}docs", upper, "-inf", start=0, num=limit)
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
        docs = f"{PREFIX}failed" if set(statuses) == {"failed"} else f"{PREFIX}docs"
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

    def state_counts(self) -> dict[str, int]:
        """Return how many documents are in each state, retried ones included."""
        counts = self.counts()
        counts["retried"] = int(self.redis.hget(f"{PREFIX}counts", "retried") or 0)
        return counts

    def finished_totals(self) -> dict[tuple[str, str, str], int]:
        """Return {(status, kind, error type): documents} of every end state ever recorded."""
        totals: dict[tuple[str, str, str], int] = {}
        for field, value in self.redis.hgetall(f"{PREFIX}m:finished").items():
            status, kind, error = [*str(field).split("|", 2), "", ""][:3]
            totals[(status, kind, error)] = int(value)
        return totals

    def durations(self) -> dict[str, tuple[list[int], float, int]]:
        """Return {name: (count per bucket of DURATION_BUCKETS and +Inf, sum, count)}.

        Names are `document` (receipt to end state), `wait` (receipt to the first stage)
        and `stage:<stage>`.
        """
        found: dict[str, tuple[list[int], float, int]] = {}
        for field, value in self.redis.hgetall(f"{PREFIX}m:seconds").items():
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
            pipe.hgetall(f"{PREFIX}m:minute:{number}")
        return [(number * 60, {name: float(value) for name, value in raw.items()})
                for number, raw in zip(numbers, pipe.execute(), strict=True)]

    def oldest_active(self) -> tuple[str, float] | None:
        """Return the key and receipt time of the oldest unfinished document, if any."""
        oldest = self.redis.zrange(f"{PREFIX}active", 0, 0, withscores=True)
        return (str(oldest[0][0]), float(oldest[0][1])) if oldest else None

    def publish(self, kind: str, name: str, stats: dict[str, Any], ttl: float) -> None:
        """Publish a component's current stats under its name, for ttl seconds."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(f"{PREFIX}stats:{kind}:{name}", json.dumps(stats), px=int(ttl * 1000))
        pipe.sadd(f"{PREFIX}stats:{kind}", name)
        pipe.execute()

    def published(self, kind: str) -> dict[str, dict[str, Any]]:
        """Return {name: stats} that live components of a kind published."""
        # The set of names keeps this independent of the keyspace's size.
        names = sorted(self.redis.smembers(f"{PREFIX}stats:{kind}"))
        if not names:
            return {}
        values = self.redis.mget([f"{PREFIX}stats:{kind}:{name}" for name in names])
        gone = [name for name, value in zip(names, values, strict=True) if value is None]
        if gone:
            self.redis.srem(f"{PREFIX}stats:{kind}", *gone)
        return {name: json.loads(value)
                for name, value in zip(names, values, strict=True) if value is not None}

    def mark_retried(self, key: str) -> str:
        """Mark a failed document retried; return 'retried', or the status that prevented it."""
        retry = self._script(RETRY_LUA)
        return str(retry(keys=[f"{PREFIX}doc:{key}"], args=[PREFIX, key, _now()]))

    def unmark_retried(self, key: str) -> None:
        """Make a document failed again when sending it again did not happen."""
        self._script(UNRETRY_LUA)(keys=[f"{PREFIX}doc:{key}"], args=[PREFIX, key])

    def reopen(self, key: str) -> bool:
        """Make a document that ended without an outbox folder unfinished again, to run anew."""
        reopen = self._script(REOPEN_LUA)
        return bool(reopen(keys=[f"{PREFIX}doc:{key}"], args=[PREFIX, key, _now()]))

    def update(self, key: str, **fields: str | float) -> None:
        """Set fields of an existing document's record."""
        mapping: Fields = {name: value for name, value in fields.items()}
        if mapping:
            self.redis.hset(f"{PREFIX}doc:{key}", mapping=mapping)

    def retried_as(self, record: dict[str, Any], scan_limit: int = 2000) -> str | None:
        """Return the key of the receipt that a retried document was sent again as, once known."""
        since = float(record.get("retried_ts") or 0)
        if not since:
            return None
        keys = self.redis.zrangebyscore(f"{PREFIX}docs", since, "+inf", start=0, num=scan_limit)
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(f"{PREFIX}doc:{key}", "sha256", "relpath")
        wanted = [record.get("sha256"), record.get("retry_relpath") or record.get("relpath")]
        for key, fields in zip(keys, pipe.execute(), strict=True):
            if key != record["key"] and list(fields) == wanted:
                return str(key)
        return None

    # The daily report, retention and the one-Beat lock (issue #6).

    # Drop the token and content index entries of document `key` (token, sha) if they are its.
    _UNINDEX_LUA = """
if token and redis.call('GET', prefix .. 'token:' .. token) == key then
  redis.call('DEL', prefix .. 'token:' .. token)
end
if sha and redis.call('GET', prefix .. 'sha:' .. sha) == key then
  redis.call('DEL', prefix .. 'sha:' .. sha)
end
"""
    # Remove a finished document's records; return its status, or '' when it must stay
    # (unfinished) or is gone. Its content and sequence keys go only when nothing needs them.
    _FORGET_LUA = """
local prefix, key = ARGV[1], ARGV[2]
local doc = prefix .. 'doc:' .. key
local fields = redis.call('HMGET', doc, 'status', 'token', 'sha256', 'id')
local status, token, sha, id = fields[1], fields[2], fields[3], fields[4]
if not status then
  redis.call('ZREM', prefix .. 'docs', key)
  return ''
end
if status ~= 'done' and status ~= 'failed' and status ~= 'duplicate' and status ~= 'retried' then
  return ''
end
if redis.call('ZSCORE', prefix .. 'active', key) then return '' end
redis.call('DEL', doc)
redis.call('ZREM', prefix .. 'docs', key)
redis.call('ZREM', prefix .. 'failed', key)
redis.call('HDEL', prefix .. 'suspects', key)
redis.call('HINCRBY', prefix .. 'counts', status, -1)
""" + _UNINDEX_LUA + """if id then
  local seq = tonumber(redis.call('GET', prefix .. 'seq:' .. id) or '0')
  local used = false
  for n = 1, seq do
    local other = id
    if n > 1 then other = id .. '-' .. n end
    if redis.call('EXISTS', prefix .. 'doc:' .. other) == 1 then used = true; break end
  end
  if not used then redis.call('DEL', prefix .. 'seq:' .. id) end
end
return status
"""
    # Remove an unfinished document's records, to record its file again under a new key
    # (its content changed after the claim); 1 when removed, 0 when it had finished.
    _WITHDRAW_LUA = """
local prefix, key = ARGV[1], ARGV[2]
local doc = prefix .. 'doc:' .. key
local fields = redis.call('HMGET', doc, 'status', 'token', 'sha256')
local status, token, sha = fields[1], fields[2], fields[3]
if status == 'done' or status == 'failed' or status == 'duplicate' or status == 'retried' then
  return 0
end
redis.call('DEL', doc)
redis.call('ZREM', prefix .. 'docs', key)
redis.call('ZREM', prefix .. 'active', key)
redis.call('HDEL', prefix .. 'suspects', key)
""" + _UNINDEX_LUA + """return 1
"""
    # Take or keep a lock held by owner, extending it; 1 when owner holds it.
    _HOLD_LUA = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
    _RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

    def received_between(self, start: float, end: float) -> list[str]:
        """Return the keys of the documents received from start up to (not including) end."""
        return [str(key) for key in self.redis.zrangebyscore(f"{PREFIX}docs", start, f"({end}")]

    def count_received_between(self, start: float, end: float) -> int:
        """Return how many documents were received from start up to (not including) end."""
        return int(self.redis.zcount(f"{PREFIX}docs", start, f"({end}"))

    def received_before(self, before: float, offset: int, limit: int) -> list[tuple[str, float]]:
        """Return (key, receipt time) of documents received before a time, oldest first."""
        entries = self.redis.zrangebyscore(f"{PREFIX}docs", "-inf", f"({before}", start=offset,
                                           num=limit, withscores=True)
        return [(str(key), float(score)) for key, score in entries]

    def get_many(self, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        """Return the records of several documents in one round trip, None for those gone."""
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(f"{PREFIX}doc:{key}")
        return [_decode(raw) if raw else None for raw in pipe.execute()]

    def forget(self, keys: Sequence[str]) -> dict[str, str]:
        """Remove finished documents' records; return {key: status} of those removed.

        Unfinished documents are never removed, whatever is asked.
        """
        statuses = self._run_many(self._script(self._FORGET_LUA),
                                  [([], [PREFIX, key]) for key in keys])
        return {key: str(status) for key, status in zip(keys, statuses, strict=True) if status}

    def withdraw(self, key: str) -> bool:
        """Remove an unfinished document's records so that its file can be recorded anew."""
        return bool(self._script(self._WITHDRAW_LUA)(args=[PREFIX, key]))

    def hold_lock(self, name: str, owner: str, seconds: float) -> bool:
        """Take a named lock for owner, or extend it when owner has it; return whether it does."""
        hold = self._script(self._HOLD_LUA)
        return bool(hold(keys=[f"{PREFIX}lock:{name}"], args=[owner, int(seconds * 1000)]))

    def release_lock(self, name: str, owner: str) -> None:
        """Release a named lock if owner holds it."""
        self._script(self._RELEASE_LUA)(keys=[f"{PREFIX}lock:{name}"], args=[owner])

    def lock_holder(self, name: str) -> str | None:
        """Return who holds a named lock, if anyone."""
        value = self.redis.get(f"{PREFIX}lock:{name}")
        return None if value is None else str(value)

    def keep(self, name: str, fields: dict[str, str], seconds: float) -> None:
        """Keep a small hash of bookkeeping for a while."""
        pipe = self.redis.pipeline()
        pipe.hset(f"{PREFIX}{name}", mapping=fields)  # type: ignore[arg-type]
        pipe.expire(f"{PREFIX}{name}", int(seconds))
        pipe.execute()

    def kept(self, name: str) -> dict[str, str]:
        """Return a hash kept with `keep`, empty once it expired."""
        return {str(k): str(v) for k, v in self.redis.hgetall(f"{PREFIX}{name}").items()}


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
        self, key: str, status: str, outdir: str, error_type: str | None, stages: str = "",
        kind: str = "",
    ) -> None:
        self.docs[key].update(status=status, stage=status, outdir=outdir)

    def finish_many(self, endings: Sequence[Ending]) -> None:
        for end in endings:
            self.finish(end.key, end.status, end.outdir, end.error_type)

    def counts(self) -> dict[str, int]:
        statuses = [record["status"] for record in self.docs.values()]
        return {state: statuses.count(state) for state in STATES}
