"""Commands for people: status, ingest, retry (issue #5 completes them)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from docproc.settings import Settings


def status(settings: Settings, as_json: bool) -> int:
    """Print counts per state and the workers online; return the exit status."""
    from docproc.broker import broker_problem, redis_client
    from docproc.ledger import Ledger
    from docproc.status_api import online_workers

    problem = broker_problem(settings)
    if problem is not None:
        print(f"docproc status: {problem}", file=sys.stderr)
        return 1
    counts = Ledger(redis_client(settings)).counts()
    workers = online_workers(settings)
    if as_json:
        print(json.dumps({"counts": counts, "workers": workers}, indent=2))
    else:
        for state, count in counts.items():
            print(f"{state:<10} {count:>8}")
        print(f"workers    {', '.join(workers) or 'none online'}")
    return 0


def ingest(settings: Settings, paths: list[Path], wait: bool) -> int:
    """Copy files into the inbox (not built yet)."""
    print("docproc ingest: not built yet", file=sys.stderr)
    return 1


def retry(settings: Settings, ids: list[str], all_failed: bool) -> int:
    """Send failed documents again (not built yet)."""
    print("docproc retry: not built yet", file=sys.stderr)
    return 1
