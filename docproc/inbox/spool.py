"""The spool: files claimed out of the inbox by one atomic rename, with a claim record beside.

A file is in the inbox, in the spool, or in the outbox, never nowhere: the claim record
(`<token>.claim.json`) is written before the rename, and a claim that cannot be completed
puts the file back. Tokens start with the claim time in nanoseconds, so the spool tells
its own age.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import secrets
import stat
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# A child of the watcher's logger: its lines are the watcher's, as operators know them.
log = logging.getLogger("docproc.watcher.spool")

HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class Claimed:
    """A file taken out of the inbox into the spool, ready to be recorded and enqueued."""

    token: str
    spool_path: Path
    name: str
    relpath: str
    bytes: int
    sha256: str
    received_at: str
    # The file's mtime when it was hashed: a later one means its writer wrote on after the claim.
    mtime_ns: int = 0
    # Why the file was claimed incomplete (its writer never finished it): it fails as truncated.
    incomplete: str | None = None


class _NotRegularFile(Exception):
    """The object in the spool is not a regular file."""


def utc_iso(ns: int) -> str:
    return datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_buffers = threading.local()


def _hash_file(path: Path) -> tuple[int, str, int]:
    """Return (bytes, sha256 hex, mtime ns) of the regular file at path, never following links."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _NotRegularFile(f"{path.name} is not a regular file")
        digest = hashlib.sha256()
        buffer = getattr(_buffers, "buffer", None)
        if buffer is None:
            # Allocating (and zeroing) 1 MiB per file costs more than hashing a small one.
            buffer = _buffers.buffer = bytearray(HASH_CHUNK)
        view = memoryview(buffer)
        total = 0
        while count := os.readv(fd, [buffer]):
            digest.update(view[:count])
            total += count
        after = os.fstat(fd)
    finally:
        os.close(fd)
    if after.st_size != total:
        log.warning("%s changed while it was hashed (%d bytes read, %d now)",
                    path, total, after.st_size)
    return total, digest.hexdigest(), after.st_mtime_ns


def _write_claim(spool_dir: Path, token: str, record: dict[str, str]) -> Path:
    """Write spool_dir/<token>.claim.json and return its path.

    One small write, before the file itself is moved: a claim cut short leaves a record
    without data, which `recover_spool` removes (an unreadable record falls back to the token).
    """
    final = spool_dir / f"{token}.claim.json"
    data = json.dumps(record).encode()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        fd = os.open(final, flags, 0o644)
    except FileNotFoundError:
        spool_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(final, flags, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except OSError:
        os.unlink(final)
        raise
    finally:
        os.close(fd)
    return final


def _put_back(spool_path: Path, path: str, claim_file: Path, reason: str) -> None:
    """Return a wrongly claimed object to the inbox without replacing anything there."""
    try:
        os.link(spool_path, path, follow_symlinks=False)
    except OSError as exc:
        log.error(
            "%s was claimed as %s but %s, and it cannot be put back (%s); it stays in the spool",
            path, spool_path.name, reason, exc,
        )
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(spool_path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(claim_file)
    log.warning("%s was put back into the inbox: %s", path, reason)


def claim_regular(
    path: str, relpath: str, spool_dir: Path, incomplete: str | None = None
) -> Claimed | None:
    """Claim the file at path, which was just seen to be a regular file."""
    ns = time.time_ns()
    token = f"{ns:016x}-{secrets.token_hex(4)}"
    name = relpath.rsplit("/", 1)[-1]
    received_at = utc_iso(ns)
    record = {"name": name, "relpath": relpath, "received_at": received_at}
    if incomplete is not None:
        record["incomplete"] = incomplete
    try:
        claim_file = _write_claim(spool_dir, token, record)
    except OSError as exc:
        log.error("cannot claim %s: cannot write to the spool %s (%s); make it writable",
                  relpath, spool_dir, exc)
        return None
    spool_path = spool_dir / f"{token}.data"
    try:
        os.rename(path, spool_path)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(claim_file)
        if isinstance(exc, FileNotFoundError):
            log.debug("%s vanished before it could be claimed", relpath)
        elif isinstance(exc, PermissionError):
            log.warning(
                "cannot claim %s: permission denied moving it out of the inbox; give the docproc "
                "user write permission on its folder (and ownership of the file if the folder is "
                "sticky); it is retried at the next rescan", relpath,
            )
        elif exc.errno == errno.EXDEV:
            log.error(
                "cannot claim %s: the spool %s is on another filesystem than the inbox; put "
                "state_dir on the inbox's filesystem", relpath, spool_dir,
            )
        else:
            log.warning("cannot claim %s: %s; it is retried at the next rescan", relpath, exc)
        return None
    try:
        size, sha256, mtime_ns = _hash_file(spool_path)
    except _NotRegularFile:
        _put_back(spool_path, path, claim_file, "it was replaced by something that is not a file")
        return None
    except OSError as exc:
        _put_back(spool_path, path, claim_file, f"it cannot be read ({exc})")
        return None
    return Claimed(token, spool_path, name, relpath, size, sha256, received_at, mtime_ns,
                   incomplete)


def _relpath_of(path: Path, inbox: Path) -> str:
    try:
        return path.relative_to(inbox).as_posix()
    except ValueError:
        parent = path.parent.resolve()
        with contextlib.suppress(ValueError):
            return (parent / path.name).relative_to(inbox.resolve()).as_posix()
        return path.name


def claim(path: Path, inbox: Path, spool_dir: Path) -> Claimed | None:
    """Move a regular file from the inbox into the spool; return None if it is not claimable."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        log.debug("not claiming %s: not a regular file", path)
        return None
    return claim_regular(os.fspath(path), _relpath_of(path, Path(inbox)), Path(spool_dir))


def token_ns(token: str) -> int | None:
    """Return when a spool token was made, in ns since the epoch; None for a foreign name."""
    try:
        return int(token.split("-", 1)[0], 16)
    except ValueError:
        return None


def _token_time(token: str) -> str:
    made = token_ns(token)
    try:
        return utc_iso(time.time_ns() if made is None else made)
    except (OverflowError, OSError):
        return utc_iso(time.time_ns())


def recover_spool(spool_dir: Path) -> list[Claimed]:
    """Return the files left claimed in the spool by an earlier run; drop claims never made."""
    spool_dir = Path(spool_dir)
    try:
        names = {entry.name for entry in os.scandir(spool_dir)}
    except FileNotFoundError:
        return []
    recovered: list[Claimed] = []
    for name in sorted(names):
        if name.endswith(".claim.tmp") or (
            name.endswith(".claim.json") and f"{name[:-len('.claim.json')]}.data" not in names
        ):
            log.debug("removing %s: a claim that never happened", name)
            with contextlib.suppress(FileNotFoundError):
                (spool_dir / name).unlink()
            continue
        if not name.endswith(".data"):
            continue
        claimed = spooled_claim(spool_dir, name[: -len(".data")])
        if claimed is not None:
            recovered.append(claimed)
    return recovered


def spooled_claim(spool_dir: Path, token: str) -> Claimed | None:
    """Describe one claimed file of the spool from its claim record, hashing it again."""
    record: dict[str, Any] = {}
    try:
        loaded = json.loads((spool_dir / f"{token}.claim.json").read_bytes())
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        log.warning("cannot read the claim record of %s (%s); using the token", token, exc)
    else:
        if isinstance(loaded, dict):
            record = loaded
    spool_path = spool_dir / f"{token}.data"
    try:
        size, sha256, mtime_ns = _hash_file(spool_path)
    except (OSError, _NotRegularFile) as exc:
        log.warning("cannot recover %s from the spool: %s", spool_path.name, exc)
        return None
    return Claimed(
        token=token,
        spool_path=spool_path,
        name=str(record.get("name") or token),
        relpath=str(record.get("relpath") or record.get("name") or token),
        bytes=size,
        sha256=sha256,
        received_at=str(record.get("received_at") or _token_time(token)),
        mtime_ns=mtime_ns,
        incomplete=str(record["incomplete"]) if record.get("incomplete") else None,
    )
