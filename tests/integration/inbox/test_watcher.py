"""The inbox watcher against real folders: completeness, claiming, ignoring, recovery."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from docproc.inbox.spool import Claimed
from docproc.settings import WatcherSettings
from tests.integration.inbox.harness import Running, holds, sha, wait_for

# watchdog's harmless warning when a new folder's watch is added twice (see docproc.inbox.events).
pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")

MODES = ["events", "polling"]
SETTLE = 0.3
QUIET = 0.3
GRACE = 0.5


@pytest.fixture
def watch(inbox: Path, spool: Path) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(mode: str = "events", *, on_claimed: Callable[[Claimed], None] | None = None,
              can_claim: Callable[[], bool] = lambda: True, **overrides: Any) -> Running:
        options: dict[str, Any] = {
            "mode": mode, "poll_interval": 0.1, "settle_seconds": SETTLE,
            "quiet_seconds": QUIET, "empty_grace_seconds": GRACE, "rescan_interval": 30.0,
        }
        options.update(overrides)
        running = Running(inbox, spool, WatcherSettings(**options), on_claimed, can_claim)
        started.append(running)
        return running.start()

    yield start
    for running in started:
        running.close()


def spool_content(claimed: Claimed) -> bytes:
    return claimed.spool_path.read_bytes()


# --- end to end through a running watcher -------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("copy", [shutil.copy, shutil.copy2], ids=["copy", "copy2"])
def test_copied_file_is_claimed_once_with_its_facts(
    mode: str, copy: Callable[[Path, Path], object], watch: Callable[..., Running], inbox: Path,
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    # shutil.copy and copy2 set mode and times by path after closing the file: a claim made
    # right at the close would make them fail.
    caplog.set_level(logging.INFO, logger="docproc.watcher")
    (inbox / "dept-a").mkdir()
    running = watch(mode)
    assert running.watcher.mode == mode
    data = os.urandom(300_000)
    source = tmp_path / "scan.pdf"
    source.write_bytes(data)
    copy(source, inbox / "dept-a" / "scan.pdf")

    got = running.claimed("dept-a/scan.pdf")
    assert (got.name, got.bytes, got.sha256) == ("scan.pdf", len(data), sha(data))
    assert not (inbox / "dept-a" / "scan.pdf").exists()
    assert (inbox / "dept-a").is_dir(), "user folders stay"
    assert got.spool_path == running.spool.resolve() / f"{got.token}.data"
    assert spool_content(got) == data
    assert re.fullmatch(r"[0-9a-f]{16}-[0-9a-f]{8}", got.token)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", got.received_at)
    record = json.loads((running.spool / f"{got.token}.claim.json").read_text())
    assert record == {"name": "scan.pdf", "relpath": "dept-a/scan.pdf",
                      "received_at": got.received_at}
    running.sentinel()
    assert running.relpaths().count("dept-a/scan.pdf") == 1
    assert f"claimed dept-a/scan.pdf ({len(data)} bytes) as {got.token}" in caplog.messages
    stats = running.watcher.stats()
    assert stats["claimed"] == 2 and stats["pending"] == 0 and stats["seen"] >= 2


@pytest.mark.parametrize("mode", MODES)
def test_slow_writer_is_claimed_once_when_complete(
    mode: str, watch: Callable[..., Running], inbox: Path
) -> None:
    running = watch(mode)
    chunks = [os.urandom(50_000) for _ in range(5)]

    def write() -> None:
        with open(inbox / "slow.bin", "wb") as out:
            for chunk in chunks:
                out.write(chunk)
                out.flush()
                time.sleep(SETTLE / 3)

    writer = threading.Thread(target=write)
    writer.start()
    got = running.claimed("slow.bin")
    writer.join()
    whole = b"".join(chunks)
    assert (got.bytes, got.sha256) == (len(whole), sha(whole))
    assert spool_content(got) == whole
    running.sentinel()
    assert running.relpaths().count("slow.bin") == 1


@pytest.mark.parametrize("mode", MODES)
def test_file_renamed_in_from_hidden_temp_name_is_claimed_under_final_name(
    mode: str, watch: Callable[..., Running], inbox: Path
) -> None:
    running = watch(mode)
    data = os.urandom(20_000)
    temp = inbox / ".report.pdf.Xa12Bc"  # how rsync names its temporary file
    with open(temp, "wb") as out:
        for start in range(0, len(data), 5_000):
            out.write(data[start:start + 5_000])
            out.flush()
            time.sleep(0.05)
    os.rename(temp, inbox / "report.pdf")
    got = running.claimed("report.pdf")
    assert (got.name, got.sha256) == ("report.pdf", sha(data))
    running.sentinel()
    assert running.relpaths() == ["report.pdf", "zz-sentinel.txt"]


def test_a_burst_of_renames_is_claimed_once_each_under_final_names(
    watch: Callable[..., Running], inbox: Path
) -> None:
    running = watch("events")
    names = [f"scan-{number:04d}.pdf" for number in range(1500)]
    for name in names:
        (inbox / f".{name}.part").write_bytes(name.encode())
    for name in names:
        os.rename(inbox / f".{name}.part", inbox / name)
    wait_for(lambda: len(running.claims) >= len(names), timeout=30, what="every rename claimed")
    running.sentinel()
    assert sorted(running.relpaths()) == [*names, "zz-sentinel.txt"]
    assert all(spool_content(c) == c.name.encode() for c in running.claims[:-1])


def test_renames_across_the_inbox_edge_are_a_new_file_or_a_gone_one(
    watch: Callable[..., Running], inbox: Path, tmp_path: Path
) -> None:
    running = watch("events", settle_seconds=5.0)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "brought-in.txt").write_text("from a folder beside the inbox")
    with open(inbox / "taken-away.txt", "w") as out:
        out.write("still being written")  # open: not complete, so not claimable yet
        out.flush()
        os.rename(inbox / "taken-away.txt", outside / "taken-away.txt")
    os.rename(outside / "brought-in.txt", inbox / "brought-in.txt")
    assert running.claimed("brought-in.txt").bytes == len("from a folder beside the inbox")
    running.sentinel()
    assert running.relpaths() == ["brought-in.txt", "zz-sentinel.txt"]
    assert (outside / "taken-away.txt").read_text() == "still being written"


def test_rename_into_place_is_claimed_without_waiting_to_settle(
    watch: Callable[..., Running], inbox: Path
) -> None:
    # A settle time far beyond the deadline: only the rename can explain the claim.
    running = watch("events", settle_seconds=600.0)
    temp = inbox / "export.csv.tmp"
    temp.write_text("a,b\n1,2\n")
    os.rename(temp, inbox / "export.csv")
    assert running.claimed("export.csv", timeout=60).sha256 == sha(b"a,b\n1,2\n")


def test_close_after_write_is_claimed_after_the_quiet_period_not_the_settle_time(
    watch: Callable[..., Running], inbox: Path
) -> None:
    # A settle time longer than the deadline: only the close event can explain the claims. Each
    # drop follows a claim, whose rename out of the inbox used to hold watchdog's queue 0.5 s.
    running = watch("events", settle_seconds=120.0, quiet_seconds=QUIET)
    for number in range(5):
        name = f"drop-{number}.txt"
        (inbox / name).write_text(f"drop {number}")
        running.claimed(name)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("how", ["moved", "copied"])
def test_nested_folder_brought_in_is_found(
    mode: str, how: str, watch: Callable[..., Running], inbox: Path, tmp_path: Path
) -> None:
    running = watch(mode)
    outside = tmp_path / "outside"
    (outside / "a" / "b").mkdir(parents=True)
    (outside / "a" / "b" / "c.txt").write_text("deep")
    (outside / "a" / "top.txt").write_text("top")
    if how == "moved":
        os.rename(outside / "a", inbox / "a")
    else:
        shutil.copytree(outside / "a", inbox / "a")
    got = running.claimed("a/b/c.txt")
    assert (got.name, got.sha256) == ("c.txt", sha(b"deep"))
    running.claimed("a/top.txt")
    running.sentinel()
    assert sorted(running.relpaths()) == ["a/b/c.txt", "a/top.txt", "zz-sentinel.txt"]
    assert (inbox / "a" / "b").is_dir()


def test_folder_created_and_filled_at_once_is_found(
    watch: Callable[..., Running], inbox: Path
) -> None:
    running = watch("events")
    # Files land before watchdog has put a watch on the new folders.
    for number in range(20):
        folder = inbox / f"batch{number}" / "deep"
        folder.mkdir(parents=True)
        (folder / "doc.txt").write_text(str(number))
    wait_for(lambda: len(running.claims) == 20, what="20 claims")
    assert sorted(running.relpaths()) == sorted(f"batch{n}/deep/doc.txt" for n in range(20))


IGNORED = [".hidden", "x.part", "x.tmp", "~$doc.docx", "Thumbs.db", "._x", "__MACOSX/x",
           ".git/config", "sub/.DS_Store", "movie.crdownload", "notes.txt.swp", "$RECYCLE.BIN/y"]


@pytest.mark.parametrize("mode", MODES)
def test_ignored_names_stay_untouched(
    mode: str, watch: Callable[..., Running], inbox: Path
) -> None:
    running = watch(mode)
    for relpath in IGNORED:
        (inbox / relpath).parent.mkdir(parents=True, exist_ok=True)
        (inbox / relpath).write_text("ignore me")
    running.sentinel()
    holds(lambda: running.relpaths() == ["zz-sentinel.txt"], SETTLE + 0.2)
    for relpath in IGNORED:
        assert (inbox / relpath).read_text() == "ignore me"


@pytest.mark.parametrize("mode", MODES)
def test_symlinks_and_fifos_are_never_claimed(
    mode: str, watch: Callable[..., Running], inbox: Path, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="docproc.watcher")
    running = watch(mode)
    target = tmp_path / "secret.txt"
    target.write_text("not yours")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "inner.txt").write_text("not yours either")
    os.symlink(target, inbox / "link.txt")
    os.symlink(tmp_path / "elsewhere", inbox / "linked-folder")
    os.symlink(inbox, inbox / "loop")
    os.mkfifo(inbox / "pipe")
    running.sentinel()
    holds(lambda: running.relpaths() == ["zz-sentinel.txt"], SETTLE + 0.2)
    assert (inbox / "link.txt").is_symlink() and target.read_text() == "not yours"
    assert (tmp_path / "elsewhere" / "inner.txt").exists()
    assert (inbox / "pipe").exists()
    # Operators learn why these stay: one warning each, naming what they are.
    told = [r.getMessage() for r in caplog.records if "leaving" in r.getMessage()]
    assert any("'link.txt'" in m and "symbolic link" in m for m in told), told
    assert any("'pipe'" in m and "a FIFO" in m for m in told), told
    assert len(told) == len(set(told)), told
    running.sentinel("after.txt")


@pytest.mark.parametrize("mode", MODES)
def test_files_present_at_start_are_claimed(
    mode: str, watch: Callable[..., Running], inbox: Path
) -> None:
    (inbox / "early.txt").write_text("early")
    (inbox / "x" / "y").mkdir(parents=True)
    (inbox / "x" / "y" / "nested.txt").write_text("nested")
    (inbox / "empty.txt").touch()
    running = watch(mode)
    assert running.claimed("early.txt").sha256 == sha(b"early")
    assert running.claimed("x/y/nested.txt").sha256 == sha(b"nested")
    assert running.claimed("empty.txt").bytes == 0


@pytest.mark.parametrize("mode", MODES)
def test_nothing_is_claimed_while_can_claim_is_false(
    mode: str, watch: Callable[..., Running], inbox: Path
) -> None:
    allowed = threading.Event()
    (inbox / "before.txt").write_text("before")
    running = watch(mode, can_claim=allowed.is_set)
    (inbox / "during.txt").write_text("during")
    holds(lambda: not running.claims and (inbox / "during.txt").exists()
          and (inbox / "before.txt").exists(), SETTLE + 0.7)
    assert not list(running.spool.glob("*.data"))
    allowed.set()
    running.claimed("before.txt")
    running.claimed("during.txt")
    assert not (inbox / "during.txt").exists()


@pytest.mark.parametrize("mode", MODES)
def test_failed_hand_over_is_retried_and_delivered_once(
    mode: str, watch: Callable[..., Running], inbox: Path, caplog: pytest.LogCaptureFixture
) -> None:
    attempts: list[str] = []

    def flaky(claimed: Claimed) -> None:
        attempts.append(claimed.token)
        if len(attempts) == 1:
            raise ConnectionError("broker went away")

    running = watch(mode, on_claimed=flaky)
    (inbox / "doc.txt").write_text("important")
    got = running.claimed("doc.txt")
    assert attempts == [got.token, got.token]
    assert spool_content(got) == b"important"
    assert any(r.exc_info and isinstance(r.exc_info[1], ConnectionError) for r in caplog.records)
    running.sentinel()
    assert running.relpaths() == ["doc.txt", "zz-sentinel.txt"]
    assert running.watcher.stats()["retrying"] == 0


def test_claim_refused_by_permissions_is_retried_at_the_next_rescan(
    watch: Callable[..., Running], inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_rename = os.rename
    refused: list[str] = []

    def rename(src: Any, dst: Any) -> None:
        if os.path.basename(src) == "locked.pdf" and not refused:
            refused.append(src)
            raise PermissionError(13, "Permission denied", src)
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    running = watch("events", rescan_interval=1.0)
    (inbox / "locked.pdf").write_text("claim me later")
    got = running.claimed("locked.pdf")
    assert refused and got.sha256 == sha(b"claim me later")


@pytest.mark.parametrize("mode", MODES)
def test_empty_file_is_claimed_only_after_the_grace_period(
    mode: str, watch: Callable[..., Running], inbox: Path
) -> None:
    # Within its grace: a file dropped after it is claimed, the empty one waits.
    waiting = watch(mode, empty_grace_seconds=600.0)
    (inbox / "empty.pdf").touch()
    waiting.sentinel()
    assert waiting.relpaths() == ["zz-sentinel.txt"]
    waiting.close()
    # Past its grace (a watcher with a short one, finding it there): claimed, empty.
    got = watch(mode).claimed("empty.pdf")
    assert got.bytes == 0 and got.sha256 == sha(b"")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("how", ["written", "renamed-over"])
def test_placeholder_that_gets_content_is_claimed_once_with_it(
    mode: str, how: str, watch: Callable[..., Running], inbox: Path
) -> None:
    running = watch(mode)
    data = os.urandom(40_000)
    (inbox / "download.pdf").touch()  # what a browser leaves before the download lands
    time.sleep(GRACE / 4)
    if how == "written":
        (inbox / "download.pdf").write_bytes(data)
    else:
        (inbox / "download.pdf.part").write_bytes(data)
        os.rename(inbox / "download.pdf.part", inbox / "download.pdf")
    got = running.claimed("download.pdf")
    assert (got.bytes, got.sha256) == (len(data), sha(data))
    running.sentinel()
    assert running.relpaths().count("download.pdf") == 1


@pytest.mark.parametrize("how", ["written", "renamed"])
def test_a_file_first_seen_empty_is_claimed_soon_after_it_is_filled_and_closed(
    how: str, watch: Callable[..., Running], inbox: Path
) -> None:
    # What `cp -r folder inbox/` does: the watcher may look while a file is still empty.
    # An empty file's grace far beyond the deadline: only the fill can explain the claim.
    running = watch("events", empty_grace_seconds=600.0)
    target = inbox / "copied.pdf"
    target.touch()
    wait_for(lambda: (cand := running.watcher._pending.get(str(target))) and cand.size == 0,
             what="the watcher to have seen the file empty")
    data = os.urandom(30_000)
    if how == "written":
        target.write_bytes(data)
    else:
        (inbox / "copied.pdf.part").write_bytes(data)
        os.rename(inbox / "copied.pdf.part", target)
    got = running.claimed("copied.pdf", timeout=60)
    assert (got.bytes, got.sha256) == (len(data), sha(data))


def test_spool_inside_the_inbox_is_left_alone(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    spool = inbox / "state" / "spool"
    spool.mkdir(parents=True)
    running = Running(inbox, spool, WatcherSettings(
        mode="events", settle_seconds=SETTLE, empty_grace_seconds=GRACE)).start()
    try:
        (inbox / "doc.txt").write_text("once")
        got = running.claimed("doc.txt")
        running.sentinel()
        holds(lambda: running.relpaths() == ["doc.txt", "zz-sentinel.txt"], SETTLE + 0.2)
        assert got.spool_path.exists()
    finally:
        running.close()


def test_non_recursive_watcher_leaves_subfolders_alone(
    watch: Callable[..., Running], inbox: Path
) -> None:
    (inbox / "sub").mkdir()
    (inbox / "sub" / "old.txt").write_text("old")
    running = watch("events", recursive=False)
    (inbox / "sub" / "new.txt").write_text("new")
    running.sentinel()
    holds(lambda: running.relpaths() == ["zz-sentinel.txt"], SETTLE + 0.2)
    assert (inbox / "sub" / "new.txt").exists() and (inbox / "sub" / "old.txt").exists()
