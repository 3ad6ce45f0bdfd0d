"""`docproc process`: the same stages in this process, no broker, the same outbox folders."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import signal
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from docproc.inbox.ignore import is_ignored
from docproc.ledger.memory import MemoryLedger
from docproc.model import STAGES
from docproc.outbox import Outbox
from docproc.report import utc_now
from docproc.settings import Settings
from docproc.stages import StageContext, finish, new_job, run_stage, timeout_message

WORKER = f"inline@{os.uname().nodename}"


@dataclass(frozen=True)
class LocalFile:
    """A file named on the command line, described like a claimed one."""

    token: str
    name: str
    relpath: str
    bytes: int
    sha256: str
    received_at: str
    path: Path
    mtime_ns: int = 0
    incomplete: str | None = None


def describe(path: Path, relpath: str) -> LocalFile:
    """Hash a file and describe it for the ledger."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    token = f"{time.time_ns():016x}-{secrets.token_hex(4)}"
    return LocalFile(token, path.name, relpath, path.stat().st_size, digest.hexdigest(),
                     utc_now(), path)


def expand(paths: list[Path], ignore: tuple[str, ...]) -> Iterator[tuple[Path, str]]:
    """Yield (file, relpath) for each file argument and each file below each folder argument."""
    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    file = Path(root) / name
                    relpath = file.relative_to(path).as_posix()
                    if not is_ignored(relpath, ignore) and file.is_file() and not file.is_symlink():
                        yield file, relpath
        else:
            yield path, path.name


def process_paths(
    paths: list[Path], settings: Settings, outbox: Path, jobs: int = 1
) -> list[tuple[str, str, Path]]:
    """Process files through every stage; return (relpath, status, outbox folder) for each."""
    files = list(expand(paths, settings.watcher.ignore))
    outbox.mkdir(parents=True, exist_ok=True)
    if jobs <= 1 or len(files) < 2:
        return [_process_one(settings, outbox, file, relpath) for file, relpath in files]
    ledger_free = [(settings, outbox, file, relpath) for file, relpath in files]
    # Duplicates are found within each process only: each has its own ledger.
    with ProcessPoolExecutor(jobs) as pool:
        return list(pool.map(_process_star, ledger_free, chunksize=8))


_LEDGER = MemoryLedger()


def _process_star(args: tuple[Settings, Path, Path, str]) -> tuple[str, str, Path]:
    return _process_one(*args)


def _process_one(
    settings: Settings, outbox: Path, file: Path, relpath: str
) -> tuple[str, str, Path]:
    local = describe(file, relpath)
    receipt = _LEDGER.record(local)
    limit = settings.workers.task_soft_time_limit
    with tempfile.TemporaryDirectory(prefix="docproc-", ignore_cleanup_errors=True) as work_dir:
        job = new_job(local, receipt, file, Path(work_dir), keep_source=True)
        ctx = StageContext(settings.pipeline, _LEDGER, WORKER, interrupts=(StageTimeout,),
                           timeout_message=timeout_message(limit))
        for stage in STAGES:
            with _time_limit(limit):
                run_stage([job], stage, ctx)
        if job.held:
            # No worker to hold it for: say so rather than write a report of half a run.
            raise OSError(f"{relpath}: cannot write its work files: {job.held}")
        folder = finish(job, ctx, Outbox(outbox, settings.outbox_umask), keep_original=True)
    return relpath, job.state, folder


class StageTimeout(Exception):
    """A stage ran past workers.task_soft_time_limit."""


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise StageTimeout in this (main) thread when the block runs longer than seconds."""

    def _expired(signum: int, frame: FrameType | None) -> None:
        raise StageTimeout

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
