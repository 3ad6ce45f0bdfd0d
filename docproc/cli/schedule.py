"""`docproc report` and `docproc purge`: the scheduled work, run now."""

from __future__ import annotations

import argparse

from docproc.settings import Settings


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    from docproc.daily import report_command

    return report_command(settings, args.date)


def cmd_purge(settings: Settings, args: argparse.Namespace) -> int:
    from docproc.retention import purge_command

    return purge_command(settings, dry_run=args.dry_run)
