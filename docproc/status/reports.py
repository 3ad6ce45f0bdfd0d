"""Read documents' outputs, only ever inside the outbox, and their reports once."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from docproc.model import TERMINAL
from docproc.report import Report, read_file
from docproc.settings import Settings

log = logging.getLogger("docproc.stats")


def inside_outbox(settings: Settings, path: Path) -> Path | None:
    """Return the real path of path when it lies inside the outbox, else None."""
    root = settings.outbox.resolve()
    try:
        real = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return None
    return real if real.is_relative_to(root) and real != root else None


def output_file(settings: Settings, record: dict[str, Any], name: str) -> Path | None:
    """Return one of a finished document's output files, if it exists inside the outbox."""
    outdir = record.get("outdir")
    if not outdir:
        return None
    real = inside_outbox(settings, Path(outdir) / name)
    return real if real is not None and real.is_file() else None


class ReportCache:
    """Read report.json files once: a written report never changes."""

    def __init__(self, settings: Settings, size: int = 4096) -> None:
        self.settings = settings
        self.size = size
        self._reports: OrderedDict[str, Report] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, record: dict[str, Any]) -> Report | None:
        """Return the report of a finished document, or None when there is none to read."""
        outdir = record.get("outdir")
        if not outdir or record.get("status") not in TERMINAL:
            return None
        with self._lock:
            if outdir in self._reports:
                self._reports.move_to_end(outdir)
                return self._reports[outdir]
        path = output_file(self.settings, record, "report.json")
        if path is None:
            return None
        try:
            report = read_file(path)
        except (OSError, ValueError) as exc:
            log.warning("cannot read %s: %s", path, exc)
            return None
        with self._lock:
            self._reports[outdir] = report
            while len(self._reports) > self.size:
                self._reports.popitem(last=False)
        return report
