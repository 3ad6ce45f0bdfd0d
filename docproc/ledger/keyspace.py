"""The Redis keyspace of docproc: every key, and every name that becomes part of one.

Existing ledgers are read with these exact strings: change none of them. The Lua scripts
in docproc/ledger/lua/ build the document keys from PREFIX themselves (ARGV[1]), with the
same suffixes as below.
"""

from __future__ import annotations

PREFIX = "docproc:"

# Documents.
DOCS = f"{PREFIX}docs"  # sorted set: every document key by receipt time
ACTIVE = f"{PREFIX}active"  # sorted set: unfinished document keys by receipt time
FAILED = f"{PREFIX}failed"  # sorted set: failed document keys by receipt time
COUNTS = f"{PREFIX}counts"  # hash: documents per end state
SUSPECTS = f"{PREFIX}suspects"  # hash: document key -> when it first looked orphaned


def doc(key: str) -> str:
    """Return the key of a document's record (a hash)."""
    return f"{PREFIX}doc:{key}"


def token(spool_token: str) -> str:
    """Return the key naming the document recorded for a spool token."""
    return f"{PREFIX}token:{spool_token}"


def content(sha256: str) -> str:
    """Return the key naming the original document of a content hash."""
    return f"{PREFIX}sha:{sha256}"


def sequence(doc_id: str) -> str:
    """Return the key counting the receipts of a content id."""
    return f"{PREFIX}seq:{doc_id}"


# Metrics, added up across every worker.
FINISHED = f"{PREFIX}m:finished"  # hash: "status|kind[|error]" -> documents
SECONDS = f"{PREFIX}m:seconds"  # hash: duration histograms, "name:bucket|sum|count"


def minute(number: int) -> str:
    """Return the key of the throughput of one minute since the epoch."""
    return f"{PREFIX}m:minute:{number}"


# Worker nodes and their heartbeats.
NODES = f"{PREFIX}nodes"  # set: every node that ever beat


def node(name: str) -> str:
    """Return the key of a node's heartbeat: the JSON list of the documents it holds."""
    return f"{PREFIX}node:{name}"


def task_run(delivery: str) -> str:
    """Return the key counting the starts of one task message."""
    return f"{PREFIX}run:{delivery}"


# Locks: names given to lock(); the key of each is lock_key(name).
BEAT_LOCK = "beat"
RECONCILE_LOCK = "reconcile"


def daily_lock(day: str) -> str:
    """Return the lock name of building the daily report of a day (ISO date)."""
    return f"daily:{day}"


def lock_key(name: str) -> str:
    """Return the key of a named lock."""
    return f"{PREFIX}lock:{name}"


# Notes: fields of one hash of small bookkeeping.
NOTES = f"{PREFIX}notes"
SERVER_RUN_ID_NOTE = "server_run_id"
LAST_FULL_PASS_NOTE = "last_full_pass"


def last_run_note(entry: str) -> str:
    """Return the note that holds when a schedule entry last ran."""
    return f"beat.last_run.{entry}"


# Kept hashes: names given to keep(); the key of each is kept_key(name).
def daily_run(run: str) -> str:
    """Return the kept name of one daily report run's chunks."""
    return f"daily:run:{run}"


def kept_key(name: str) -> str:
    """Return the key of a kept hash."""
    return f"{PREFIX}{name}"


# Published component stats.
def published_names(kind: str) -> str:
    """Return the key of the set of names that published stats of a kind."""
    return f"{PREFIX}stats:{kind}"


def published(kind: str, name: str) -> str:
    """Return the key of the stats one component published."""
    return f"{PREFIX}stats:{kind}:{name}"


# Documents held while the outbox cannot be written (docproc.holding).
HELD = f"{PREFIX}held"
HELD_JOBS = f"{PREFIX}held:jobs"
HELD_STATE = f"{PREFIX}held:state"


# OCR pages read, added up across every worker.
OCR_PAGES = f"{PREFIX}m:ocr_pages"  # counter: every page read by OCR


def ocr_minute(number: int) -> str:
    """Return the key counting the pages read by OCR in one minute since the epoch."""
    return f"{PREFIX}m:ocr:{number}"
