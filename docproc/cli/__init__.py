"""The `docproc` command line: the one place that prints and chooses exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from docproc.cli import config, ingest, process, retry, schedule, services, status, up
from docproc.cli.common import EXIT_OK, EXIT_USAGE
from docproc.cli.parser import build_parser
from docproc.errors import ConfigError
from docproc.instance import die_with_parent, dies_with_supervisor
from docproc.names import escape_log_messages
from docproc.settings import Settings, load_settings

Command = Callable[[Settings, argparse.Namespace], int]

COMMANDS: dict[str, Command] = {
    "up": up.cmd_up, "broker": services.cmd_broker, "watch": services.cmd_watch,
    "worker": services.cmd_worker, "beat": services.cmd_beat, "api": services.cmd_api,
    "process": process.cmd_process, "status": status.cmd_status, "ingest": ingest.cmd_ingest,
    "retry": retry.cmd_retry, "report": schedule.cmd_report, "purge": schedule.cmd_purge,
    "config": config.cmd_config,
}


# The programs of deploy/supervisord.conf.
SUPERVISED = frozenset({"broker", "watch", "worker", "beat", "api"})


def setup_logging(component: str, level: int = logging.INFO) -> None:
    """Log one readable line per event, prefixed with the component's name.

    Messages are escaped (docproc.names): a file name holding a newline or an ESC sequence
    can neither forge a line nor reach a terminal as control.
    """
    escape_log_messages()
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s {component:<7} %(levelname)-5s %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )


def main(argv: list[str] | None = None) -> int:
    """Run one docproc command; return its exit status."""
    args = build_parser().parse_args(argv)
    setup_logging(args.command)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"docproc: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # Whatever docproc writes (the outbox above all: reports, daily reports, retried/ folders)
    # gets the configured modes, however the process was started; docproc.outbox sets a
    # document folder's modes explicitly too.
    os.umask(settings.outbox_umask)
    if args.command in SUPERVISED and dies_with_supervisor():
        # kill -9 of supervisord must leave no orphan running on (a second `up` would
        # then start a second broker on the same files).
        die_with_parent()
    try:
        return COMMANDS[args.command](settings, args)
    except KeyboardInterrupt:
        return EXIT_OK
