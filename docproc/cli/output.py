"""The CLI's output through rich: messages, tables and progress bars; plain text when piped."""

from __future__ import annotations

import io
import shutil
import sys
import time
from collections.abc import Sequence
from typing import Any, Literal, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as RichProgress
from rich.table import Table
from rich.text import Text

from docproc.names import escape

# A terminal's progress line is redrawn at most this often.
REDRAW_SECONDS = 0.1
# Without a terminal, a progress line is printed at most this often.
PLAIN_PROGRESS_SECONDS = 5.0
# Piped output is never cut to a width.
UNLIMITED_WIDTH = 10_000


def console(stream: TextIO) -> Console:
    """Return a console writing to stream: styled on a terminal, plain text otherwise.

    Markup, emoji codes and highlighting are off: file names are shown as they are.
    """
    return Console(file=stream, markup=False, emoji=False, highlight=False, soft_wrap=True)


def say(text: str | Text, style: str | None = None) -> None:
    """Print a line for the user on stdout."""
    console(sys.stdout).print(text, style=style)


def complain(text: str) -> None:
    """Print a line about a problem on stderr."""
    console(sys.stderr).print(text, style="red")


def line_width(stream: TextIO | None = None) -> int:
    """Return the terminal's width when stream is one, else no limit."""
    stream = stream or sys.stdout
    return shutil.get_terminal_size().columns if stream.isatty() else UNLIMITED_WIDTH


def safe(name: str) -> str:
    """Return a file name fit for a terminal: control and format characters escaped, bytes
    that are not UTF-8 shown as U+FFFD (as the ledger, the API and the reports show them)."""
    from docproc.model import printable

    return escape(printable(name))


def clip(text: str, width: int) -> str:
    """Return text cut to width, an ellipsis marking the cut."""
    return text if len(text) <= width else text[:max(1, width - 1)] + "…"


def plural(count: int, word: str) -> str:
    """Return "1 file" or "3 files"."""
    return f"{count} {word}{'s' if count != 1 else ''}"


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str], right: Sequence[int] = (),
          indent: str = "  ", width: int = UNLIMITED_WIDTH) -> str:
    """Return rows as aligned text columns under headers; columns in right align right.

    Text columns wrap, or are cut with an ellipsis, so that the table fits width.
    """
    grid = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 1), header_style=None)
    cells = [["-" if cell is None else str(cell) for cell in row] for row in rows]
    for index, header in enumerate(headers):
        # Numbers (the right-aligned columns) keep their width; names and words give way.
        whole = max(len(row[index]) for row in [[str(h) for h in headers], *cells])
        grid.add_column(str(header), justify="right" if index in right else "left",
                        overflow="ellipsis", width=whole if index in right else None)
    for row in cells:
        grid.add_row(*row)
    plain = Console(file=io.StringIO(), width=max(20, width - len(indent)), color_system=None,
                    force_terminal=False, markup=False, emoji=False, highlight=False)
    with plain.capture() as captured:
        plain.print(grid)
    return "\n".join((indent + line).rstrip() for line in captured.get().splitlines())


class _RateColumn(ProgressColumn):
    """How many units a second the work goes at."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        shown = "?" if speed is None else f"{speed:.1f}"
        return Text(f"{shown} {self.unit}/s", style="progress.data.speed")


class Progress:
    """A progress bar with rate and time left on a terminal; occasional plain lines otherwise."""

    def __init__(self, label: str, stream: TextIO | None = None,
                 unit: Literal["bytes", "files", "documents"] = "files") -> None:
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._bar: RichProgress | None = None
        self._task: TaskID | None = None
        self._shown = ""
        # Without a terminal, work that ends within a few seconds prints no progress at all.
        self._printed_at = float("-inf") if self.tty else time.monotonic()

    def update(self, done: float, total: float, text: str = "") -> None:
        """Show how far the work is: done out of total, and a short note."""
        fraction = 1.0 if total <= 0 else max(0.0, min(1.0, done / total))
        if self.tty:
            self._draw(done, total, fraction, text)
        elif text != self._shown and time.monotonic() - self._printed_at >= PLAIN_PROGRESS_SECONDS:
            self.stream.write(f"{self.label}: {fraction:.0%} {text}\n")
            self.stream.flush()
            self._shown, self._printed_at = text, time.monotonic()

    def _draw(self, done: float, total: float, fraction: float, text: str) -> None:
        if self._bar is None or self._task is None:
            rate = TransferSpeedColumn() if self.unit == "bytes" else _RateColumn(self.unit)
            self._bar = RichProgress(
                TextColumn(self.label, markup=False), BarColumn(), TaskProgressColumn(), rate,
                TimeRemainingColumn(), TextColumn("{task.fields[note]}", markup=False),
                console=console(self.stream), transient=True, auto_refresh=False,
                redirect_stdout=False, redirect_stderr=False,
            )
            self._task = self._bar.add_task(self.label, total=total, note=text)
        self._bar.update(self._task, completed=done, total=total, note=text)
        if not self._bar.live.is_started:
            self._bar.start()
        now = time.monotonic()
        if fraction >= 1 or now - self._printed_at >= REDRAW_SECONDS:
            self._printed_at = now
            self._bar.refresh()

    def close(self) -> None:
        """End the progress bar; the terminal's line is left empty."""
        if self._bar is not None:
            self._bar.stop()
            self._bar, self._task = None, None
