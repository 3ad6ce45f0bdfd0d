"""`docproc ingest`: copy files and folders into the inbox, and follow them with --wait."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docproc.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, connect
from docproc.cli.output import Progress, complain, line_width, plural, safe, say
from docproc.cli.status import failure_lines
from docproc.inbox.ingest import Planned, copy_into_inbox, finished, follow, plan_ingest, tally
from docproc.model import State
from docproc.report import Report
from docproc.settings import Settings
from docproc.units import human_bytes

if TYPE_CHECKING:
    from docproc.ledger.redis_ledger import RedisLedger


class CopyBar:
    """Shows copying into the inbox as a progress bar over the bytes."""

    def __init__(self) -> None:
        self.bar = Progress("copying", unit="bytes")

    def copied(self, done_bytes: int, total_bytes: int, file_number: int, files: int) -> None:
        self.bar.update(done_bytes, total_bytes, f"{file_number}/{files} files")


class FollowBar:
    """Shows the ingested files' way through the pipeline as a progress bar."""

    def __init__(self) -> None:
        self.bar = Progress("processing", unit="documents")

    def tallied(self, counts: dict[str, int], total: int) -> None:
        self.bar.update(finished(counts), total, progress_text(counts, total))

    def not_picked_up(self, watchers_online: bool) -> None:
        self.bar.close()
        complain("docproc ingest: nothing was picked up yet; "
                 + ("the watcher may be busy" if watchers_online
                    else "is the watcher running? (docproc up)"))


def progress_text(counts: dict[str, int], total: int) -> str:
    """Return how many files are finished, running, queued, waiting and failed."""
    parts = [f"{finished(counts)}/{total} finished"]
    # "copied": in the inbox, not yet in the ledger (no document state yet).
    for state in (State.RUNNING, State.QUEUED, "copied", State.FAILED):
        if counts.get(state):
            label = "waiting to be claimed" if state == "copied" else state
            parts.append(f"{counts[state]} {label}")
    return ", ".join(parts)


def cmd_ingest(settings: Settings, args: argparse.Namespace) -> int:
    """Copy files and folders into the inbox; with --wait, follow them until all are finished."""
    paths: list[Path] = args.paths
    missing = [path for path in paths if not path.exists()]
    if missing:
        complain(f"docproc ingest: no such file or folder: {safe(str(missing[0]))}")
        return EXIT_USAGE
    planned, warnings = plan_ingest(settings, paths)
    for warning in warnings:
        complain(f"docproc ingest: {safe(warning)}")
    if not planned:
        complain("docproc ingest: nothing to copy")
        return EXIT_FAILURE
    ledger = connect(settings, "ingest") if args.wait else None
    if args.wait and ledger is None:
        return EXIT_FAILURE
    started = time.time()
    settings.inbox.mkdir(parents=True, exist_ok=True)
    copying = CopyBar()
    try:
        copy_into_inbox(settings, planned, copying)
    except OSError as exc:
        copying.bar.close()
        complain(f"docproc ingest: cannot copy into {settings.inbox}: {safe(str(exc))}")
        return EXIT_FAILURE
    copying.bar.close()
    total_bytes = sum(item.bytes for item in planned)
    say(f"copied {plural(len(planned), 'file')} ({human_bytes(total_bytes)}) "
        f"into {settings.inbox}")
    if ledger is None:
        return EXIT_OK
    following = FollowBar()
    try:
        follow(ledger, planned, started, following)
    except KeyboardInterrupt:
        following.bar.close()
        complain("\nstopped waiting; the files are still being processed "
                 "(docproc status shows them)")
        return EXIT_FAILURE
    following.bar.close()
    return print_summary(settings, ledger, planned, time.time() - started)


def print_summary(settings: Settings, ledger: RedisLedger, planned: list[Planned],
                  seconds: float) -> int:
    """Print what became of each file; return 1 when any failed."""
    from docproc.status.reports import ReportCache

    counts = tally(planned)
    parts = [f"{counts[state]} {state}"
             for state in (State.DONE, State.DUPLICATE, State.FAILED, State.RETRIED)
             if counts.get(state)]
    say(f"{plural(len(planned), 'file')} in {seconds:.1f} s: " + ", ".join(parts))
    failed = [item for item in planned if item.status == State.FAILED]
    if failed:
        reports = ReportCache(settings)
        say("failed:")
        say("\n".join(failure_lines(
            [(item.key or "", item.relpath, "", _error_of(reports.get(item.extra)),
              item.extra.get("error_type")) for item in failed], line_width())))
        say(f"their reports and originals are in {settings.outbox / 'failed'}")
    return EXIT_FAILURE if failed else EXIT_OK


def _error_of(report: Report | None) -> dict[str, Any] | None:
    return dict(report.error) if report and report.error else None
