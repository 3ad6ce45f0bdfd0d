"""Retention: remove outbox day folders, ledger records and spool leftovers past their time.

Documents (done and duplicate, and failed attempts that were retried) go after
`retention.days`; failed ones, which still need someone, after `retention.failed_days`; both
counted in whole UTC days of receipt, like the outbox day folders. Daily reports stay as long
as failed documents. Unfinished documents and their
spool files are never touched, and neither is the inbox. `docproc purge --dry-run` lists
what would go; Beat runs the `docproc.purge` task (schedule/tasks.py) at `schedule.purge`.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from redis import RedisError

from docproc.broker import redis_client
from docproc.inbox.spool import token_ns
from docproc.ledger.redis_ledger import RedisLedger
from docproc.model import TERMINAL, State
from docproc.settings import Settings
from docproc.units import human_bytes

DAY_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}$")
REPORT_NAME = re.compile(r"^daily-(\d{4}-\d{2}-\d{2})\.(json|html)$")
SPOOL_SUFFIXES = (".data", ".claim.json", ".claim.tmp", ".work")
BATCH = 500


@dataclass(frozen=True)
class Item:
    """One thing on disk to remove: a day folder, a report, a staging or spool leftover."""

    path: Path
    bytes: int
    documents: int = 0
    note: str = ""
    folder: bool = False


@dataclass
class Plan:
    """What a purge removes, decided before anything is removed."""

    done_before: datetime.date
    failed_before: datetime.date
    items: list[Item] = field(default_factory=list)
    records: list[str] = field(default_factory=list)
    unfinished: int = 0

    @property
    def bytes(self) -> int:
        return sum(item.bytes for item in self.items)


@dataclass
class Outcome:
    """What a purge removed, and what it could not."""

    bytes: int = 0
    items: int = 0
    records: int = 0
    errors: list[str] = field(default_factory=list)


def cutoffs(settings: Settings, now: datetime.datetime) -> tuple[datetime.date, datetime.date]:
    """Return the first UTC days kept: of documents, and of failed documents."""
    today = now.astimezone(datetime.UTC)
    keep = settings.retention
    return ((today - datetime.timedelta(days=keep.days)).date(),
            (today - datetime.timedelta(days=keep.failed_days)).date())


def size_of(path: Path) -> int:
    """Return the bytes of a file, or of every file below a folder (links not followed)."""
    try:
        info = path.lstat()
    except OSError:
        return 0
    if not path.is_dir() or path.is_symlink():
        return info.st_size
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += (Path(root) / name).lstat().st_size
            except OSError:
                continue
    return total


def _day(name: str) -> datetime.date | None:
    if not DAY_NAME.match(name):
        return None
    try:
        return datetime.date.fromisoformat(name)
    except ValueError:
        return None


def _day_folders(root: Path, before: datetime.date) -> list[Item]:
    if not root.is_dir():
        return []
    items = []
    for entry in sorted(root.iterdir()):
        day = _day(entry.name)
        if day is not None and day < before and entry.is_dir() and not entry.is_symlink():
            documents = sum(1 for child in entry.iterdir() if child.is_dir())
            items.append(Item(entry, size_of(entry), documents, folder=True))
    return items


def _reports(root: Path, before: datetime.date) -> list[Item]:
    if not root.is_dir():
        return []
    items = []
    for entry in sorted(root.iterdir()):
        match = REPORT_NAME.match(entry.name)
        day = _day(match.group(1)) if match else None
        if day is not None and day < before and entry.is_file():
            items.append(Item(entry, size_of(entry)))
    return items


def _staging(root: Path, before: datetime.datetime) -> list[Item]:
    """Return outbox folders whose writing was cut off (a crash) before the cutoff."""
    if not root.is_dir():
        return []
    items = []
    for entry in sorted(root.iterdir()):
        try:
            cut_off = entry.lstat().st_mtime < before.timestamp()
        except FileNotFoundError:  # a write that just finished and renamed its folder away
            continue
        if cut_off:
            items.append(Item(entry, size_of(entry), note="unfinished outbox write",
                              folder=entry.is_dir()))
    return items


def _claimed_at(token: str, path: Path) -> float:
    made = token_ns(token)
    return path.lstat().st_ctime if made is None else made / 1e9


def _spool(spool: Path, ledger: RedisLedger, before: datetime.datetime) -> list[Item]:
    """Return spool files received before the cutoff whose document is finished, and leftovers.

    A file the ledger does not know is a claim never recorded (the broker lost it): it stays,
    for the watcher's sweep to send on. Only its leftovers without the file itself go.
    """
    if not spool.is_dir():
        return []
    by_token: dict[str, list[Path]] = {}
    for entry in sorted(spool.iterdir()):
        suffix = next((s for s in SPOOL_SUFFIXES if entry.name.endswith(s)), None)
        if suffix is not None:
            by_token.setdefault(entry.name.removesuffix(suffix), []).append(entry)
    items = []
    for token, paths in by_token.items():
        key = ledger.key_for_token(token)
        record = ledger.get(key) if key else None
        if record is not None and record.get("status") not in TERMINAL:
            continue
        if record is None and any(path.name.endswith(".data") for path in paths):
            continue
        received = record.get("received_ts") if record else None
        if (received or _claimed_at(token, paths[0])) >= before.timestamp():
            continue
        note = (f"{record.get('relpath')}, {record.get('status')}" if record
                else "not in the ledger")
        items += [Item(path, size_of(path), note=note, folder=path.is_dir()) for path in paths]
    return items


def _records(ledger: RedisLedger, plan: Plan, done_before: float, failed_before: float) -> None:
    offset = 0
    while batch := ledger.received_before(done_before, offset, BATCH):
        offset += len(batch)
        keys = [key for key, _ in batch]
        for (key, received), record in zip(batch, ledger.get_many(keys), strict=True):
            status = record.get("status") if record else None
            if record is not None and status not in TERMINAL:
                plan.unfinished += 1
            elif status != State.FAILED or received < failed_before:
                plan.records.append(key)


def make_plan(settings: Settings, ledger: RedisLedger, now: datetime.datetime) -> Plan:
    """Decide what a purge at `now` removes."""
    done_before, failed_before = cutoffs(settings, now)
    plan = Plan(done_before, failed_before)
    done_cut = datetime.datetime.combine(done_before, datetime.time(), datetime.UTC)
    failed_cut = datetime.datetime.combine(failed_before, datetime.time(), datetime.UTC)
    outbox = settings.outbox
    plan.items += _day_folders(outbox / "documents", done_before)
    plan.items += _day_folders(outbox / "retried", done_before)
    plan.items += _day_folders(outbox / "failed", failed_before)
    plan.items += _reports(outbox / "reports", failed_before)
    plan.items += _staging(outbox / ".incoming", done_cut)
    plan.items += _spool(settings.spool_dir, ledger, done_cut)
    _records(ledger, plan, done_cut.timestamp(), failed_cut.timestamp())
    inbox = settings.inbox.resolve()
    plan.items = [item for item in plan.items if not item.path.resolve().is_relative_to(inbox)]
    return plan


def apply_plan(plan: Plan, ledger: RedisLedger) -> Outcome:
    """Remove what a plan lists: files and folders first, then the ledger records."""
    outcome = Outcome()
    for item in plan.items:
        try:
            if item.path.is_dir() and not item.path.is_symlink():
                shutil.rmtree(item.path)
            else:
                item.path.unlink(missing_ok=True)
        except OSError as exc:
            outcome.errors.append(f"could not remove {item.path}: {exc.strerror or exc}")
            continue
        outcome.bytes += item.bytes
        outcome.items += 1
    for at in range(0, len(plan.records), BATCH):
        outcome.records += len(ledger.forget(plan.records[at:at + BATCH]))
    return outcome


def describe(plan: Plan) -> list[str]:
    """Return the lines that list a plan: one per folder or file, then the ledger records."""
    lines = []
    for item in plan.items:
        shown = f"{item.path}/" if item.folder else str(item.path)
        what = (f"{item.documents} document{'s' if item.documents != 1 else ''}"
                if item.folder and not item.note else item.note)
        size = human_bytes(item.bytes)
        lines.append(f"  {size:>9}  {shown}" + (f"  ({what})" if what else ""))
    if plan.records:
        lines.append(f"  ledger: {len(plan.records)} document records")
    return lines


def heading(plan: Plan, settings: Settings) -> str:
    """Return the line that says which documents a plan's cutoffs and settings let go."""
    return (f"retention: documents received before {plan.done_before} "
            f"(retention.days {settings.retention.days}), failed ones before "
            f"{plan.failed_before} (retention.failed_days {settings.retention.failed_days})")


@dataclass(frozen=True)
class Purge:
    """A purge: what it planned, and what applying the plan did (nothing with dry_run)."""

    plan: Plan
    outcome: Outcome
    dry_run: bool = False

    @property
    def empty(self) -> bool:
        """Return whether the plan had nothing to remove."""
        return not self.plan.items and not self.plan.records


class LedgerUnavailable(RedisError):
    """The ledger did not answer while planning: nothing was removed."""


def purge(settings: Settings, ledger: RedisLedger | None = None, *, dry_run: bool = False,
          now: datetime.datetime | None = None) -> Purge:
    """Apply retention now, or with dry_run only plan it.

    Raises LedgerUnavailable when the ledger does not answer before anything is removed:
    without it, finished documents cannot be told from unfinished ones.
    """
    ledger = ledger or RedisLedger(redis_client(settings))
    try:
        ledger.redis.ping()
        plan = make_plan(settings, ledger, now or datetime.datetime.now(datetime.UTC))
    except RedisError as exc:
        raise LedgerUnavailable(str(exc)) from exc
    return Purge(plan, Outcome() if dry_run else apply_plan(plan, ledger), dry_run)
