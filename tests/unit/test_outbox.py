"""The outbox writes whole folders under safe names, once."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from docproc.outbox import Outbox, OutboxError, Outputs, folder_name


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
    folder = outbox.folder("done", "2026-11-23T10:00:00Z", "in.txt", "abc")
    assert folder == tmp_path / "outbox" / "documents" / "2026-11-23" / "in.abc"
    outbox.write(folder, {"status": "done"}, Outputs(text=text, original=source,
                                                      original_name="in.txt"))
    assert json.loads((folder / "report.json").read_text()) == {"status": "done"}
    assert (folder / "original" / "in.txt").read_text() == "hello"
    assert (folder / "text.txt").read_text() == "hello"
    outbox.write(folder, {"status": "other"}, Outputs())
    assert json.loads((folder / "report.json").read_text()) == {"status": "done"}
    assert not list((tmp_path / "outbox" / ".incoming").iterdir())


def test_a_missing_outbox_is_an_error_and_is_not_made_again(tmp_path: Path) -> None:
    # An unmounted share's mount point must not fill up with what belongs on the share.
    outbox = Outbox(tmp_path / "share" / "outbox")
    folder = outbox.folder("done", "2026-11-23T10:00:00Z", "in.txt", "abc")
    with pytest.raises(OutboxError) as caught:
        outbox.write(folder, {"status": "done"}, Outputs())
    assert caught.value.errno == errno.ENOENT and str(folder) in str(caught.value)
    assert not (tmp_path / "share").exists()
