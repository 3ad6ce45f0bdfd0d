"""A ledger of document records in this process only, for `docproc process` (no broker)."""

from __future__ import annotations

import copy
import json
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

from docproc.ledger.model import ClaimInfo, Ending, Receipt, now
from docproc.model import COUNTED, TERMINAL, State, name_to_hex, printable

# Ended documents that reopen() may make unfinished again (never a retried one).
_REOPENABLE = frozenset({State.DONE, State.FAILED, State.DUPLICATE})


class MemoryLedger:
    """Document records in dictionaries, with the same rules as the Redis ledger's scripts."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._docs: dict[str, dict[str, Any]] = {}
        self._tokens: dict[str, str] = {}
        self._originals: dict[str, str] = {}  # sha256 -> key of the original
        self._sequences: Counter[str] = Counter()
        self._ended: Counter[str] = Counter()

    def record(self, claim: ClaimInfo) -> Receipt:
        """Record a claimed file as queued; give it a key; find an earlier copy of its content."""
        return self.record_many([claim])[0]

    def record_many(self, claims: Sequence[ClaimInfo]) -> list[Receipt]:
        """Record claimed files; recording the same claim (token) again is a no-op."""
        with self._lock:
            return [self._record_one(claim) for claim in claims]

    def _record_one(self, claim: ClaimInfo) -> Receipt:
        existing = self._tokens.get(claim.token)
        if existing is not None:
            return Receipt(existing, self._docs[existing]["duplicate_of"] or None)
        doc_id = claim.sha256[:12]
        self._sequences[doc_id] += 1
        seq = self._sequences[doc_id]
        key = doc_id if seq == 1 else f"{doc_id}-{seq}"
        original = self._originals.get(claim.sha256)
        if (original is not None
                and self._docs.get(original, {}).get("status") in (None, State.FAILED)):
            original = None
        if original is None:
            self._originals[claim.sha256] = key
        received = now()
        self._docs[key] = {
            "key": key, "id": doc_id, "token": claim.token, "name": printable(claim.name),
            "raw_name": name_to_hex(claim.name), "relpath": printable(claim.relpath),
            "bytes": claim.bytes, "sha256": claim.sha256, "received_at": claim.received_at,
            "status": State.QUEUED, "stage": State.QUEUED, "worker": "", "retries": 0, "stages": {},
            "updated_ts": received, "received_ts": received, "duplicate_of": original or "",
            "mtime_ns": str(claim.mtime_ns), "incomplete": claim.incomplete or "",
        }
        self._tokens[claim.token] = key
        return Receipt(key, original)

    def key_for_token(self, token: str) -> str | None:
        """Return the key recorded for a spool token."""
        return self._tokens.get(token)

    def get(self, key: str) -> dict[str, Any] | None:
        """Return a document's record, or None."""
        with self._lock:
            record = self._docs.get(key)
            return None if record is None else copy.deepcopy(record)

    def get_many(self, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        """Return the records of several documents, None for those gone."""
        return [self.get(key) for key in keys]

    def start_stage_many(self, progress: dict[str, str], stage: str, worker: str) -> set[str]:
        """Mark documents running in a stage; return the keys of those already finished."""
        finished = set()
        with self._lock:
            for key, stages in progress.items():
                record = self._docs.get(key)
                if record is None:
                    continue
                if record["status"] in TERMINAL:
                    finished.add(key)
                    continue
                record.update(status=State.RUNNING, stage=stage, worker=worker, updated_ts=now())
                if stages != "{}":
                    record["stages"] = json.loads(stages)
        return finished

    def finish(
        self, key: str, status: str, outdir: str, error_type: str | None, stages: str = "",
        kind: str = "",
    ) -> None:
        """Record a document's end state, once."""
        self.finish_many([Ending(key, status, outdir, error_type, stages, kind)])

    def finish_many(self, endings: Sequence[Ending]) -> None:
        """Record several documents' end states; each once."""
        with self._lock:
            for end in endings:
                record = self._docs.get(end.key)
                if record is None or record["status"] in TERMINAL:
                    continue
                ended = now()
                record.update(status=end.status, stage=end.status, outdir=end.outdir,
                              error_type=end.error_type or "", finished_ts=ended,
                              updated_ts=ended)
                if end.stages:
                    record["stages"] = json.loads(end.stages)
                self._ended[end.status] += 1

    def counts(self) -> dict[str, int]:
        """Return how many documents are in each of COUNTED."""
        with self._lock:
            unfinished = Counter(record["status"] for record in self._docs.values()
                                 if record["status"] not in TERMINAL)
            counts = {str(state): self._ended[state] for state in COUNTED}
            counts[State.RUNNING] = unfinished[State.RUNNING]
            counts[State.QUEUED] = sum(unfinished.values()) - unfinished[State.RUNNING]
            return counts

    def recent(self, limit: int = 50, before: float | None = None) -> list[dict[str, Any]]:
        """Return up to limit documents, newest first, received before a timestamp."""
        with self._lock:
            records = [record for record in self._docs.values()
                       if before is None or record["received_ts"] < before]
            records.sort(key=lambda record: (record["received_ts"], record["key"]), reverse=True)
            return copy.deepcopy(records[:limit])

    def mark_retried(self, key: str) -> str:
        """Mark a failed document retried; return 'retried', or the status that prevented it."""
        with self._lock:
            record = self._docs.get(key)
            if record is None or record["status"] != State.FAILED:
                return "" if record is None else str(record["status"])
            stamp = now()
            record.update(status=State.RETRIED, stage=State.RETRIED, retried_ts=stamp,
                          updated_ts=stamp)
            self._ended.update({State.FAILED: -1, State.RETRIED: 1})
            if self._originals.get(record["sha256"]) == key:
                del self._originals[record["sha256"]]
            return State.RETRIED

    def unmark_retried(self, key: str) -> None:
        """Make a document failed again when sending it again did not happen."""
        with self._lock:
            record = self._docs.get(key)
            if record is None or record["status"] != State.RETRIED:
                return
            record.update(status=State.FAILED, stage=State.FAILED)
            record.pop("retried_ts", None)
            self._ended.update({State.FAILED: 1, State.RETRIED: -1})
            self._originals.setdefault(record["sha256"], key)

    def reopen(self, key: str) -> bool:
        """Make a document that ended without an outbox folder unfinished again."""
        with self._lock:
            record = self._docs.get(key)
            if record is None or record["status"] not in _REOPENABLE or record.get("outdir"):
                return False
            self._ended[record["status"]] -= 1
            record.update(status=State.QUEUED, stage=State.QUEUED, worker="", stages={},
                          updated_ts=now())
            for name in ("error_type", "finished_ts", "outdir"):
                record.pop(name, None)
            return True

    def withdraw(self, key: str) -> bool:
        """Remove an unfinished document's records so that its file can be recorded anew."""
        with self._lock:
            record = self._docs.get(key)
            if record is not None and record["status"] in TERMINAL:
                return False
            if record is not None:
                self._remove(record)
            return True

    def forget(self, keys: Sequence[str]) -> dict[str, str]:
        """Remove finished documents' records; return {key: status} of those removed."""
        forgotten = {}
        with self._lock:
            for key in keys:
                record = self._docs.get(key)
                if record is None or record["status"] not in TERMINAL:
                    continue
                self._remove(record)
                self._ended[record["status"]] -= 1
                forgotten[key] = str(record["status"])
                if not any(other["id"] == record["id"] for other in self._docs.values()):
                    del self._sequences[record["id"]]
        return forgotten

    def _remove(self, record: dict[str, Any]) -> None:
        key = record["key"]
        del self._docs[key]
        if self._tokens.get(record["token"]) == key:
            del self._tokens[record["token"]]
        if self._originals.get(record["sha256"]) == key:
            del self._originals[record["sha256"]]
