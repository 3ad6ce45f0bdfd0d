"""End to end through `docproc up`: the corpus in, reports out, Ctrl-C leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.conftest import (
    drop_tree,
    reports,
    run_docproc,
    start_up,
    stop_up,
    wait_until,
    wait_watching,
)
from tests.corpus_truth import check_report, corpus_files, page_counts

pytestmark = pytest.mark.e2e


def _processes_mentioning(marker: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in cmdline or marker.encode() in environ:
            found.append(f"{entry.name}: {cmdline}")
    return found


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}


def _write_slowly(path: Path, content: bytes, pieces: int = 5, pause: float = 0.15) -> None:
    step = len(content) // pieces + 1
    with path.open("wb") as handle:
        for start in range(0, len(content), step):
            handle.write(content[start:start + step])
            handle.flush()
            time.sleep(pause)  # a slow writer, not a wait for the product


def test_docproc_up_processes_the_corpus_and_stops_cleanly(
    make_config: Callable[..., Path], corpus: Path, tmp_path: Path
) -> None:
    config = make_config(broker_url="embedded")
    settings = yaml.safe_load(config.read_text())
    inbox, outbox = Path(settings["inbox"]), Path(settings["outbox"])
    port = settings["status_api"]["port"]
    up = start_up(config, tmp_path / "up.log")
    try:
        wait_until(lambda: _get(f"http://127.0.0.1:{port}/healthz")[0] == 200, 60,
                   interval=0.2, message="/healthz to answer 200")
        wait_watching(lambda: (tmp_path / "up.log").read_text(errors="replace"))
        files = corpus_files(corpus)
        drop_tree({relpath: corpus / relpath for relpath in files}, inbox, tmp_path / "beside")
        # An exporter's hidden temp name, renamed in; a slow writer; files that must stay.
        (inbox / ".export-123.tmp").write_bytes(b"%PDF- not yet")
        (inbox / ".partial-x").write_text("exported under a temporary name, then renamed\n")
        os.rename(inbox / ".partial-x", inbox / "renamed-in.txt")
        writer = threading.Thread(target=_write_slowly, args=(
            inbox / "slow.txt", ("slowly written words " * 2000).encode()))
        writer.start()
        (inbox / "draft.part").write_text("incomplete download")
        (inbox / "~$locked.docx").write_text("office lock file")
        writer.join()
        expected = len(files) + 2
        found = wait_until(lambda: len(reports(outbox)) >= expected and reports(outbox), 120,
                           interval=0.5, message=f"{expected} reports")
        assert len(found) == expected, "a file came out twice"
        by_relpath = {report["source"]["relpath"]: report for report in found}
        pages = page_counts(corpus)
        problems = {f: check_report(f, by_relpath[f], pages) for f in files}
        assert {f: p for f, p in problems.items() if p} == {}
        slow = by_relpath["slow.txt"]
        assert slow["status"] == "done"
        assert slow["source"]["bytes"] == len("slowly written words ") * 2000
        assert by_relpath["renamed-in.txt"]["status"] == "done"
        left = sorted(p.name for p in inbox.rglob("*") if p.is_file())
        assert left == [".export-123.tmp", "draft.part", "~$locked.docx"]
        status, listing = _get(f"http://127.0.0.1:{port}/api/documents?limit=500")
        assert status == 200 and len(listing["documents"]) == expected
    finally:
        status = stop_up(up)
    assert status == 0, f"docproc up ended with {status} on Ctrl-C (-9: killed, it did not stop)"
    assert _processes_mentioning(str(config)) == []


def test_one_up_per_state_dir_and_none_outlives_its_supervisord(
    make_config: Callable[..., Path], tmp_path: Path,
) -> None:
    config = make_config(broker_url="embedded")
    port = yaml.safe_load(config.read_text())["status_api"]["port"]
    health = f"http://127.0.0.1:{port}/healthz"
    up = start_up(config, tmp_path / "up.log")
    try:
        wait_until(lambda: _get(health)[0] == 200, 60, interval=0.2, message="/healthz 200")
        # A second start on the same state_dir: refused at once, naming the running one.
        second = run_docproc(config, "up")
        assert second.returncode == 1, second.stdout + second.stderr
        assert "already running" in second.stderr and f"pid {up.pid}" in second.stderr
        assert _get(health)[0] == 200, "the first instance must keep working"

        # supervisord killed outright: every program it ran goes with it.
        os.kill(up.pid, signal.SIGKILL)
        up.wait(10)
        wait_until(lambda: not _processes_mentioning(str(config)), 30, interval=0.2,
                   message="no docproc process left after kill -9 of supervisord")
    finally:
        if up.poll() is None:
            stop_up(up)
    # And it starts again cleanly, on the same broker files.
    again = start_up(config, tmp_path / "up-again.log")
    try:
        wait_until(lambda: _get(health)[0] == 200, 60, interval=0.2,
                   message="/healthz 200 after the restart")
    finally:
        stop_up(again)
    assert _processes_mentioning(str(config)) == []
