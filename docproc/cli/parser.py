"""The argument parser of every docproc command."""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

DESCRIPTION = ("docproc: files dropped into an inbox come out processed in an outbox (a report, "
               "the text and a thumbnail each). `docproc up` runs it all.")


def _day(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of every command."""
    parser = argparse.ArgumentParser(prog="docproc", description=DESCRIPTION)
    config_help = "configuration file (default: $DOCPROC_CONFIG, else ./config/docproc.yaml)"
    parser.add_argument("-c", "--config", help=config_help)
    # Also after the command (`docproc up --config F`); SUPPRESS keeps one given before it.
    after = argparse.ArgumentParser(add_help=False)
    after.add_argument("-c", "--config", default=argparse.SUPPRESS, help=config_help)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=summary, parents=[after])

    command("up", "run everything under supervisord in the foreground")
    command("broker", "run the embedded broker (when broker_url is embedded)")
    command("watch", "run the inbox watcher")
    worker = command("worker", "run a Celery worker")
    worker.add_argument("--name", help="worker node name (default worker1@%%h)")
    worker.add_argument("--concurrency", type=int, help="child processes (default from config)")
    worker.add_argument("--queues", help="comma-separated queues to consume (default all: docproc,"
                        "docproc.finish,docproc.ocr,docproc.control)")
    command("beat", "run Celery Beat (schedules)")
    command("api", "run the status API")
    process = command("process", "process files in this process, no broker")
    process.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    process.add_argument("--outbox", type=Path, help="write here instead of the configured outbox")
    process.add_argument("--jobs", type=int, default=1, help="processes to use (default 1)")
    status = command("status", "counts per state, queues, workers, failures")
    status.add_argument("--json", action="store_true")
    ingest = command("ingest", "copy files or folders into the inbox")
    ingest.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    ingest.add_argument("--wait", action="store_true", help="show progress until all are done")
    retry = command("retry", "send failed documents through the pipeline again")
    retry.add_argument("ids", nargs="*", metavar="ID")
    retry.add_argument("--all-failed", action="store_true")
    report = command("report", "build the daily report now")
    report.add_argument("--date", type=_day, help="YYYY-MM-DD (default: yesterday, local time)")
    purge = command("purge", "apply retention now")
    purge.add_argument("--dry-run", action="store_true", help="list what would go, change nothing")
    config = command("config", "check or show the configuration")
    config.add_argument("action", choices=["check", "show"])
    return parser
