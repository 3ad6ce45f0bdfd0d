"""The outbox: one folder per document, written whole under a temporary name, then renamed."""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from docproc.errors import OutboxError
from docproc.model import State, printable
from docproc.report import FILE_NAME as REPORT_FILE
from docproc.report import Report, render
from docproc.settings import DEFAULT_OUTBOX_UMASK

MAX_STEM = 120
UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]+")


def folder_name(name: str, key: str) -> str:
    """Return `<stem>.<key>` with the stem cut and cleaned to fit any filesystem."""
    stem = UNSAFE.sub("_", printable(Path(name).stem)).strip(" .") or "document"
    encoded = stem.encode("utf-8")[:MAX_STEM]
    return f"{encoded.decode('utf-8', 'ignore')}.{key}"


@dataclass(frozen=True)
class Outputs:
    """The files a finished document leaves in its outbox folder, besides its report."""

    text: Path | None = None
    thumbnail: Path | None = None
    original: Path | None = None
    original_name: str = "original"


class Outbox:
    """Write finished documents under `documents/` or `failed/`, day by day."""

    def __init__(self, root: Path, umask: int = DEFAULT_OUTBOX_UMASK) -> None:
        self.root = root
        # Set explicitly, not left to the process umask: an original is a hard link that
        # keeps the mode its writer gave it, and a worker may be started by Celery directly.
        self.file_mode = 0o666 & ~umask
        self.folder_mode = 0o777 & ~umask

    def folder(self, status: State, received_at: str, name: str, key: str) -> Path:
        """Return the folder a document's outputs go to."""
        section = "failed" if status == State.FAILED else "documents"
        return self.root / section / received_at[:10] / folder_name(name, key)

    def find(self, received_at: str, name: str, key: str) -> Path | None:
        """Return the folder already written for a document, done or failed, if any."""
        for status in (State.DONE, State.FAILED):
            folder = self.folder(status, received_at, name, key)
            if (folder / REPORT_FILE).exists():
                return folder
        return None

    def write(self, folder: Path, report: Report, outputs: Outputs) -> Path:
        """Write report and outputs into folder at once; a second call for it is a no-op.

        The outbox itself is never created here: a missing one (an unmounted share) is
        an OutboxError like a full or read-only one, not a folder to fill on the mount point.
        """
        if folder.exists():
            return folder
        staging = self.root / ".incoming" / f"{folder.name}.{secrets.token_hex(4)}"
        try:
            self._mkdir(staging.parent, exist_ok=True)
            self._mkdir(staging, exist_ok=False)
            mode = self.file_mode
            if outputs.text is not None:
                _place(outputs.text, staging / "text.txt", mode)
            if outputs.thumbnail is not None:
                _place(outputs.thumbnail, staging / "thumbnail.png", mode)
            if outputs.original is not None:
                self._mkdir(staging / "original", exist_ok=False)
                _place_original(outputs.original, staging / "original", outputs.original_name,
                                mode)
            (staging / REPORT_FILE).write_text(render(report), encoding="utf-8")
            os.chmod(staging / REPORT_FILE, mode)
            self._makedirs(folder.parent)
            os.rename(staging, folder)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if folder.exists() and (folder / REPORT_FILE).exists():
                return folder  # another delivery of the same document won the rename
            raise OutboxError(exc.errno, f"cannot write {folder}: {exc.strerror or exc}") from exc
        return folder

    def _mkdir(self, path: Path, exist_ok: bool) -> None:
        """Make one folder with the outbox's folder mode."""
        try:
            path.mkdir()
        except FileExistsError:
            if not exist_ok:
                raise
            return
        os.chmod(path, self.folder_mode)

    def _makedirs(self, path: Path) -> None:
        """Make path and its missing parents (inside the outbox) with the folder mode."""
        if not path.parent.exists():
            self._makedirs(path.parent)
        self._mkdir(path, exist_ok=True)


def _place_original(source: Path, folder: Path, name: str, mode: int) -> None:
    """Keep the original under its own name, or a cleaned one where this filesystem refuses it."""
    try:
        _place(source, folder / name, mode)
    except OSError as exc:
        # A name another filesystem took (too long, not UTF-8 on a share): the document's
        # own trait, so it must not hold the document; the report keeps the real name.
        if exc.errno not in (errno.ENAMETOOLONG, errno.EILSEQ, errno.EINVAL):
            raise
        cleaned = UNSAFE.sub("_", printable(name)).encode("utf-8")[-MAX_STEM:]
        _place(source, folder / (cleaned.decode("utf-8", "ignore").strip(" .") or "original"),
               mode)


def _place(source: Path, target: Path, mode: int) -> None:
    """Hard-link source to target, or copy it (across filesystems, or a file of another owner
    whose mode cannot be set); give it mode. The caller removes the source."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
    else:
        try:
            os.chmod(target, mode)
            return
        except OSError:  # the dropped file's owner is not us: keep a copy of our own
            target.unlink()
            shutil.copyfile(source, target)
    os.chmod(target, mode)
