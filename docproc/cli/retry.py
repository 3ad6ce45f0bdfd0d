"""`docproc retry`: send failed documents through the pipeline again."""

from __future__ import annotations

import argparse

from docproc.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, connect
from docproc.cli.output import Progress, complain, plural, safe, say
from docproc.settings import Settings

# More documents than this get a progress bar instead of a line each.
LINES_UP_TO = 5


def cmd_retry(settings: Settings, args: argparse.Namespace) -> int:
    """Retry the documents named, or every failed one with --all-failed."""
    if not args.ids and not args.all_failed:
        complain("docproc retry: name document ids, or --all-failed")
        return EXIT_USAGE
    return retry(settings, args.ids, all_failed=args.all_failed)


def retry(settings: Settings, ids: list[str], all_failed: bool) -> int:
    """Send failed documents through the pipeline again, as new receipts of their originals."""
    from docproc import retry as retrying

    ledger = connect(settings, "retry")
    if ledger is None:
        return EXIT_FAILURE
    keys = list(dict.fromkeys([*ids, *(retrying.failed_keys(ledger) if all_failed else [])]))
    if not keys:
        say("no failed documents to retry")
        return EXIT_OK
    progress = Progress("retrying", unit="documents") if len(keys) > LINES_UP_TO else None
    sent, problems = 0, []
    for index, key in enumerate(keys, 1):
        try:
            retried = retrying.retry_document(settings, ledger, key)
        except retrying.RetryError as exc:
            problems.append((key, exc.message))
        except Exception as exc:  # one document never stops the others
            problems.append((key, f"could not be sent again: {type(exc).__name__}: {exc}"))
        else:
            sent += 1
            if progress is None:
                say(f"{safe(key)}  sent again as {safe(retried.relpath)}")
        if progress is not None:
            progress.update(index, len(keys), f"{index}/{len(keys)}")
    if progress is not None:
        progress.close()
    if sent:
        say(f"{plural(sent, 'document')} sent again: each comes out as a new "
            f"document; the failed attempt moved to {settings.outbox / 'retried'}")
    for key, message in problems:
        complain(f"docproc retry: {safe(key)}: {safe(message)}")
    return EXIT_FAILURE if problems else EXIT_OK
