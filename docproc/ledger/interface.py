"""The document-records role: what intake, the stages and `docproc process` need of a ledger.

Both RedisLedger and MemoryLedger implement it completely; the Redis-only roles (nodes,
locks, statistics, paging, retention reads) are typed against RedisLedger.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from docproc.ledger.model import ClaimInfo, Ending, Receipt


class DocumentLedger(Protocol):
    """Records of received documents: recorded once, run through stages, finished once."""

    def record(self, claim: ClaimInfo) -> Receipt:
        """Record a claimed file as queued; give it a key; find an earlier copy of its content."""
        ...

    def record_many(self, claims: Sequence[ClaimInfo]) -> list[Receipt]:
        """Record claimed files; recording the same claim (token) again is a no-op."""
        ...

    def key_for_token(self, token: str) -> str | None:
        """Return the key recorded for a spool token."""
        ...

    def get(self, key: str) -> dict[str, Any] | None:
        """Return a document's record, or None."""
        ...

    def get_many(self, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        """Return the records of several documents, None for those gone."""
        ...

    def start_stage_many(self, progress: dict[str, str], stage: str, worker: str) -> set[str]:
        """Mark documents running in a stage; return the keys of those already finished."""
        ...

    def finish(
        self, key: str, status: str, outdir: str, error_type: str | None, stages: str = "",
        kind: str = "",
    ) -> None:
        """Record a document's end state, once."""
        ...

    def finish_many(self, endings: Sequence[Ending]) -> None:
        """Record several documents' end states; each once."""
        ...

    def counts(self) -> dict[str, int]:
        """Return how many documents are in each of COUNTED."""
        ...

    def recent(self, limit: int = 50, before: float | None = None) -> list[dict[str, Any]]:
        """Return up to limit documents, newest first, received before a timestamp."""
        ...

    def mark_retried(self, key: str) -> str:
        """Mark a failed document retried; return 'retried', or the status that prevented it."""
        ...

    def unmark_retried(self, key: str) -> None:
        """Make a document failed again when sending it again did not happen."""
        ...

    def reopen(self, key: str) -> bool:
        """Make a document that ended without an outbox folder unfinished again."""
        ...

    def withdraw(self, key: str) -> bool:
        """Remove an unfinished document's records so that its file can be recorded anew."""
        ...

    def forget(self, keys: Sequence[str]) -> dict[str, str]:
        """Remove finished documents' records; return {key: status} of those removed."""
        ...
