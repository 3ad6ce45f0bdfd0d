"""`docproc process`: files through the pipeline in this process, no broker."""

from __future__ import annotations

import argparse
import sys

from docproc.cli.common import EXIT_OK, EXIT_USAGE
from docproc.model import State
from docproc.names import escape
from docproc.settings import Settings


def cmd_process(settings: Settings, args: argparse.Namespace) -> int:
    """Process the named files and folders; print one line per document."""
    from docproc.worker.in_process import process_paths

    missing = [path for path in args.paths if not path.exists()]
    if missing:
        print(f"docproc process: no such file or folder: {escape(str(missing[0]))}",
              file=sys.stderr)
        return EXIT_USAGE
    outbox = (args.outbox or settings.outbox).resolve()
    results = process_paths(args.paths, settings, outbox, jobs=args.jobs)
    for relpath, status, folder in results:
        print(f"{status:<9} {escape(relpath)} -> {escape(str(folder))}")
    failed = sum(1 for _, status, _ in results if status == State.FAILED)
    print(f"{len(results)} processed, {failed} failed", file=sys.stderr)
    return EXIT_OK
