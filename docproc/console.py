"""Commands for people: status, ingest and retry, with tables, progress bars and summaries."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from docproc.ledger import TERMINAL
from docproc.names import escape
from docproc.settings import Settings
from docproc.units import human_bytes

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
POLL_SECONDS = 0.5
# A terminal's progress line is redrawn at most this often.
REDRAW_SECONDS = 0.1
# Without a terminal, a progress line is printed at most this often.
PLAIN_PROGRESS_SECONDS = 5.0
COPY_CHUNK = 1 << 20
# Why the watcher waits on a file, in words (docproc.watcher.WAIT_REASONS).
WAIT_WORDS = {
    "open_for_writing": "open for writing",
    "quiet_period": "quiet period after close",
    "incomplete": "incomplete structure",
    "settling": "settling",
    "empty": "empty, waiting for content",
}


# Output helpers.

class Progress:
    """A one-line progress bar on a terminal; occasional plain lines otherwise."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._shown = ""
        # Without a terminal, work that ends within a few seconds prints no progress at all.
        self._printed_at = float("-inf") if self.tty else time.monotonic()

    def update(self, done: float, total: float, text: str = "") -> None:
        """Show how far the work is: done out of total, and a short note."""
        fraction = 1.0 if total <= 0 else max(0.0, min(1.0, done / total))
        if self.tty:
            now = time.monotonic()
            if fraction < 1 and now - self._printed_at < REDRAW_SECONDS:
                return
            self._printed_at = now
            width = max(10, min(30, shutil.get_terminal_size().columns - len(text) - 30))
            filled = round(fraction * width)
            line = f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%} {text}"
            if line != self._shown:
                self.stream.write("\r\033[K" + line)
                self.stream.flush()
                self._shown = line
        elif text != self._shown and time.monotonic() - self._printed_at >= PLAIN_PROGRESS_SECONDS:
            self.stream.write(f"{self.label}: {fraction:.0%} {text}\n")
            self.stream.flush()
            self._shown, self._printed_at = text, time.monotonic()

    def close(self) -> None:
        """End the progress line."""
        if self.tty and self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str], right: Sequence[int] = (),
          indent: str = "  ") -> str:
    """Return rows as aligned text columns under headers; columns in right align right."""
    cells = [[str(header) for header in headers]] + [[_text(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
                 for i, cell in enumerate(row)]
        lines.append(indent + "  ".join(parts).rstrip())
    return "\n".join(lines)


def _text(value: Any) -> str:
    return "-" if value is None else str(value)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:max(1, width - 1)] + "…"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.1f} ms"


def _safe(name: str) -> str:
    """Return a file name fit for a terminal: control and format characters escaped, bytes
    that are not UTF-8 shown as U+FFFD (as the ledger, the API and the reports show them)."""
    from docproc.model import printable

    return escape(printable(name))


def _waited(entry: dict[str, Any]) -> str:
    """Return how long a file has waited: "for 3.2 s", "for 14 min" or "since 02:14:07"."""
    seconds = float(entry.get("waiting_seconds") or 0)
    if seconds < 60:
        return f"for {seconds:.1f} s"
    if seconds < 3600 or not entry.get("since"):
        return f"for {seconds / 60:.0f} min"
    from docproc.stats import parse_since

    since = time.localtime(parse_since(entry["since"]))
    return time.strftime("since %H:%M:%S" if seconds < 86400 else "since %Y-%m-%d %H:%M", since)


def waiting_lines(watcher: dict[str, Any], width: int) -> list[str]:
    """Return the section listing the files that wait for their writer, empty when none."""
    files = watcher.get("waiting") or []
    if not files:
        return []
    rows = [(_safe(entry["relpath"]), human_bytes(entry["bytes"]), _waited(entry),
             WAIT_WORDS.get(entry["reason"], _safe(str(entry["reason"])))) for entry in files]
    size_width = max(len(row[1]) for row in rows)
    wait_width = max(len(row[2]) for row in rows)
    why_width = max(len(row[3]) for row in rows)
    # Long names are cut rather than the reason, which is what the section is for.
    room = width - 4 - size_width - wait_width - why_width - 6
    name_width = min(max(len(row[0]) for row in rows), max(20, room))
    lines = ["  waiting for their writer:"]
    lines.extend(_clip(f"    {_clip(name, name_width):<{name_width}}  {size:>{size_width}}  "
                       f"{waited:<{wait_width}}  {why}", width)
                 for name, size, waited, why in rows)
    more = sum((watcher.get("waiting_by_reason") or {}).values()) - len(files)
    if more > 0:
        lines.append(f"    and {more:,} more")
    return lines


def _ago(iso_time: str | None, now: float) -> str:
    if not iso_time:
        return "-"
    from docproc.stats import parse_since

    seconds = max(0.0, now - parse_since(iso_time))
    if seconds < 60:
        return f"{seconds:.0f} s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds / 3600:.0f} h ago"
    return iso_time[:10]


def _held_fact(held: dict[str, Any], now: float) -> list[tuple[str, str]]:
    if not held.get("count"):
        return []
    return [("held", f"outbox not writable since {_ago(held.get('since'), now)}, "
                     f"{held['count']:,} documents held: {_safe(held.get('reason') or '')}")]


def _connect(settings: Settings, command: str) -> Any:
    """Return the ledger, or print why the broker does not answer and return None."""
    from docproc.broker import broker_problem, redis_client
    from docproc.ledger import Ledger

    problem = broker_problem(settings)
    if problem is not None:
        print(f"docproc {command}: {problem}\n  is docproc running? (docproc up)", file=sys.stderr)
        return None
    return Ledger(redis_client(settings))


# docproc status

def status(settings: Settings, as_json: bool) -> int:
    """Print counts per state, throughput, queues, workers and recent failures."""
    from docproc import stats

    ledger = _connect(settings, "status")
    if ledger is None:
        return EXIT_FAILURE
    snapshot = stats.collect(settings, ledger)
    snapshot["failures"] = stats.failures(ledger, stats.ReportCache(settings), limit=10)
    if as_json:
        print(json.dumps(snapshot, indent=2))
    else:
        print(render_status(settings, snapshot, time.time()))
    return EXIT_OK


def render_status(settings: Settings, snapshot: dict[str, Any], now: float) -> str:
    """Return `docproc status` as text for a person."""
    counts, rate = snapshot["counts"], snapshot["throughput"]
    watcher, spool, oldest = snapshot["watcher"], snapshot["spool"], snapshot["oldest_unfinished"]
    # On a terminal, long reasons are cut to its width; piped, they are printed whole.
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else 10_000
    out = [f"docproc   inbox {settings.inbox}   outbox {settings.outbox}", ""]
    out.append(table([[state, f"{count:,}"] for state, count in counts.items()],
                     ["STATE", "DOCUMENTS"], right=[1], indent=""))
    out.append("")
    queues = "   ".join(f"{queue} {'?' if depth is None else depth}"
                        for queue, depth in snapshot["queues"].items())
    inbox = (f"{watcher['backlog']} waiting in the inbox ({watcher['online']} watcher"
             f"{'s' if watcher['online'] != 1 else ''} online)" if watcher["online"]
             else "no watcher online: dropped files wait")
    seen = watcher.get("inbox") or {}
    if seen.get("state") == "missing":
        inbox = (f"MISSING ({seen['reason']}) since {seen['since']}: dropped files are not "
                 "seen until it is back")
    facts = [
        ("finished", f"{rate['last_1m']} in the last minute   {rate['last_5m']} in 5 min   "
                     f"{rate['last_15m']} in 15 min"),
        ("queues", f"{queues}   (tasks waiting)"),
        ("inbox", inbox),
        ("spool", f"{spool['files']} claimed files, {human_bytes(spool['bytes'])}"),
        *_held_fact(snapshot.get("held") or {}, now),
        ("oldest", "nothing unfinished" if oldest is None else
         f"{_safe(oldest['key'])} unfinished for {oldest['age_seconds']:.0f} s"),
        ("workers", f"{len(snapshot['workers'])} online" if snapshot["workers"]
         else "none online: nothing is processed"),
    ]
    for name, value in facts:
        out.append(f"{name:<10}{value}")
        if name == "inbox":
            out.extend(waiting_lines(watcher, width))
    out.extend(f"  {_safe(worker['name'])}  holding {worker['holding']}"
               for worker in snapshot["workers"])
    timed = [(stage, t) for stage, t in snapshot["stages"].items() if t["count"]]
    if timed:
        out.append("")
        out.append(table([[stage, f"{t['count']:,}", _ms(t["p50_ms"]), _ms(t["p95_ms"]),
                           _ms(t["mean_ms"])] for stage, t in timed],
                         ["STAGE", "DOCUMENTS", "P50", "P95", "MEAN"], right=[1, 2, 3, 4],
                         indent=""))
    failures = snapshot.get("failures") or []
    if failures:
        out.append("")
        out.append(f"Recent failures ({counts.get('failed', len(failures)):,} failed in all)")
        out.extend(failure_lines([(doc["key"], doc["relpath"], _ago(doc.get("finished_at"), now),
                                   doc.get("error"), doc.get("error_type")) for doc in failures],
                                 width))
        out.append("Send them again with: docproc retry KEY...   or   docproc retry --all-failed")
    return "\n".join(out)


def failure_lines(
    failures: Sequence[tuple[str, str, str, dict[str, Any] | None, str | None]], width: int
) -> list[str]:
    """Return two lines per failure: key, file and when; then its type and reason, indented."""
    lines = []
    for key, relpath, when, error, error_type in failures:
        error = error or {}
        reason = f"{error.get('type') or error_type or 'failed'}: {error.get('message') or ''}"
        lines.append(_clip(f"  {_safe(key)}  {_safe(relpath)}" + (f"  ({when})" if when else ""),
                           width))
        lines.append(_clip(f"      {_safe(reason.rstrip(': '))}", width))
    return lines


# docproc ingest

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


def plan_ingest(
    settings: Settings, paths: Sequence[Path]
) -> tuple[list[Planned], list[str]]:
    """Return the files to copy with their paths in the inbox, and warnings about the rest."""
    from docproc.watcher import is_ignored

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


def copy_into_inbox(settings: Settings, planned: list[Planned], progress: Progress) -> None:
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
            shown = functools.partial(_show_copied, progress, copied, total,
                                      f"{index}/{len(planned)} files")
            item.sha256, item.bytes = _copy_whole(item.source, target, shown)
            copied += item.bytes
    finally:
        # Stopped midway too: what was copied whole goes in, nothing stays hidden in the inbox.
        for top, folder in staged.items():
            _rename_in(folder, inbox / top)


def _show_copied(progress: Progress, before: int, total: int, label: str, size: int) -> None:
    progress.update(before + size, total, label)


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


def ingest(settings: Settings, paths: list[Path], wait: bool) -> int:
    """Copy files and folders into the inbox; with wait, follow them until all are finished."""
    missing = [path for path in paths if not path.exists()]
    if missing:
        print(f"docproc ingest: no such file or folder: {_safe(str(missing[0]))}",
              file=sys.stderr)
        return EXIT_USAGE
    planned, warnings = plan_ingest(settings, paths)
    for warning in warnings:
        print(f"docproc ingest: {_safe(warning)}", file=sys.stderr)
    if not planned:
        print("docproc ingest: nothing to copy", file=sys.stderr)
        return EXIT_FAILURE
    ledger = _connect(settings, "ingest") if wait else None
    if wait and ledger is None:
        return EXIT_FAILURE
    started = time.time()
    settings.inbox.mkdir(parents=True, exist_ok=True)
    progress = Progress("copying")
    try:
        copy_into_inbox(settings, planned, progress)
    except OSError as exc:
        progress.close()
        print(f"docproc ingest: cannot copy into {settings.inbox}: {_safe(str(exc))}",
              file=sys.stderr)
        return EXIT_FAILURE
    progress.close()
    total_bytes = sum(item.bytes for item in planned)
    print(f"copied {len(planned)} file{'s' if len(planned) != 1 else ''} "
          f"({human_bytes(total_bytes)}) into {settings.inbox}")
    if not wait:
        return EXIT_OK
    try:
        follow(settings, ledger, planned, started)
    except KeyboardInterrupt:
        print("\nstopped waiting; the files are still being processed "
              "(docproc status shows them)", file=sys.stderr)
        return EXIT_FAILURE
    return print_summary(settings, ledger, planned, time.time() - started)


def follow(settings: Settings, ledger: Any, planned: list[Planned], started: float) -> None:
    """Show a progress bar until every planned file has reached an end state."""
    from docproc.model import printable

    by_source = {(printable(item.relpath), item.sha256): item for item in planned}
    progress = Progress("processing")
    since = started - 1
    seen: set[str] = set()
    warned_at = time.monotonic() + 15
    try:
        while True:
            since = _match_new(ledger, by_source, since, seen)
            _refresh_states(ledger, planned)
            counts = _tally(planned)
            finished = sum(counts.get(state, 0) for state in TERMINAL)
            progress.update(finished, len(planned), _progress_text(counts, len(planned)))
            if finished == len(planned):
                return
            if time.monotonic() > warned_at and counts.get("copied", 0) == len(planned):
                warned_at = float("inf")
                watchers = ledger.published("watcher")
                progress.close()
                print("docproc ingest: nothing was picked up yet; "
                      + ("is the watcher running? (docproc up)" if not watchers
                         else "the watcher may be busy"), file=sys.stderr)
            time.sleep(POLL_SECONDS)
    finally:
        progress.close()


def _match_new(ledger: Any, by_source: dict[tuple[str, str], Planned], since: float,
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


def _refresh_states(ledger: Any, planned: list[Planned]) -> None:
    going = [item for item in planned if item.key is not None and item.status not in TERMINAL]
    for item, record in zip(going, ledger.get_many([item.key for item in going]), strict=True):
        if record is not None:
            item.status, item.extra = record["status"], record


def _tally(planned: list[Planned]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in planned:
        counts[item.status] = counts.get(item.status, 0) + 1
    return counts


def _progress_text(counts: dict[str, int], total: int) -> str:
    finished = sum(counts.get(state, 0) for state in TERMINAL)
    parts = [f"{finished}/{total} finished"]
    for state, label in (("running", "running"), ("queued", "queued"),
                         ("copied", "waiting to be claimed"), ("failed", "failed")):
        if counts.get(state):
            parts.append(f"{counts[state]} {label}")
    return ", ".join(parts)


def print_summary(settings: Settings, ledger: Any, planned: list[Planned], seconds: float) -> int:
    """Print what became of each file; return 1 when any failed."""
    from docproc import stats

    counts = _tally(planned)
    parts = [f"{counts[state]} {state}" for state in ("done", "duplicate", "failed", "retried")
             if counts.get(state)]
    print(f"{len(planned)} file{'s' if len(planned) != 1 else ''} in {seconds:.1f} s: "
          + ", ".join(parts))
    failed = [item for item in planned if item.status == "failed"]
    if failed:
        reports = stats.ReportCache(settings)
        width = shutil.get_terminal_size().columns if sys.stdout.isatty() else 10_000
        print("failed:")
        print("\n".join(failure_lines(
            [(item.key or "", item.relpath, "", (reports.get(item.extra) or {}).get("error"),
              item.extra.get("error_type")) for item in failed], width)))
        print(f"their reports and originals are in {settings.outbox / 'failed'}")
    return EXIT_FAILURE if failed else EXIT_OK


# docproc retry

def retry(settings: Settings, ids: list[str], all_failed: bool) -> int:
    """Send failed documents through the pipeline again, as new receipts of their originals."""
    from docproc.retry import RetryError, failed_keys, retry_document

    ledger = _connect(settings, "retry")
    if ledger is None:
        return EXIT_FAILURE
    keys = list(dict.fromkeys([*ids, *(failed_keys(ledger) if all_failed else [])]))
    if not keys:
        print("no failed documents to retry")
        return EXIT_OK
    progress = Progress("retrying") if len(keys) > 5 else None
    sent, problems = 0, []
    for index, key in enumerate(keys, 1):
        try:
            retried = retry_document(settings, ledger, key)
        except RetryError as exc:
            problems.append((key, exc.message))
        except Exception as exc:  # one document never stops the others
            problems.append((key, f"could not be sent again: {type(exc).__name__}: {exc}"))
        else:
            sent += 1
            if progress is None:
                print(f"{_safe(key)}  sent again as {_safe(retried.relpath)}")
        if progress is not None:
            progress.update(index, len(keys), f"{index}/{len(keys)}")
    if progress is not None:
        progress.close()
    if sent:
        print(f"{sent} document{'s' if sent != 1 else ''} sent again: each comes out as a new "
              "document; the failed attempt moved to "
              f"{settings.outbox / 'retried'}")
    for key, message in problems:
        print(f"docproc retry: {_safe(key)}: {_safe(message)}", file=sys.stderr)
    return EXIT_FAILURE if problems else EXIT_OK
