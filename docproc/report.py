"""A document's report.json: built from its finished job, and read back, in one place."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from docproc.model import (
    AnalysisInfo,
    FileTypeInfo,
    Job,
    JobError,
    OcrInfo,
    State,
    TextInfo,
    ThumbnailInfo,
)

SCHEMA = "docproc.report/1"
FILE_NAME = "report.json"
UNKNOWN_TYPE: FileTypeInfo = {"mime": "application/octet-stream", "kind": "other",
                              "encrypted": False}


def utc_now() -> str:
    """Return the current UTC time as ISO 8601 with a Z, to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ms_since(timestamp: float) -> float:
    """Return the milliseconds since a Unix time, to a tenth, never negative."""
    return round(max(0.0, time.time() - timestamp) * 1000, 1)


@dataclass(frozen=True)
class Report:
    """What report.json says of one received file, in the order its keys are written."""

    schema: str
    id: str
    status: str
    source: dict[str, Any]
    type: FileTypeInfo
    pages: int | None
    image: dict[str, Any] | None
    text: TextInfo | None
    analysis: AnalysisInfo | None
    thumbnail: ThumbnailInfo | None
    ocr: OcrInfo | None
    warnings: list[str]
    timings_ms: dict[str, float]
    error: JobError | None
    duplicate_of: str | None
    processed_at: str
    worker: str

    @property
    def is_docproc(self) -> bool:
        """Return True when the body names a docproc report schema (of any version)."""
        return self.schema.startswith("docproc.report/")

    @property
    def kind(self) -> str:
        """Return the file's kind (pdf, image, text, other)."""
        return str(self.type.get("kind") or "other")

    @property
    def error_type(self) -> str | None:
        """Return the typed reason of a failure, or None."""
        return self.error["type"] if self.error else None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON body of report.json."""
        body = asdict(self)
        body["status"] = str(self.status)
        return body

    @classmethod
    def from_dict(cls, body: Any) -> Report:
        """Return the report a report.json body holds; raise ValueError when it is none."""
        if (not isinstance(body, dict) or "status" not in body
                or not str(body.get("schema") or "").startswith("docproc.report/")):
            raise ValueError("not a docproc report")
        return cls(
            schema=str(body.get("schema") or ""), id=str(body.get("id") or ""),
            status=str(body["status"]), source=body.get("source") or {},
            type=body.get("type") or UNKNOWN_TYPE, pages=body.get("pages"),
            image=body.get("image"), text=body.get("text"), analysis=body.get("analysis"),
            thumbnail=body.get("thumbnail"), ocr=body.get("ocr"),
            warnings=list(body.get("warnings") or []), timings_ms=body.get("timings_ms") or {},
            error=body.get("error"), duplicate_of=body.get("duplicate_of"),
            processed_at=str(body.get("processed_at") or ""), worker=str(body.get("worker") or ""),
        )


def build(job: Job, worker: str) -> Report:
    """Return the report of a finished job."""
    status = job.state
    done = status == State.DONE
    timings = dict(job.timings_ms)
    timings["total"] = ms_since(job.received_ts)
    return Report(
        schema=SCHEMA, id=job.id, status=status, source=job.source.to_dict(),
        type=job.type or UNKNOWN_TYPE, pages=job.pages, image=job.image,
        text=job.text if done else None, analysis=job.analysis if done else None,
        thumbnail=job.thumbnail if done else None, ocr=job.ocr if done else None,
        warnings=list(job.warnings), timings_ms=timings, error=job.error,
        duplicate_of=job.duplicate_of, processed_at=utc_now(), worker=worker,
    )


def render(report: Report) -> str:
    """Return the text of report.json."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


def read(folder: Path) -> Report:
    """Read a document folder's report.json; raise OSError or ValueError when it cannot be."""
    return read_file(folder / FILE_NAME)


def read_file(path: Path) -> Report:
    """Read a report.json file; raise OSError or ValueError when it cannot be."""
    return Report.from_dict(json.loads(path.read_text(encoding="utf-8")))
