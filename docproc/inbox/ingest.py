"""Copy files and folders into the inbox whole, then follow them through the ledger."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from docproc.model import TERMINAL
from docproc.settings import Settings

if TYPE_CHECKING:
    from docproc.ledger.redis_ledger import RedisLedger

COPY_CHUNK = 1 << 20
POLL_SECONDS = 0.5
# Files still not picked up after this long get one question about the watcher.
NOT_PICKED_UP_SECONDS = 15.0


@dataclass
class Planned:
    """A file to copy into the inbox and follow through the pipeline."""

    source: Path
    relpath: str
    bytes: int
    sha256: str = ""
    key: str | None = None
    status: str = "copied"
    extra: dict[str, Any] = field(default_factory=dict)


class CopyProgress(Protocol):
    """Told how far copying into the inbox is."""

    def copied(self, done_bytes: int, total_bytes: int, file_number: int, files: int) -> None:
        """Take the bytes copied so far and the number of the file being copied."""


class FollowProgress(Protocol):
    """Told how far the ingested files are through the pipeline."""

    def tallied(self, counts: dict[str, int], total: int) -> None:
        """Take the files per state, out of total."""

    def not_picked_up(self, watchers_online: bool) -> None:
        """Take that no file was claimed yet, and whether a watcher says it is online."""


def plan_ingest(
    settings: Settings, paths: Sequence[Path]
) -> tuple[list[Planned], list[str]]:
    """Return the files to copy with their paths in the inbox, and warnings about the rest."""
    from docproc.inbox.ignore import is_ignored

    inbox = settings.inbox.resolve()
    planned: list[Planned] = []
    warnings: list[str] = []
    for path in paths:
        real = path.resolve()
        if real == inbox or real.is_relative_to(inbox):
            warnings.append(f"{path} is in the inbox already")
            continue
        for source, relpath in _walk(path):
            if is_ignored(relpath, settings.watcher.ignore):
                warnings.append(f"{source}: skipped, the watcher ignores such names "
                                "(watcher.ignore)")
                continue
            try:
                size = source.stat().st_size
            except OSError as exc:
                warnings.append(f"{source}: cannot read it: {exc.strerror or exc}")
                continue
            planned.append(Planned(source, relpath, size))
    return planned, warnings


def _walk(path: Path) -> Iterator[tuple[Path, str]]:
    """Yield each regular file under path and its relative path in the inbox."""
    if not path.is_dir():
        if path.is_file():
            yield path, path.name
        return
    base = path.resolve().name or "ingested"
    for folder, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            source = Path(folder) / name
            if source.is_file():
                relative = source.relative_to(path).as_posix()
                yield source, f"{base}/{relative}"


def _free_target(inbox: Path, relpath: str, taken: set[str]) -> str:
    """Return relpath, or a variant of it, that names nothing in the inbox yet."""
    folder, _, name = relpath.rpartition("/")
    stem, suffix = os.path.splitext(name)
    candidate, number = relpath, 1
    while candidate in taken or os.path.lexists(inbox / candidate):
        number += 1
        name = f"{stem} ({number}){suffix}"
        candidate = f"{folder}/{name}" if folder else name
    taken.add(candidate)
    return candidate


def copy_into_inbox(settings: Settings, planned: list[Planned], progress: CopyProgress) -> None:
    """Copy each planned file into the inbox whole (temporary name, then rename), hashing it.

    A folder new to the inbox is built under a hidden name and renamed in whole: a file
    renamed into a folder made a moment before could be seen before the folder's watch
    exists, as a file found by a scan, which must settle (a broken one waits out
    watcher.incomplete_grace_seconds).
    """
    inbox = settings.inbox
    total = sum(item.bytes for item in planned) or 1
    copied = 0
    taken: set[str] = set()
    staged: dict[str, Path] = {}  # top-level folder new to the inbox: where it is built
    try:
        for index, item in enumerate(planned, 1):
            item.relpath = _free_target(inbox, item.relpath, taken)
            top, _, rest = item.relpath.partition("/")
            if rest and (top in staged or not os.path.lexists(inbox / top)):
                if top not in staged:
                    staged[top] = inbox / f".{top}.{secrets.token_hex(4)}.docproc-ingest"
                target = staged[top] / rest
            else:
                target = inbox / item.relpath

            def shown(size: int, before: int = copied, number: int = index) -> None:
                progress.copied(before + size, total, number, len(planned))

            item.sha256, item.bytes = _copy_whole(item.source, target, shown)
            copied += item.bytes
    finally:
        # Stopped midway too: what was copied whole goes in, nothing stays hidden in the inbox.
        for top, folder in staged.items():
            _rename_in(folder, inbox / top)


def _copy_whole(source: Path, target: Path, on_bytes: Callable[[int], None]) -> tuple[str, int]:
    """Copy source to target under a temporary name, then rename it; return (sha256, bytes)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # Hidden and *.part: the watcher ignores the file until it is renamed into place.
    temp = target.parent / f".{target.name}.{secrets.token_hex(4)}.docproc-ingest.part"
    digest = hashlib.sha256()
    size = 0
    try:
        with source.open("rb") as reader, temp.open("wb") as writer:
            while chunk := reader.read(COPY_CHUNK):
                writer.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                on_bytes(size)
        shutil.copystat(source, temp)
        # The watcher may claim the file the moment it has its name: touch it no more.
        os.rename(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return digest.hexdigest(), size


def _rename_in(folder: Path, target: Path) -> None:
    """Rename a folder built under a hidden name into place; merge it file by file if taken."""
    try:
        os.rename(folder, target)
        return
    except OSError:  # a folder of that name appeared meanwhile
        pass
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            destination = target / path.relative_to(folder)
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.rename(path, destination)
    shutil.rmtree(folder, ignore_errors=True)


def follow(ledger: RedisLedger, planned: list[Planned], started: float,
           progress: FollowProgress) -> None:
    """Poll the ledger until every planned file has reached an end state."""
    from docproc.model import printable

    by_source = {(printable(item.relpath), item.sha256): item for item in planned}
    since = started - 1
    seen: set[str] = set()
    ask_at = time.monotonic() + NOT_PICKED_UP_SECONDS
    while True:
        since = _match_new(ledger, by_source, since, seen)
        _refresh_states(ledger, planned)
        counts = tally(planned)
        progress.tallied(counts, len(planned))
        if finished(counts) == len(planned):
            return
        if time.monotonic() > ask_at and counts.get("copied", 0) == len(planned):
            ask_at = float("inf")
            progress.not_picked_up(bool(ledger.published("watcher")))
        time.sleep(POLL_SECONDS)


def _match_new(ledger: RedisLedger, by_source: dict[tuple[str, str], Planned], since: float,
               seen: set[str]) -> float:
    """Give planned files the keys of the receipts recorded since a time; return the newest."""
    newest, cursor = since, None
    while True:
        records, cursor = ledger.page(since=since, limit=500, cursor=cursor)
        for record in records:
            newest = max(newest, float(record.get("received_ts") or since))
            if record["key"] in seen:
                continue
            seen.add(record["key"])
            item = by_source.get((record.get("relpath", ""), record.get("sha256", "")))
            if item is not None and item.key is None:
                item.key = record["key"]
        if cursor is None:
            return newest


def _refresh_states(ledger: RedisLedger, planned: list[Planned]) -> None:
    going = [item for item in planned if item.key is not None and item.status not in TERMINAL]
    keys = [item.key for item in going if item.key is not None]
    for item, record in zip(going, ledger.get_many(keys), strict=True):
        if record is not None:
            item.status, item.extra = record["status"], record


def tally(planned: list[Planned]) -> dict[str, int]:
    """Return how many planned files are in each state."""
    counts: dict[str, int] = {}
    for item in planned:
        counts[item.status] = counts.get(item.status, 0) + 1
    return counts


def finished(counts: dict[str, int]) -> int:
    """Return how many files of a tally have reached an end state."""
    return sum(counts.get(state, 0) for state in TERMINAL)
