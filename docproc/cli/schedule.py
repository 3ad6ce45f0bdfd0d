"""`docproc report` and `docproc purge`: the scheduled work, run now."""

from __future__ import annotations

import argparse
import datetime
import sys

from docproc.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from docproc.settings import Settings
from docproc.units import human_bytes


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    """Build the daily report of a day (yesterday by default) now and say where it went."""
    from docproc.schedule.daily import REPORTS, build_now, headline, yesterday

    today = datetime.date.today()
    day = args.date or yesterday()
    if day > today:
        print(f"docproc report: {day} is in the future", file=sys.stderr)
        return EXIT_USAGE
    try:
        built = build_now(settings, day)
    except OSError as exc:
        print(f"docproc report: cannot write into {settings.outbox / REPORTS}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
    if built.note:
        print(f"docproc report: {built.note}", file=sys.stderr)
    print(headline(built.report))
    if built.report["not_summarized"]:
        print(f"  {len(built.report['not_summarized'])} could not be summarized "
              "(listed in the report)")
    if built.unfinished:
        print(f"  {built.unfinished} still being processed")
    for path in built.paths:
        print(f"  {path}")
    return EXIT_OK


def cmd_purge(settings: Settings, args: argparse.Namespace) -> int:
    """Apply retention now (or list what it would remove) and say what went."""
    from docproc.schedule.retention import LedgerUnavailable, describe, heading, purge

    try:
        done = purge(settings, dry_run=args.dry_run)
    except LedgerUnavailable as exc:
        print(f"docproc purge: the ledger at {settings.redis_url} does not answer ({exc}); purge "
              "needs it to tell finished documents from unfinished ones: start docproc "
              "(docproc up) first", file=sys.stderr)
        return EXIT_FAILURE
    plan, outcome = done.plan, done.outcome
    print(heading(plan, settings))
    if done.empty:
        print("nothing to purge")
    elif done.dry_run:
        print("would remove:")
        print("\n".join(describe(plan)))
        print(f"would free {human_bytes(plan.bytes)}; nothing was changed (--dry-run)")
    else:
        print("removed:")
        print("\n".join(describe(plan)))
        print(f"freed {human_bytes(outcome.bytes)}, forgot {outcome.records} ledger records")
        for error in outcome.errors:
            print(f"docproc purge: {error}", file=sys.stderr)
        if outcome.errors:
            return EXIT_FAILURE
    if plan.unfinished:
        print(f"kept {plan.unfinished} unfinished documents received before {plan.done_before}")
    return EXIT_OK
