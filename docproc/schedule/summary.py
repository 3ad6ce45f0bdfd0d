"""The daily report's arithmetic: per-document facts into partial summaries, merged, finished.

A partial summary is a small JSON-able dict, so that a chord's header tasks can return one
per chunk of documents and its callback can merge them. Nothing here does I/O.
"""

from __future__ import annotations

import datetime
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from docproc.model import State
from docproc.report import Report

SCHEMA = "docproc.daily/1"
# The states by_status always lists, in this order (then any other status met).
STATUSES = (State.DONE, State.FAILED, State.DUPLICATE, State.RETRIED, State.QUEUED, State.RUNNING)
UNFINISHED = frozenset({State.QUEUED, State.RUNNING})
STAGE_ORDER = ("wait", "detect", "extract", "analyze", "thumbnail", "total")
TOP_KEYWORDS = 20
PERCENTILES = (50, 90, 99)
Summary = dict[str, Any]


@dataclass(frozen=True)
class Window:
    """The local day a report covers: from its midnight up to the next one."""

    day: datetime.date
    start: datetime.datetime
    end: datetime.datetime

    @classmethod
    def of(cls, day: datetime.date) -> Window:
        """Return the window of a local calendar day (23 or 25 hours on DST changes)."""
        start = datetime.datetime.combine(day, datetime.time()).astimezone()
        end = datetime.datetime.combine(day + datetime.timedelta(days=1),
                                        datetime.time()).astimezone()
        return cls(day, start, end)

    @property
    def hours(self) -> int:
        return round((self.end - self.start).total_seconds() / 3600)

    def hour_of(self, timestamp: float) -> int:
        """Return the hour of the day (0-based from local midnight) of a receipt time."""
        hour = int((timestamp - self.start.timestamp()) // 3600)
        return min(max(hour, 0), self.hours - 1)


def new_summary() -> Summary:
    """Return an empty partial summary."""
    return {
        "documents": 0, "bytes": 0, "pages": 0, "words": 0,
        "by_status": {}, "by_kind": {}, "keywords": {}, "timings": {}, "hours": {},
        "failures": [], "not_summarized": [],
    }


def _bump(counts: dict[str, int], name: str, by: int = 1) -> None:
    counts[name] = counts.get(name, 0) + by


def add_document(
    summary: Summary, window: Window, *, key: str, status: str, received_ts: float,
    name: str, relpath: str, folder: str, report: Report | None = None,
    reason: str | None = None,
) -> None:
    """Add one document to a partial summary: from its report, or as not summarized (reason).

    A malformed report raises before the summary changes.
    """
    facts = _facts(report) if report is not None else None
    hour = summary["hours"].setdefault(str(window.hour_of(received_ts)),
                                       {"documents": 0, "done": 0, "failed": 0, "pages": 0})
    summary["documents"] += 1
    hour["documents"] += 1
    _bump(summary["by_status"], str(status))
    if status in UNFINISHED:
        return
    if facts is None:
        summary["not_summarized"].append({"key": key, "name": name, "relpath": relpath,
                                          "folder": folder, "reason": reason or "no report"})
        return
    summary["bytes"] += facts["bytes"]
    _bump(summary["by_kind"], facts["kind"])
    for stage, ms in facts["timings"].items():
        summary["timings"].setdefault(stage, []).append(ms)
    if status == State.DONE:
        summary["pages"] += facts["pages"]
        summary["words"] += facts["words"]
        hour["done"] += 1
        hour["pages"] += facts["pages"]
        for keyword in facts["keywords"]:
            _bump(summary["keywords"], keyword)
    elif status in (State.FAILED, State.RETRIED):
        hour["failed"] += 1
        error = facts["error"] or {"type": "internal", "stage": "", "message": "no error recorded"}
        summary["failures"].append({
            "key": key, "name": name, "relpath": relpath, "folder": folder,
            "type": error["type"], "stage": error["stage"], "message": error["message"],
            "retried": status == State.RETRIED,
        })


def _facts(report: Report) -> dict[str, Any]:
    """Return what the daily report needs of a document's report; raise on a malformed one."""
    text: dict[str, Any] = dict(report.text or {})
    analysis: dict[str, Any] = dict(report.analysis or {})
    error: dict[str, Any] | None = dict(report.error) if report.error else None
    timings = {str(stage): float(ms) for stage, ms in report.timings_ms.items()}
    return {
        "kind": report.kind,
        "bytes": int(report.source.get("bytes") or 0),
        "pages": int(report.pages or 0),
        "words": int(text.get("words") or 0),
        "keywords": [str(word) for word in analysis.get("keywords") or []],
        "timings": timings,
        "error": None if not error else {"type": str(error["type"]),
                                         "stage": str(error.get("stage") or ""),
                                         "message": str(error.get("message") or "")},
    }


def merge(parts: list[Summary]) -> Summary:
    """Merge partial summaries into one."""
    total = new_summary()
    for part in parts:
        for name in ("documents", "bytes", "pages", "words"):
            total[name] += part[name]
        for name in ("by_status", "by_kind", "keywords"):
            for key, count in part[name].items():
                _bump(total[name], key, count)
        for stage, values in part["timings"].items():
            total["timings"].setdefault(stage, []).extend(values)
        for hour, counts in part["hours"].items():
            into = total["hours"].setdefault(hour, {"documents": 0, "done": 0, "failed": 0,
                                                    "pages": 0})
            for name, count in counts.items():
                into[name] += count
        total["failures"].extend(part["failures"])
        total["not_summarized"].extend(part["not_summarized"])
    return total


def percentile(ordered: list[float], pct: float) -> float:
    """Return the nearest-rank percentile of sorted values."""
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def _stage_key(stage: str) -> tuple[int, str]:
    return (STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER), stage)


def finish(summary: Summary, window: Window, generated_at: str, source: str) -> dict[str, Any]:
    """Return the daily report (the JSON written to the outbox) of a merged summary."""
    timings = {}
    for stage in sorted(summary["timings"], key=_stage_key):
        values = sorted(summary["timings"][stage])
        if values:
            timings[stage] = {
                "count": len(values),
                **{f"p{pct}": round(percentile(values, pct), 1) for pct in PERCENTILES},
                "max": round(values[-1], 1),
                "mean": round(sum(values) / len(values), 1),
            }
    failures: dict[str, dict[str, Any]] = {}
    for failure in sorted(summary["failures"], key=lambda f: (f["type"], f["relpath"])):
        entry = failures.setdefault(failure["type"], {"count": 0, "documents": []})
        entry["count"] += 1
        entry["documents"].append({k: v for k, v in failure.items() if k != "type"})
    failures = dict(sorted(failures.items(), key=lambda item: -item[1]["count"]))
    keywords = Counter[str](summary["keywords"]).most_common()
    keywords.sort(key=lambda item: (-item[1], item[0]))
    by_status = {str(status): summary["by_status"].get(status, 0) for status in STATUSES}
    by_status.update(summary["by_status"])
    by_hour = []
    for hour in range(window.hours):
        counts = summary["hours"].get(str(hour), {})
        starts = (window.start + datetime.timedelta(hours=hour)).astimezone()
        by_hour.append({"hour": starts.strftime("%H:%M"), "start": starts.isoformat(),
                        "documents": counts.get("documents", 0), "done": counts.get("done", 0),
                        "failed": counts.get("failed", 0), "pages": counts.get("pages", 0)})
    unfinished = sum(by_status.get(status, 0) for status in UNFINISHED)
    not_summarized = sorted(summary["not_summarized"], key=lambda d: d["relpath"])
    return {
        "schema": SCHEMA,
        "date": window.day.isoformat(),
        "window": {"from": window.start.isoformat(), "to": window.end.isoformat(),
                   "timezone": window.start.tzname() or ""},
        "generated_at": generated_at,
        "source": source,
        "complete": not not_summarized and not unfinished,
        "documents": summary["documents"],
        "bytes": summary["bytes"],
        "pages": summary["pages"],
        "words": summary["words"],
        "by_status": by_status,
        "by_kind": dict(sorted(summary["by_kind"].items(), key=lambda item: -item[1])),
        "failures": failures,
        "keywords": [{"keyword": word, "documents": count}
                     for word, count in keywords[:TOP_KEYWORDS]],
        "timings_ms": timings,
        "by_hour": by_hour,
        "not_summarized": not_summarized,
    }
