"""The CLI's output: a progress bar on a terminal, plain lines in a pipe, tables that fit."""

from __future__ import annotations

import io
import re
import time
from typing import Any

import pytest

from docproc.cli import output
from docproc.cli.output import Progress, table


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_with_rate_and_time_left_then_an_empty_line() -> None:
    terminal = _Terminal()
    bar = Progress("copying", terminal, unit="bytes")
    bar.update(5, 10, "5/10 files")
    bar.update(10, 10, "10/10 files")
    bar.close()
    shown = terminal.getvalue()
    assert "\r" in shown and "\x1b[" in shown  # redrawn in place, in colour
    assert " 50%" in shown and "5/10 files" in shown and "100%" in shown and "10/10 files" in shown
    # the rate (its unit scales with the speed) and the time left
    assert re.search(r"\d (bytes|[kMGT]B)/s", shown) and "0:00:00" in shown
    assert shown.endswith("\x1b[2K")  # closed: the bar's line is cleared


def test_a_pipe_gets_occasional_plain_lines_without_codes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    piped = io.StringIO()
    quiet = Progress("copying", piped)
    quiet.update(1, 4, "1/4 files")
    assert piped.getvalue() == ""  # quick work prints no progress into a log
    real = time.monotonic
    monkeypatch.setattr(output.time, "monotonic", lambda: real() + 60)
    quiet.update(2, 4, "2/4 files")
    quiet.update(3, 4, "3/4 files")  # within the next 5 s: not printed
    quiet.close()
    assert piped.getvalue() == "copying: 50% 2/4 files\n"


def test_tables_align_numbers_right_and_cut_names_to_the_width() -> None:
    rows: list[list[Any]] = [["done", 12], ["failed", 3], ["gone", None]]
    assert table(rows, ["STATE", "N"], right=[1], indent="").splitlines() == [
        "STATE    N", "done    12", "failed   3", "gone     -"]
    wide = table([["x" * 80, 1_234_567]], ["NAME", "BYTES"], right=[1], width=40)
    line = wide.splitlines()[1]
    assert len(line) <= 40 and line.endswith("1234567") and "…" in line
