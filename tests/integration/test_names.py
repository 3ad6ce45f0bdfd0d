"""File names are data: a newline, an ESC sequence or bytes that are not UTF-8 in a dropped
file's name forge no log line, reach no terminal as control, and stop no retry."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from docproc import retry
from docproc.cli.retry import retry as retry_command
from docproc.settings import load_settings
from docproc.status_api import create_app
from tests.conftest import Daemon, reports, run_docproc, wait_until

FORGED = "12:00:00 worker  INFO  0000deadbeef done payroll.pdf"
NEWLINE = f"forged\n{FORGED}"
ESC = "\x1b[31mred\x1b[0m.pdf"
LATIN1 = os.fsdecode(b"caf\xe9.pdf")  # not valid UTF-8: a str with a surrogate escape


def broken_pdf(tag: str) -> bytes:
    """Return a whole PDF (startxref, %%EOF) whose catalog has no page tree: it fails."""
    objects = [b"<< /Type /Catalog >>"]
    out = b"%PDF-1.4\n%" + tag.encode() + b"\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return out


def _drop(inbox: Path, name: str, data: bytes) -> None:
    staged = inbox / f".staged-{len(os.listdir(inbox))}.part"
    staged.write_bytes(data)
    os.rename(staged, inbox / name)


def _counts(config: Path) -> dict[str, int]:
    shown = run_docproc(config, "status", "--json")
    counts: dict[str, int] = json.loads(shown.stdout)["counts"]
    return counts


def _no_control(text: str) -> None:
    assert "\x1b" not in text
    assert not any(line.startswith(FORGED) for line in text.splitlines())


def test_names_with_newlines_escapes_and_bytes_not_utf8_stay_data(
    valkey_socket: Path, make_config: Callable[..., Path], daemon: Callable[[Path], Daemon],
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    redis.Redis(unix_socket_path=str(valkey_socket)).flushdb()
    config = make_config(broker_url=f"redis+socket://{valkey_socket}")
    settings = load_settings(config, environ={})
    run = daemon(config)
    run.start("worker")
    run.start("watch")
    for number, name in enumerate((NEWLINE, ESC, LATIN1)):
        _drop(settings.inbox, name, broken_pdf(f"document {number}"))
    wait_until(lambda: len(reports(settings.outbox)) == 3, 60, message="three reports")
    assert {r["status"] for r in reports(settings.outbox)} == {"failed"}

    # The worker's and the watcher's logs: one line per event, the names escaped.
    for component in ("worker", "watch"):
        log = run.log(component)
        _no_control(log)
        assert "Logging error" not in log and "UnicodeEncodeError" not in log
    worker_log = run.log("worker")
    assert f"forged\\n{FORGED}" in worker_log
    assert "\\x1b[31mred\\x1b[0m.pdf" in worker_log
    assert "caf\\xe9.pdf" in run.log("watch")

    # docproc status lists the failures with their names escaped.
    shown = run_docproc(config, "status", env={"COLUMNS": "300"})
    assert shown.returncode == 0, shown.stderr
    _no_control(shown.stdout)
    assert "\\x1b[31mred\\x1b[0m.pdf" in shown.stdout and f"forged\\n{FORGED}" in shown.stdout
    assert "caf\ufffd.pdf" in shown.stdout or "caf\\xe9.pdf" in shown.stdout

    # docproc retry --all-failed sends every one again, the one that is not UTF-8 included.
    retried = run_docproc(config, "retry", "--all-failed")
    assert retried.returncode == 0, retried.stderr
    assert "Traceback" not in retried.stderr
    assert "3 documents sent again" in retried.stdout
    _no_control(retried.stdout)
    assert "\\x1b[31mred\\x1b[0m.pdf" in retried.stdout
    wait_until(lambda: _counts(config)["failed"] == 3 and _counts(config)["retried"] == 3, 60,
               interval=0.3, message="the three documents to come out again")
    # The original went back into the inbox under its own bytes, not a cleaned-up name.
    again = [r for r in reports(settings.outbox) if r["source"]["name"] == "caf\ufffd.pdf"]
    assert [r["id"].endswith("-2") or r["_folder"].name.endswith("-2") for r in again] == [True]
    assert os.path.exists(os.fsencode(again[0]["_folder"]) + b"/original/caf\xe9.pdf")

    # The API's retry of that document answers 202 like any other.
    client = create_app(settings).test_client()
    failed = client.get("/api/documents?status=failed").get_json()["documents"]
    latin1 = next(doc["key"] for doc in failed if doc["name"] == "caf\ufffd.pdf")
    answer = client.post(f"/api/documents/{latin1}/retry")
    assert answer.status_code == 202, answer.get_json()
    assert answer.get_json()["sent_as"] == "caf\ufffd.pdf"
    wait_until(lambda: _counts(config)["failed"] == 3 and _counts(config)["retried"] == 4, 60,
               interval=0.3, message="the document retried through the API to come out again")

    # One document that cannot be sent again does not stop the others; it is named at the end.
    failed_now = client.get("/api/documents?status=failed").get_json()["documents"]
    broken_key = failed_now[0]["key"]
    real_retry = retry.retry_document

    def flaky(settings: Any, ledger: Any, key: str) -> retry.Retried:
        if key == broken_key:
            raise OSError(28, "No space left on device")
        return real_retry(settings, ledger, key)

    monkeypatch.setattr(retry, "retry_document", flaky)
    assert retry_command(settings, [], all_failed=True) == 1
    out, err = capsys.readouterr()
    assert "2 documents sent again" in out
    assert broken_key in err and "No space left on device" in err
    states = {doc["key"]: client.get(f"/api/documents/{doc['key']}").get_json()["status"]
              for doc in failed_now}
    assert states.pop(broken_key) == "failed"
    assert set(states.values()) == {"retried"} and len(states) == 2


def test_escaping_keeps_letters_of_any_script_and_shows_bytes_not_utf8() -> None:
    from docproc.names import escape

    assert escape("Größe 報告 résumé.pdf") == "Größe 報告 résumé.pdf"
    assert (escape("a\nb\r\tc\x1b[2J\x7f\x9b\u202e.pdf")
            == "a\\nb\\r\\tc\\x1b[2J\\x7f\\x9b\\u202e.pdf")
    assert escape(LATIN1) == "caf\\xe9.pdf"
