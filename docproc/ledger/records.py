"""Document records in Redis: recorded once, run through stages, finished once, retried."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from docproc.ledger import keyspace, scripts
from docproc.ledger.keyspace import PREFIX
from docproc.ledger.model import (
    DURATION_BUCKETS,
    MINUTE_TTL_SECONDS,
    ClaimInfo,
    Ending,
    Receipt,
    now,
)
from docproc.ledger.store import RedisStore
from docproc.model import TERMINAL, State, name_to_hex, printable

Fields = dict[str | bytes, bytes | float | int | str]


class RedisRecords(RedisStore):
    """A hash per document, a time index and a content index."""

    def record(self, claim: ClaimInfo) -> Receipt:
        """Record a claimed file as queued; give it a key; find an earlier copy of its content."""
        return self.record_many([claim])[0]

    def record_many(self, claims: Sequence[ClaimInfo]) -> list[Receipt]:
        """Record claimed files in one round trip; recording the same claim again is a no-op."""
        calls: list[scripts.Call] = []
        for claim in claims:
            fields = {
                "id": claim.sha256[:12], "token": claim.token, "name": printable(claim.name),
                "raw_name": name_to_hex(claim.name), "relpath": printable(claim.relpath),
                "bytes": claim.bytes, "sha256": claim.sha256, "received_at": claim.received_at,
                "status": State.QUEUED, "stage": State.QUEUED, "worker": "", "retries": 0,
                "stages": "{}", "updated_ts": now(),
                # A string: cjson would turn a nanosecond count into a rounded float.
                "mtime_ns": str(claim.mtime_ns), "incomplete": claim.incomplete or "",
            }
            calls.append(([], [PREFIX, claim.sha256[:12], claim.sha256, claim.token, now(),
                               json.dumps(fields)]))
        return [Receipt(str(key), str(original) or None)
                for key, original in scripts.run_many(self.redis, "record", calls)]

    def start_stage_many(self, progress: dict[str, str], stage: str, worker: str) -> set[str]:
        """Mark documents running in a stage; return the keys of those already finished.

        progress maps each document key to the JSON of its stage times so far.
        """
        started = now()
        calls = [([keyspace.doc(key)], [stage, worker, stages, started])
                 for key, stages in progress.items()]
        done = scripts.run_many(self.redis, "start", calls)
        return {key for key, finished in zip(progress, done, strict=True) if finished}

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
        ended, buckets = now(), json.dumps(DURATION_BUCKETS)
        scripts.run_many(self.redis, "finish", [
            ([keyspace.doc(end.key)],
             [PREFIX, end.key, end.status, end.outdir, end.error_type or "", ended, end.stages,
              end.kind, MINUTE_TTL_SECONDS, buckets])
            for end in endings
        ])

    def key_for_token(self, token: str) -> str | None:
        """Return the key recorded for a spool token."""
        value = self.redis.get(keyspace.token(token))
        return None if value is None else str(value)

    def active(self) -> list[dict[str, Any]]:
        """Return every document not yet done, failed or duplicate, oldest first."""
        keys = self.redis.zrange(keyspace.ACTIVE, 0, -1)
        records, stale = [], []
        for key, record in zip(keys, self.get_many(keys), strict=True):
            if record is not None and record.get("status") not in TERMINAL:
                records.append(record)
            else:
                stale.append(key)
        if stale:
            self.redis.zrem(keyspace.ACTIVE, *stale)
        return records

    def update(self, key: str, **fields: str | float) -> None:
        """Set fields of an existing document's record."""
        mapping: Fields = {name: value for name, value in fields.items()}
        if mapping:
            self.redis.hset(keyspace.doc(key), mapping=mapping)

    def requeued(self, key: str) -> int:
        """Count one more recovery of a document; return how many it has had."""
        pipe = self.redis.pipeline()
        pipe.hincrby(keyspace.doc(key), "recoveries", 1)
        pipe.hset(keyspace.doc(key), mapping={"status": State.QUEUED, "stage": State.QUEUED,
                                               "updated_ts": now()})
        pipe.hdel(keyspace.SUSPECTS, key)
        recoveries, *_ = pipe.execute()
        return int(recoveries)

    def mark_retried(self, key: str) -> str:
        """Mark a failed document retried; return 'retried', or the status that prevented it."""
        return str(scripts.run(self.redis, "retry", [keyspace.doc(key)], [PREFIX, key, now()]))

    def unmark_retried(self, key: str) -> None:
        """Make a document failed again when sending it again did not happen."""
        scripts.run(self.redis, "unretry", [keyspace.doc(key)], [PREFIX, key])

    def reopen(self, key: str) -> bool:
        """Make a document that ended without an outbox folder unfinished again, to run anew."""
        return bool(scripts.run(self.redis, "reopen", [keyspace.doc(key)], [PREFIX, key, now()]))

    def retried_as(self, record: dict[str, Any], scan_limit: int = 2000) -> str | None:
        """Return the key of the receipt that a retried document was sent again as, once known."""
        since = float(record.get("retried_ts") or 0)
        if not since:
            return None
        keys = self.redis.zrangebyscore(keyspace.DOCS, since, "+inf", start=0, num=scan_limit)
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(keyspace.doc(key), "sha256", "relpath")
        wanted = [record.get("sha256"), record.get("retry_relpath") or record.get("relpath")]
        for key, fields in zip(keys, pipe.execute(), strict=True):
            if key != record["key"] and list(fields) == wanted:
                return str(key)
        return None
