"""`docproc status` as text: the inbox's waiting files, names escaped, lines within width."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from docproc.cli.output import console, say
from docproc.cli.status import render_status, styled
from docproc.settings import load_settings
from docproc.status.timestamps import parse_since


def test_status_lists_the_files_waiting_for_their_writer_after_the_inbox_line(
    make_config: Callable[..., Path],
) -> None:
    settings = load_settings(make_config(), environ={})
    now = time.time()
    waiting = [
        {"relpath": "scans/old.pdf", "bytes": 4_700_000, "since": "2026-03-01T02:14:07Z",
         "waiting_seconds": 7300.0, "reason": "open_for_writing"},
        {"relpath": "evil\x1b[2J\u202etxt.exe", "bytes": 512, "since": "2026-03-01T04:15:00Z",
         "waiting_seconds": 3.24, "reason": "quiet_period"},
        {"relpath": "b\udcff.txt", "bytes": 0, "since": "2026-03-01T04:15:03Z",
         "waiting_seconds": 0.5, "reason": "empty"},
    ]
    snapshot: dict[str, Any] = {
        "counts": {"queued": 0, "running": 0, "done": 1, "failed": 0, "duplicate": 0,
                   "retried": 0},
        "throughput": {"last_1m": 0, "last_5m": 0, "last_15m": 0},
        "queues": {"docproc": 0}, "workers": [], "stages": {}, "oldest_unfinished": None,
        "spool": {"files": 0, "bytes": 0},
        "watcher": {"online": 1, "backlog": 5, "waiting": waiting,
                    "waiting_by_reason": {"open_for_writing": 1, "quiet_period": 1,
                                          "incomplete": 0, "settling": 2, "empty": 1}},
    }
    lines = render_status(settings, snapshot, now).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("inbox "))
    assert lines[start + 1] == "  waiting for their writer:"
    old, evil, empty, more = lines[start + 2:start + 6]
    clock = time.strftime("%H:%M:%S", time.localtime(parse_since(waiting[0]["since"])))
    assert old.split() == ["scans/old.pdf", "4.7", "MB", "since", clock, "open", "for",
                           "writing"]
    assert evil.split() == ["evil\\x1b[2J\\u202etxt.exe", "512", "B", "for", "3.2", "s",
                            "quiet", "period", "after", "close"]
    assert empty.split() == ["b\ufffd.txt", "0", "B", "for", "0.5", "s", "empty,", "waiting",
                             "for", "content"]
    assert more == "    and 2 more" and lines[start + 6].startswith("spool ")
    assert not any(ord(char) < 32 for char in "".join(lines))
    # Without waiting files the inbox line is followed by the spool's.
    snapshot["watcher"] |= {"waiting": [], "waiting_by_reason": {}}
    lines = render_status(settings, snapshot, now).splitlines()
    assert lines[start + 1].startswith("spool ")



def test_status_is_coloured_on_a_terminal_and_plain_in_a_pipe(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = "STATE    DOCUMENTS\nfailed           1\n\nworkers   none online: nothing is processed"
    piped = io.StringIO()
    console(piped).print(styled(text))
    assert piped.getvalue() == text + "\n"
    coloured = Console(file=io.StringIO(), force_terminal=True, markup=False, highlight=False)
    coloured.print(styled(text))
    assert "\x1b[1mSTATE" in coloured.file.getvalue()
    assert "\x1b[33mworkers" in coloured.file.getvalue()
    say(styled(text + " [bold]x[/bold] :smile:"))
    assert capsys.readouterr().out == text + " [bold]x[/bold] :smile:\n"
