"""The inbox folder itself removed, replaced or unmounted: noticed, said, and watched again.

Every watcher here rescans only every 60 s: what a test sees within its deadline of a few
seconds comes from the watch being set again on the new folder, not from a rescan.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from docproc.cli.status import render_status
from docproc.inbox.spool import Claimed
from docproc.ledger.redis_ledger import RedisLedger
from docproc.settings import Settings, WatcherSettings, load_settings
from docproc.status.watchers import publish_watcher_stats
from docproc.status_api import create_app
from docproc.watcher import InboxWatcher
from tests.conftest import Daemon, missing, reports, require, wait_until

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")

MODES = ["events", "polling"]
DEADLINE = 10.0  # the old watcher waited for its rescan (60 s here) or a restart
LOST = "files dropped there are not seen until it is back"


class Watching:
    """A watcher running in a thread over inbox, with what it claimed."""

    def __init__(self, inbox: Path, spool: Path, mode: str) -> None:
        settings = WatcherSettings(mode=mode, poll_interval=0.1, settle_seconds=0.3,
                                   quiet_seconds=0.3, rescan_interval=60.0)
        self.claims: list[Claimed] = []
        self.watcher = InboxWatcher(inbox, spool, settings, self.claims.append)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.watcher.run, args=(self.stop,), daemon=True)
        self.thread.start()
        wait_until(self.watcher.ready.is_set, DEADLINE, message="the watcher to be ready")

    def claimed(self, relpath: str) -> Claimed:
        return wait_until(
            lambda: next((c for c in list(self.claims) if c.relpath == relpath), None),
            DEADLINE, interval=0.02, message=f"{relpath} to be claimed")

    def inbox_is(self, state: str) -> dict[str, Any]:
        return wait_until(
            lambda: (seen := self.watcher.inbox_state())["state"] == state and seen,
            DEADLINE, interval=0.02, message=f"the inbox to be {state}")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(15)
        assert not self.thread.is_alive(), "the watcher did not stop"


@pytest.fixture
def watching(tmp_path: Path) -> Iterator[Callable[..., Watching]]:
    started: list[Watching] = []

    def start(mode: str, inbox: Path | None = None, spool: Path | None = None) -> Watching:
        running = Watching(inbox or tmp_path / "inbox", spool or tmp_path / "state" / "spool",
                           mode)
        started.append(running)
        return running

    yield start
    for running in started:
        running.close()


def holds(condition: Callable[[], Any], seconds: float) -> None:
    """Assert condition stays truthy for the given number of seconds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert condition()
        time.sleep(0.05)


def logged(caplog: pytest.LogCaptureFixture, message: str) -> None:
    """Wait until the watcher's thread has logged message."""
    wait_until(lambda: message in caplog.messages, DEADLINE, interval=0.02,
               message=f"the log line {message!r}")


def put(path: Path, data: bytes) -> None:
    """Write a file whole under a hidden name, then rename it into place."""
    staged = path.with_name(f".{path.name}.part")
    staged.write_bytes(data)
    os.rename(staged, path)


@pytest.mark.parametrize("mode", MODES)
def test_inbox_removed_and_made_again_is_watched_again(
    tmp_path: Path, mode: str, watching: Callable[..., Watching],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="docproc.watcher")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    run = watching(mode)
    put(inbox / "before.txt", b"dropped before")
    run.claimed("before.txt")
    assert run.watcher.inbox_state()["state"] == "ok"

    shutil.rmtree(inbox)
    gone = run.inbox_is("missing")
    assert gone["path"] == str(inbox) and gone["reason"]
    logged(caplog, f"the inbox {inbox} was {gone['reason']}; {LOST}")
    # Not made again by the watcher: an unmounted share's folder must stay bare.
    holds(lambda: not inbox.exists(), 1.5)

    inbox.mkdir()
    put(inbox / "after.txt", b"dropped into the new inbox")
    (inbox / "dept").mkdir()
    put(inbox / "dept" / "nested.txt", b"dropped into a folder of the new inbox")
    assert run.claimed("after.txt").bytes == len(b"dropped into the new inbox")
    run.claimed("dept/nested.txt")
    assert run.inbox_is("ok")
    logged(caplog, f"watching {inbox} again ({mode} mode)")
    assert [m for m in caplog.messages if m.startswith("the inbox ")] == [
        f"the inbox {inbox} was {gone['reason']}; {LOST}"]


@pytest.mark.parametrize("mode", MODES)
def test_inbox_renamed_away_and_replaced_is_watched_again_without_its_old_files(
    tmp_path: Path, mode: str, watching: Callable[..., Watching],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="docproc.watcher")
    inbox, old, new = tmp_path / "inbox", tmp_path / "inbox.old", tmp_path / "inbox.new"
    inbox.mkdir()
    # A scan cut short waits for its end (incomplete_grace_seconds): a candidate the watcher
    # holds when its folder is renamed away.
    (inbox / "half.pdf").write_bytes(b"%PDF-1.7\n1 0 obj\n<< >>\nendobj\n")
    run = watching(mode)
    wait_until(lambda: run.watcher.waiting().counts["incomplete"] == 1, DEADLINE,
               message="half.pdf to wait as incomplete")
    new.mkdir()
    put(new / "early.txt", b"in the new folder before it became the inbox")

    os.rename(inbox, old)
    os.rename(new, inbox)
    put(inbox / "late.txt", b"dropped after the replacement")
    run.claimed("early.txt")
    run.claimed("late.txt")
    assert run.inbox_is("ok")
    logged(caplog, f"watching {inbox} again ({mode} mode)")
    assert any(m.startswith(f"the inbox {inbox} was ") and m.endswith(LOST)
               for m in caplog.messages)
    # The renamed folder is not the inbox: what waited there is forgotten, and stays there.
    wait_until(lambda: run.watcher.stats()["pending"] == 0, DEADLINE,
               message="the old folder's candidates to be forgotten")
    put(old / "stray.txt", b"dropped into the old folder")
    holds(lambda: {c.relpath for c in run.claims} == {"early.txt", "late.txt"}, 1.0)
    assert (old / "half.pdf").exists() and (old / "stray.txt").exists()


@pytest.fixture
def embedded(valkey_socket: Path) -> dict[str, Any]:
    redis.Redis(unix_socket_path=str(valkey_socket)).flushdb()
    return {"broker_url": f"redis+socket://{valkey_socket}", "result_backend": None}


def test_a_missing_inbox_makes_healthz_fail_and_shows_in_the_status(
    embedded: dict[str, Any], make_config: Callable[..., Path],
    watching: Callable[..., Watching],
) -> None:
    settings = load_settings(make_config(**embedded, watcher={"rescan_interval": 60}),
                             environ={})
    run = watching("events", settings.inbox, settings.spool_dir)
    publisher_stop = threading.Event()
    publish_watcher_stats(run.watcher, settings, publisher_stop, interval=0.1)
    ledger = RedisLedger(redis.Redis.from_url(settings.redis_url, decode_responses=True))
    ledger.heartbeat("worker1@scanhost/4242", [], 120.0)
    client = create_app(settings).test_client()
    try:
        wait_until(lambda: client.get("/healthz").status_code == 200, DEADLINE,
                   message="healthz to answer 200 with the inbox watched")

        shutil.rmtree(settings.inbox)
        answer = wait_until(lambda: (a := client.get("/healthz")).status_code == 503 and a,
                            DEADLINE, interval=0.05, message="healthz to say the inbox is gone")
        reason = answer.get_json()["reason"]
        assert str(settings.inbox) in reason and "missing" in reason and LOST in reason
        snapshot = client.get("/api/stats").get_json()
        assert snapshot["watcher"]["inbox"]["state"] == "missing"
        assert snapshot["watcher"]["inbox"]["path"] == str(settings.inbox)
        assert "inbox     MISSING (" in render_status(settings, snapshot, time.time())
        assert "docproc_watcher_inbox_missing 1.0" in client.get("/metrics").get_data(as_text=True)

        settings.inbox.mkdir()
        wait_until(lambda: client.get("/healthz").status_code == 200, DEADLINE,
                   interval=0.05, message="healthz to answer 200 once the inbox is back")
        # /api/stats is computed at most once a second.
        wait_until(lambda: client.get("/api/stats").get_json()["watcher"]["inbox"]["state"]
                   == "ok", DEADLINE, interval=0.1, message="the stats to show the inbox back")
    finally:
        publisher_stop.set()


def test_a_file_dropped_into_a_remade_inbox_comes_out_done(
    embedded: dict[str, Any], make_config: Callable[..., Path],
    daemon: Callable[[Path], Daemon],
) -> None:
    config = make_config(**embedded, watcher={"rescan_interval": 60})
    settings: Settings = load_settings(config, environ={})
    run = daemon(config)
    run.start("worker")
    run.start("watch")
    put(settings.inbox / "first.txt", b"Invoices of the first quarter.\n")
    wait_until(lambda: len(reports(settings.outbox)) == 1, 60, message="the first report")

    shutil.rmtree(settings.inbox)
    wait_until(lambda: "the inbox " in run.log("watch"), DEADLINE,
               message="the watcher to say the inbox is gone")
    settings.inbox.mkdir()
    put(settings.inbox / "second.txt", b"Receipts of the second quarter.\n")
    done = wait_until(lambda: [r for r in reports(settings.outbox)
                               if r["source"]["name"] == "second.txt"], DEADLINE,
                      message="second.txt to come out")
    assert done[0]["status"] == "done"
    assert f"watching {settings.inbox} again" in run.log("watch")


def _mount_tmpfs(path: Path) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "docproc-test", str(path)],
                   check=True, capture_output=True)


@pytest.fixture
def mountable(tmp_path: Path) -> Iterator[Path]:
    """A folder a tmpfs can be mounted on (root only); unmounted at the end."""
    require(os.geteuid() == 0, "mounting a tmpfs needs root")
    folder = tmp_path / "inbox"
    folder.mkdir()
    try:
        _mount_tmpfs(folder)
    except (OSError, subprocess.CalledProcessError) as exc:
        missing(f"cannot mount a tmpfs here: {exc}")
    yield folder
    while os.path.ismount(folder):
        subprocess.run(["umount", str(folder)], check=False, capture_output=True)


@pytest.mark.parametrize("mode", MODES)
def test_an_unmounted_inbox_is_missing_until_it_is_mounted_again(
    mountable: Path, mode: str, watching: Callable[..., Watching],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="docproc.watcher")
    inbox = mountable
    # The spool inside the share: a claim is a rename within one filesystem.
    run = watching(mode, inbox, inbox / ".docproc" / "spool")
    put(inbox / "mounted.txt", b"on the share")
    run.claimed("mounted.txt")

    subprocess.run(["umount", str(inbox)], check=True, capture_output=True)
    gone = run.inbox_is("missing")
    assert gone["reason"] == "unmounted"
    logged(caplog, f"the inbox {inbox} was unmounted; {LOST}")
    # The bare folder under the mount point is not the inbox: nothing there is claimed.
    put(inbox / "bare.txt", b"under the mount point")
    holds(lambda: run.watcher.inbox_state()["state"] == "missing"
          and [c.relpath for c in run.claims] == ["mounted.txt"], 1.5)
    (inbox / "bare.txt").unlink()

    _mount_tmpfs(inbox)
    put(inbox / "remounted.txt", b"on the share again")
    run.claimed("remounted.txt")
    assert run.inbox_is("ok")
    logged(caplog, f"watching {inbox} again ({mode} mode)")


@pytest.mark.parametrize("mode", MODES)
def test_a_subfolder_removed_and_made_again_is_watched_again(
    tmp_path: Path, mode: str, watching: Callable[..., Watching],
) -> None:
    # watchdog does this itself (a new folder gets its watch); kept working with the above.
    dept = tmp_path / "inbox" / "dept"
    dept.mkdir(parents=True)
    run = watching(mode)
    shutil.rmtree(dept)
    dept.mkdir()
    put(dept / "scan.txt", b"in the folder made again")
    run.claimed("dept/scan.txt")
    assert run.watcher.inbox_state()["state"] == "ok"
