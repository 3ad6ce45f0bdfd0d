"""The outbox writes whole folders under safe names, once."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from docproc.errors import OutboxError
from docproc.model import State
from docproc.outbox import Outbox, Outputs, folder_name
from docproc.report import Report


def _report(status: str) -> Report:
    return Report.from_dict({"schema": "docproc.report/1", "status": status})


def test_folder_names_are_safe_and_short() -> None:
    assert folder_name("scan 0001.pdf", "2f9c1a7b3e5d") == "scan 0001.2f9c1a7b3e5d"
    assert folder_name("line\nbreak.txt", "k") == "line_break.k"
    assert folder_name("caf\udce9.txt", "k") == "caf\ufffd.k"
    long = folder_name("x" * 250 + ".pdf", "2f9c1a7b3e5d")
    assert len(long.encode()) < 255 and long.endswith(".2f9c1a7b3e5d")


def test_write_places_everything_at_once_and_only_once(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("hello")
    text = tmp_path / "text.txt"
    text.write_text("hello")
    (tmp_path / "outbox").mkdir()
    outbox = Outbox(tmp_path / "outbox")
    folder = outbox.folder(State.DONE, "2026-11-23T10:00:00Z", "in.txt", "abc")
    assert folder == tmp_path / "outbox" / "documents" / "2026-11-23" / "in.abc"
    outbox.write(folder, _report("done"), Outputs(text=text, original=source,
                                                      original_name="in.txt"))
    assert json.loads((folder / "report.json").read_text())["status"] == "done"
    assert (folder / "original" / "in.txt").read_text() == "hello"
    assert (folder / "text.txt").read_text() == "hello"
    outbox.write(folder, _report("other"), Outputs())
    assert json.loads((folder / "report.json").read_text())["status"] == "done"
    assert not list((tmp_path / "outbox" / ".incoming").iterdir())


def test_a_missing_outbox_is_an_error_and_is_not_made_again(tmp_path: Path) -> None:
    # An unmounted share's mount point must not fill up with what belongs on the share.
    outbox = Outbox(tmp_path / "share" / "outbox")
    folder = outbox.folder(State.DONE, "2026-11-23T10:00:00Z", "in.txt", "abc")
    with pytest.raises(OutboxError) as caught:
        outbox.write(folder, _report("done"), Outputs())
    assert caught.value.errno == errno.ENOENT and str(folder) in str(caught.value)
    assert not (tmp_path / "share").exists()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("umask", "file_mode", "folder_mode"),
                         [(None, 0o640, 0o750), (0o077, 0o600, 0o700), (0o022, 0o644, 0o755)])
def test_outbox_modes_follow_its_umask_not_the_process_one(
    tmp_path: Path, umask: int | None, file_mode: int, folder_mode: int,
) -> None:
    source = tmp_path / "in.pdf"
    source.write_bytes(b"%PDF-1.4 scanned")
    source.chmod(0o666)  # as a share's writer may leave it; the outbox keeps a hard link
    text = tmp_path / "text.txt"
    text.write_text("hello")
    (tmp_path / "outbox").mkdir()
    previous = os.umask(0)
    try:
        outbox = Outbox(tmp_path / "outbox") if umask is None else Outbox(tmp_path / "outbox",
                                                                          umask)
        folder = outbox.folder(State.DONE, "2026-11-23T10:00:00Z", "in.pdf", "abc")
        outbox.write(folder, _report("done"), Outputs(text=text, original=source,
                                                          original_name="in.pdf"))
    finally:
        os.umask(previous)
    for path in (folder / "report.json", folder / "text.txt", folder / "original" / "in.pdf"):
        assert _mode(path) == file_mode, path
    for path in (folder, folder / "original", folder.parent, folder.parent.parent):
        assert _mode(path) == folder_mode, path


@pytest.mark.parametrize(("setting", "file_mode", "folder_mode"),
                         [("", 0o640, 0o750), ("outbox_umask: '0o077'\n", 0o600, 0o700),
                          ("outbox_umask: 0002\n", 0o664, 0o775)])
def test_docproc_process_writes_the_outbox_with_the_configured_umask(
    tmp_path: Path, setting: str, file_mode: int, folder_mode: int,
) -> None:
    config = tmp_path / "docproc.yaml"
    config.write_text(f"inbox: ./inbox\noutbox: ./outbox\nstate_dir: ./state\n{setting}")
    scan = tmp_path / "memo.txt"
    scan.write_text("Minutes of the meeting about the invoices.\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith("DOCPROC")}
    done = subprocess.run(
        [sys.executable, "-m", "docproc", "--config", str(config), "process", str(scan)],
        capture_output=True, text=True, timeout=60, env=env,
        preexec_fn=lambda: os.umask(0),  # a permissive service manager's umask
    )
    assert done.returncode == 0, done.stderr
    (report,) = (tmp_path / "outbox" / "documents").glob("*/*/report.json")
    folder = report.parent
    for path in (report, folder / "text.txt", folder / "original" / "memo.txt"):
        assert _mode(path) == file_mode, path
    for path in (folder, folder / "original", folder.parent, folder.parent.parent):
        assert _mode(path) == folder_mode, path
