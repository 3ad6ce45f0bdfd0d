"""The records that cross layers: a document's state, its stages, its name forms and its job.

A `Job` travels between processes as a JSON message (a Celery task's argument, a held
document in Redis); `Job.to_message` and `Job.from_message` are the one place that turns
it into and from that message, under the field names earlier versions sent.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, TypedDict

Message = dict[str, Any]


class State(StrEnum):
    """Where a document is: waiting, in a stage, or ended (and, once failed, retried)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    DUPLICATE = "duplicate"
    RETRIED = "retried"


# The states a document ends in: nothing more happens to it.
TERMINAL = frozenset({State.DONE, State.FAILED, State.DUPLICATE, State.RETRIED})
# The states counted by the ledger, in the order they are shown.
COUNTED = (State.QUEUED, State.RUNNING, State.DONE, State.FAILED, State.DUPLICATE)

Kind = Literal["pdf", "image", "text", "other"]
Stage = Literal["detect", "extract", "ocr", "analyze", "thumbnail"]
# ocr runs only for pages without a text layer and images; other documents skip it.
STAGES: tuple[Stage, ...] = ("detect", "extract", "ocr", "analyze", "thumbnail")


def printable(name: str) -> str:
    """Return a file name as valid UTF-8 text, whatever bytes the filesystem gave."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def name_to_hex(name: str) -> str:
    """Return a file name's bytes as the filesystem has them, in hex (as the ledger keeps it)."""
    return os.fsencode(name).hex()


def name_from_hex(encoded: str) -> str:
    """Return the file name whose filesystem bytes are in hex; raise ValueError if not hex."""
    return os.fsdecode(bytes.fromhex(encoded))


@dataclass(frozen=True)
class Source:
    """A received file: its name as the filesystem gave it, its relative path as text, its content.

    raw_name may hold bytes that are not UTF-8 (as surrogate escapes); `name` and `relpath`
    are what reports, the ledger and people see.
    """

    raw_name: str
    relpath: str
    bytes: int
    sha256: str
    received_at: str

    @property
    def name(self) -> str:
        return printable(self.raw_name)

    def to_dict(self) -> dict[str, Any]:
        """Return the `source` of a report and of a job's message."""
        return {"name": self.name, "relpath": self.relpath, "bytes": self.bytes,
                "sha256": self.sha256, "received_at": self.received_at}


class FileTypeInfo(TypedDict):
    mime: str
    kind: Kind
    encrypted: bool


class TextInfo(TypedDict):
    path: str
    chars: int
    words: int
    ocr: bool


class AnalysisInfo(TypedDict):
    keywords: list[str]
    language: str | None


class ThumbnailInfo(TypedDict):
    path: str
    width: int
    height: int


class OcrInfo(TypedDict):
    engine: str
    languages: list[str]
    pages: int
    mean_confidence: float | None
    seconds: float


class JobError(TypedDict):
    stage: str
    type: str
    message: str


@dataclass
class Job:
    """A claimed file on its way through the stages, with what each stage found so far."""

    key: str
    id: str
    token: str
    source_path: str
    work_dir: str
    received_ts: float
    source: Source
    keep_source: bool = False
    claimed_mtime_ns: int | None = None
    incomplete: str | None = None
    duplicate_of: str | None = None
    type: FileTypeInfo | None = None
    pages: int | None = None
    image: dict[str, Any] | None = None
    text: TextInfo | None = None
    analysis: AnalysisInfo | None = None
    thumbnail: ThumbnailInfo | None = None
    # Pages to read by OCR (indexes), found by extract; what OCR found; pages not read.
    ocr_pages: list[int] = field(default_factory=list)
    ocr: OcrInfo | None = None
    warnings: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    progress: dict[str, dict[str, float]] = field(default_factory=dict)
    error: JobError | None = None
    # Sent on from the line of held documents: it does not queue behind that line again.
    released: bool = False
    # Control flags of one task's run, never sent: finished elsewhere, left for the next
    # task (a time limit), or held with this reason.
    finished: bool = field(default=False, compare=False)
    deferred: bool = field(default=False, compare=False)
    held: str | None = field(default=None, compare=False)

    def to_message(self) -> Message:
        """Return the job as the JSON message sent through the broker and kept while held."""
        message: Message = {
            "key": self.key, "id": self.id, "token": self.token,
            "source_path": self.source_path, "keep_source": self.keep_source,
            "work_dir": self.work_dir, "received_ts": self.received_ts,
            "source": self.source.to_dict(), "raw_name": self.source.raw_name,
            "claimed_mtime_ns": self.claimed_mtime_ns, "incomplete": self.incomplete,
            "duplicate_of": self.duplicate_of, "type": self.type, "pages": self.pages,
            "image": self.image, "text": self.text, "analysis": self.analysis,
            "thumbnail": self.thumbnail, "timings_ms": self.timings_ms,
            "progress": self.progress, "error": self.error,
        }
        # Sent only when set: most documents have no page to read.
        if self.ocr_pages:
            message["ocr_pages"] = self.ocr_pages
        if self.ocr:
            message["ocr"] = self.ocr
        if self.warnings:
            message["warnings"] = self.warnings
        if self.released:
            message["released"] = True
        return message

    @classmethod
    def from_message(cls, message: Message) -> Job:
        """Return the job a message carries, whichever version of docproc sent it."""
        source = message["source"]
        return cls(
            key=message["key"], id=message["id"], token=message["token"],
            source_path=message["source_path"], work_dir=message["work_dir"],
            received_ts=float(message["received_ts"]),
            source=Source(raw_name=message.get("raw_name") or source["name"],
                          relpath=source["relpath"], bytes=source["bytes"],
                          sha256=source["sha256"], received_at=source["received_at"]),
            keep_source=bool(message.get("keep_source")),
            claimed_mtime_ns=message.get("claimed_mtime_ns"),
            incomplete=message.get("incomplete"), duplicate_of=message.get("duplicate_of"),
            type=message.get("type"), pages=message.get("pages"), image=message.get("image"),
            text=message.get("text"), analysis=message.get("analysis"),
            thumbnail=message.get("thumbnail"), ocr_pages=list(message.get("ocr_pages") or []),
            ocr=message.get("ocr"), warnings=list(message.get("warnings") or []),
            timings_ms=dict(message.get("timings_ms") or {}),
            progress=dict(message.get("progress") or {}), error=message.get("error"),
            released=bool(message.get("released")),
        )

    @property
    def state(self) -> State:
        """Return the end state the job reaches: failed, duplicate or done."""
        if self.error:
            return State.FAILED
        return State.DUPLICATE if self.duplicate_of else State.DONE


def to_messages(jobs: Sequence[Job]) -> list[Message]:
    """Return the messages of jobs, in order."""
    return [job.to_message() for job in jobs]


def from_messages(messages: Sequence[Message]) -> list[Job]:
    """Return the jobs of messages, in order."""
    return [Job.from_message(message) for message in messages]


@contextmanager
def jobs_of(messages: list[Message]) -> Iterator[list[Job]]:
    """Yield the jobs of a task's messages; write what they became back into those messages.

    Whatever the task ends in: a retry resends, and a failure handler reads, its arguments,
    and both must see the stages already run.
    """
    jobs = from_messages(messages)
    try:
        yield jobs
    finally:
        for message, job in zip(messages, jobs, strict=True):
            message.clear()
            message.update(job.to_message())
