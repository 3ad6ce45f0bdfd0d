"""A job crosses the broker and a report crosses the disk without losing what they say."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from docproc.model import (
    Job,
    Source,
    State,
    from_messages,
    jobs_of,
    name_from_hex,
    name_to_hex,
    printable,
)
from docproc.outbox import Outbox, Outputs
from docproc.report import build, read


def _job(raw_name: str = "r\udce9sum\u00e9.pdf") -> Job:
    source = Source(raw_name, f"dept/{printable(raw_name)}", 2048, "ab" * 32,
                    "2026-11-23T10:00:00Z")
    return Job("abababababab-1", "abababababab", "0001-tok", "/spool/0001-tok.data",
               "/spool/0001-tok.work", 1764000000.5, source, claimed_mtime_ns=123456789012345678)


# A job as docproc sent it before the model existed (a message still queued at an upgrade).
OLD_MESSAGE: dict[str, Any] = {
    "key": "c0ffee000000-1", "id": "c0ffee000000", "token": "0002-tok",
    "source_path": "/spool/0002-tok.data", "keep_source": False,
    "work_dir": "/spool/0002-tok.work", "received_ts": 1764000001.25,
    "source": {"name": "memo.txt", "relpath": "memo.txt", "bytes": 5,
               "sha256": "c0ffee" + "0" * 58, "received_at": "2026-11-23T10:00:01Z"},
    "raw_name": "memo.txt", "claimed_mtime_ns": 42, "incomplete": None, "duplicate_of": None,
    "type": {"mime": "text/plain", "kind": "text", "encrypted": False}, "pages": None,
    "image": None, "text": {"path": "text.txt", "chars": 5, "words": 1, "ocr": False},
    "analysis": None, "thumbnail": None, "timings_ms": {"wait": 1.0, "detect": 0.1,
                                                        "extract": 0.2},
    "progress": {"detect": {"started": 1.0, "ended": 2.0}}, "error": None, "released": True,
}


def test_a_job_survives_its_message_through_json() -> None:
    job = _job()
    job.timings_ms["detect"] = 0.4
    job.error = {"stage": "extract", "type": "corrupt", "message": "its pages cannot be read"}
    wire = json.loads(json.dumps(job.to_message()))
    assert Job.from_message(wire) == job
    assert wire["source"]["name"] == "r\ufffdsum\u00e9.pdf"
    assert wire["raw_name"] == job.source.raw_name


def test_a_message_queued_by_the_previous_version_is_accepted_and_sent_on_the_same() -> None:
    job = Job.from_message(OLD_MESSAGE)
    assert job.key == "c0ffee000000-1" and job.released and job.source.name == "memo.txt"
    assert job.timings_ms["extract"] == 0.2 and job.type is not None and job.type["kind"] == "text"
    assert job.to_message() == OLD_MESSAGE


def test_control_flags_stay_off_the_wire() -> None:
    job = _job()
    job.finished, job.deferred, job.held = True, True, "detect: No space left on device"
    message = job.to_message()
    assert not {"finished", "deferred", "held", "released"} & message.keys()


def test_what_a_task_did_is_in_its_messages_even_when_it_fails() -> None:
    messages = [_job().to_message()]
    try:
        with jobs_of(messages) as jobs:
            jobs[0].timings_ms["detect"] = 0.3
            raise RuntimeError("a bug after detect")
    except RuntimeError:
        pass
    assert from_messages(messages)[0].timings_ms == {"detect": 0.3}


def test_a_name_that_is_not_utf8_keeps_its_bytes_in_hex() -> None:
    raw = "caf\udce9.txt"
    assert name_from_hex(name_to_hex(raw)) == raw and name_to_hex(raw) == b"caf\xe9.txt".hex()


def test_a_report_written_then_read_says_the_same(tmp_path: Path) -> None:
    job = _job()
    job.type = {"mime": "application/pdf", "kind": "pdf", "encrypted": False}
    job.pages = 3
    job.text = {"path": "text.txt", "chars": 10, "words": 2, "ocr": False}
    job.analysis = {"keywords": ["invoice"], "language": "en"}
    report = build(job, "worker1@host")
    outbox = Outbox(tmp_path)
    folder = outbox.folder(job.state, job.source.received_at, job.source.raw_name, job.key)
    outbox.write(folder, report, Outputs())
    assert read(folder) == report and read(folder).is_docproc
    body = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert body["status"] == "done" and body["source"]["relpath"] == job.source.relpath
    assert list(body) == ["schema", "id", "status", "source", "type", "pages", "image", "text",
                          "analysis", "thumbnail", "ocr", "warnings", "timings_ms", "error",
                          "duplicate_of", "processed_at", "worker"]


def test_a_failed_jobs_report_keeps_its_error_and_drops_its_findings() -> None:
    job = _job()
    job.text = {"path": "text.txt", "chars": 10, "words": 2, "ocr": False}
    job.error = {"stage": "extract", "type": "encrypted", "message": "it needs a password"}
    report = build(job, "w")
    assert job.state == State.FAILED and report.status == "failed"
    assert report.text is None and report.error_type == "encrypted" and report.kind == "other"
