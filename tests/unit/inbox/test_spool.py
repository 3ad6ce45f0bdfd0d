"""Claiming a file into the spool, and finding the claims a stopped process left there."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import pytest

from docproc.inbox.spool import claim, recover_spool


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_claim_moves_a_regular_file_and_refuses_the_rest(
    inbox: Path, spool: Path, tmp_path: Path
) -> None:
    (inbox / "sub").mkdir()
    (inbox / "sub" / "a.txt").write_bytes(b"abc")
    got = claim(inbox / "sub" / "a.txt", inbox, spool)
    assert got is not None
    assert (got.name, got.relpath, got.bytes, got.sha256) == ("a.txt", "sub/a.txt", 3, sha(b"abc"))
    assert got.spool_path.read_bytes() == b"abc" and not (inbox / "sub" / "a.txt").exists()

    os.symlink(tmp_path, inbox / "link")
    os.mkfifo(inbox / "fifo")
    assert claim(inbox / "link", inbox, spool) is None
    assert claim(inbox / "fifo", inbox, spool) is None
    assert claim(inbox / "missing", inbox, spool) is None
    assert (inbox / "link").is_symlink() and (inbox / "fifo").exists()
    assert sorted(p.name for p in spool.iterdir()) == [
        f"{got.token}.claim.json", f"{got.token}.data"]


def test_claim_of_a_file_that_vanishes_leaves_no_claim_record(
    inbox: Path, spool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (inbox / "gone.txt").write_text("x")
    real_rename = os.rename

    def vanish(src: Any, dst: Any) -> None:
        os.unlink(src)
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", vanish)
    assert claim(inbox / "gone.txt", inbox, spool) is None
    assert list(spool.iterdir()) == []


def test_claim_without_permission_warns_and_leaves_the_file(
    inbox: Path, spool: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (inbox / "locked.pdf").write_text("x")

    def denied(src: Any, dst: Any) -> None:
        raise PermissionError(13, "Permission denied", str(src))

    monkeypatch.setattr(os, "rename", denied)
    assert claim(inbox / "locked.pdf", inbox, spool) is None
    assert (inbox / "locked.pdf").exists()
    assert list(spool.iterdir()) == []
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert "locked.pdf" in warning.getMessage() and "permission" in warning.getMessage()


def test_recover_spool(spool: Path) -> None:
    spool.mkdir(parents=True)
    full = "18a0000000000000-0000000a"
    (spool / f"{full}.data").write_bytes(b"claimed")
    (spool / f"{full}.claim.json").write_text(json.dumps(
        {"name": "scan.pdf", "relpath": "dept-a/scan.pdf", "received_at": "2026-11-23T10:15:02Z"}))
    bare = "18b0000000000000-0000000b"
    (spool / f"{bare}.data").write_bytes(b"")
    never = "18c0000000000000-0000000c"
    (spool / f"{never}.claim.json").write_text("{}")
    (spool / f"{never}.claim.tmp").write_text("{")

    recovered = recover_spool(spool)

    assert [c.token for c in recovered] == [full, bare]
    first, second = recovered
    assert (first.name, first.relpath, first.bytes, first.sha256, first.received_at) == (
        "scan.pdf", "dept-a/scan.pdf", 7, sha(b"claimed"), "2026-11-23T10:15:02Z")
    assert first.spool_path == spool / f"{full}.data"
    assert (second.name, second.bytes, second.sha256) == (bare, 0, sha(b""))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", second.received_at)
    assert sorted(p.name for p in spool.iterdir()) == sorted(
        [f"{full}.data", f"{full}.claim.json", f"{bare}.data"])


def test_recover_spool_without_a_spool(tmp_path: Path) -> None:
    assert recover_spool(tmp_path / "missing") == []
