"""Send a failed document through the pipeline again, as a new receipt of its kept original.

The original goes back into the inbox under its relative path (through a hidden temporary
name, then a rename), so the watcher claims it like any dropped file and it gets a new key
and a new report. The failed attempt is kept, not deleted: its record becomes `retried` and
its folder moves from `failed/<day>/` to `retried/<day>/`, so that `failed/` holds only
the documents that still need someone, and `documents/` + `failed/` one report per receipt.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from docproc.errors import DocprocError
from docproc.ledger.redis_ledger import RedisLedger
from docproc.model import State, name_from_hex, printable
from docproc.settings import Settings
from docproc.status.reports import inside_outbox

log = logging.getLogger("docproc.retry")
RETRIED_SECTION = "retried"


# Why a document cannot be sent again: no such document, not (or no longer) failed, its
# original gone, its copy into the inbox failed, or too many of its name wait there.
Refusal = Literal["unknown", "not_failed", "gone", "not_copied", "crowded"]


class RetryError(DocprocError):
    """A document that cannot be sent again; reason says why, message what to do."""

    def __init__(self, reason: Refusal, message: str) -> None:
        super().__init__(message)
        self.reason: Refusal = reason
        self.message = message


@dataclass(frozen=True)
class Retried:
    """Where a retried document went: its new path in the inbox and its old folder's place.

    relpath is text (valid UTF-8, as the ledger records names); inbox_path is the file as
    the filesystem has it, bytes that are not UTF-8 included.
    """

    key: str
    inbox_path: Path
    relpath: str
    old_folder: Path | None


def retry_document(settings: Settings, ledger: RedisLedger, key: str) -> Retried:
    """Send one failed document again; raise RetryError when it cannot be."""
    record = ledger.get(key)
    if record is None:
        raise RetryError("unknown", f"no document {key}")
    if record.get("status") != State.FAILED:
        raise RetryError("not_failed", f"{key} is {record.get('status')}: only failed "
                                       "documents can be retried")
    folder: Path | None = None
    original = _spooled_original(settings, record)
    if original is None:
        folder = _failed_folder(settings, record)
        original = _original(folder, record)
    relpath = _free_relpath(settings.inbox, record)
    target = settings.inbox / relpath
    temp = target.parent / f".{target.name}.{secrets.token_hex(4)}.docproc-retry.part"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(original, temp)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise RetryError("not_copied",
                         f"cannot copy {key}'s original into the inbox: {exc}") from exc
    outcome = ledger.mark_retried(key)
    if outcome != State.RETRIED:
        temp.unlink(missing_ok=True)
        raise RetryError("not_failed",
                         f"{key} is {outcome or 'gone'}: only failed documents can be retried")
    try:
        # Whole, under its own name at once: the watcher sees a file moved in.
        os.rename(temp, target)
    except OSError as exc:
        ledger.unmark_retried(key)
        temp.unlink(missing_ok=True)
        raise RetryError("not_copied",
                         f"cannot put {key}'s original into the inbox: {exc}") from exc
    if folder is None:
        original.unlink(missing_ok=True)
        original.with_suffix(".claim.json").unlink(missing_ok=True)
        moved = None
    else:
        moved = _move_aside(settings, folder)
    # As the new receipt's record will name it: a name that is not UTF-8 cannot go to Redis.
    shown = printable(relpath)
    ledger.update(key, outdir=str(moved or folder or ""), retry_relpath=shown)
    log.debug("%s sent again as %s", key, shown)
    return Retried(key, target, shown, moved)


def _spooled_original(settings: Settings, record: dict[str, Any]) -> Path | None:
    """Return the spooled original of a document that failed without an outbox folder."""
    if record.get("outdir") or not record.get("token"):
        return None
    spooled = settings.spool_dir / f"{record['token']}.data"
    return spooled if spooled.is_file() else None


def _failed_folder(settings: Settings, record: dict[str, Any]) -> Path:
    outdir = record.get("outdir")
    folder = inside_outbox(settings, Path(outdir)) if outdir else None
    if folder is None or not folder.is_dir():
        raise RetryError("gone",
                         f"{record['key']} has no failed folder in the outbox to retry from")
    return folder


def _raw_name(record: dict[str, Any]) -> str:
    try:
        name = name_from_hex(record.get("raw_name") or "")
    except ValueError:
        return ""
    return "" if "/" in name or name in (".", "..") else name


def _original(folder: Path, record: dict[str, Any]) -> Path:
    """Return the kept original in a failed folder."""
    name = _raw_name(record)
    candidates = [folder / "original" / name] if name else []
    with contextlib.suppress(OSError):
        candidates += sorted((folder / "original").iterdir())
    for candidate in candidates:
        real = candidate.resolve()
        if real.is_relative_to(folder) and real.is_file():
            return real
    raise RetryError("gone", f"the original of {record['key']} is no longer in {folder}")


def _free_relpath(inbox: Path, record: dict[str, Any]) -> str:
    """Return the document's relative path in the inbox, or a free variant of it."""
    relpath = str(record.get("relpath") or record.get("name") or record["key"])
    parts = [part for part in relpath.split("/") if part not in ("", ".", "..")] or [""]
    # The name as the filesystem gave it, bytes that are not UTF-8 included.
    parts[-1] = _raw_name(record) or parts[-1] or record["key"]
    folder, name = "/".join(parts[:-1]), parts[-1]
    stem, suffix = os.path.splitext(name)
    candidate = name
    for number in range(2, 1000):
        path = f"{folder}/{candidate}" if folder else candidate
        if not os.path.lexists(inbox / path):
            return path
        # Never replace a file someone dropped meanwhile.
        candidate = f"{stem} (retry {number}){suffix}"
    raise RetryError("crowded", f"too many files named like {relpath} wait in the inbox")


def _move_aside(settings: Settings, folder: Path) -> Path | None:
    """Move a retried document's failed folder from failed/ to retried/; None if it cannot."""
    target = settings.outbox.resolve() / RETRIED_SECTION / folder.parent.name / folder.name
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(folder, target)
    except OSError as exc:
        log.warning("cannot move %s aside to %s: %s; it stays in failed/", folder, target, exc)
        return None
    return target


def failed_keys(ledger: RedisLedger) -> list[str]:
    """Return the keys of every failed document, newest first."""
    keys: list[str] = []
    cursor: str | None = None
    while True:
        records, cursor = ledger.page(statuses={State.FAILED}, limit=500, cursor=cursor,
                                      scan_limit=50_000)
        keys.extend(record["key"] for record in records)
        if cursor is None:
            return keys
