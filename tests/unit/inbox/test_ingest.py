"""Copying into the inbox: what is planned, what is skipped, and a copy stopped midway."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from docproc.inbox.ingest import copy_into_inbox, plan_ingest
from docproc.settings import load_settings


class _Copied:
    def __init__(self) -> None:
        self.seen: list[tuple[int, int, int, int]] = []

    def copied(self, done_bytes: int, total_bytes: int, file_number: int, files: int) -> None:
        self.seen.append((done_bytes, total_bytes, file_number, files))


def test_ingest_plans_inbox_paths_and_skips_what_the_watcher_would_ignore(
    make_config: Callable[..., Path], tmp_path: Path,
) -> None:
    settings = load_settings(make_config(), environ={})
    source = tmp_path / "export"
    (source / "a").mkdir(parents=True)
    (source / "a" / "one.pdf").write_bytes(b"%PDF-1.4")
    (source / ".hidden").write_text("x")
    (source / "b.part").write_text("x")
    (settings.inbox / "waiting.txt").write_text("already in the inbox")
    planned, warnings = plan_ingest(settings, [source, settings.inbox / "waiting.txt"])
    assert [item.relpath for item in planned] == ["export/a/one.pdf"]
    assert len(warnings) == 3 and any("in the inbox already" in w for w in warnings)


def test_copying_reports_bytes_and_files_as_it_goes(
    make_config: Callable[..., Path], tmp_path: Path,
) -> None:
    settings = load_settings(make_config(), environ={})
    source = tmp_path / "batch"
    source.mkdir()
    (source / "a.txt").write_bytes(b"a" * 10)
    (source / "b.txt").write_bytes(b"b" * 30)
    planned, _ = plan_ingest(settings, [source])
    copied = _Copied()
    copy_into_inbox(settings, planned, copied)
    assert copied.seen == [(10, 40, 1, 2), (40, 40, 2, 2)]
    assert (settings.inbox / "batch" / "b.txt").read_bytes() == b"b" * 30
    assert [item.sha256 for item in planned] == [
        hashlib.sha256(b"a" * 10).hexdigest(), hashlib.sha256(b"b" * 30).hexdigest()]


def test_ingest_stopped_midway_leaves_nothing_hidden_in_the_inbox(
    make_config: Callable[..., Path], tmp_path: Path,
) -> None:
    settings = load_settings(make_config(), environ={})
    source = tmp_path / "batch"
    source.mkdir()
    (source / "a.txt").write_text("first page\n")
    (source / "b.txt").write_text("second page\n")
    planned, _ = plan_ingest(settings, [source])
    (source / "b.txt").unlink()  # vanishes before it is copied: the copy stops there
    with pytest.raises(FileNotFoundError):
        copy_into_inbox(settings, planned, _Copied())
    assert sorted(p.relative_to(settings.inbox).as_posix()
                  for p in settings.inbox.rglob("*")) == ["batch", "batch/a.txt"]
