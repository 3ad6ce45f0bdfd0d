"""A full, read-only or missing outbox holds documents; they go on by themselves once it is back.

Real filesystems as root: a small tmpfs fills up, a read-only bind mount refuses writes.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from docproc.broker import redis_client
from docproc.holding import Holding, HoldingState
from docproc.inbox.spool import claim
from docproc.ledger.redis_ledger import RedisLedger
from docproc.model import Job, Source
from docproc.settings import Settings, load_settings
from docproc.status_api import create_app
from tests.conftest import Daemon, drop, missing, reports, require, run_docproc, wait_until


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def mountable(tmp_path: Path) -> Iterator[list[Path]]:
    """Yield a list to put mount points in; unmount them at the end. Skip unless root."""
    require(os.geteuid() == 0, "mounting a small or read-only outbox needs root")
    probe = tmp_path / "probe"
    probe.mkdir()
    try:
        _mount("-t", "tmpfs", "-o", "size=64k", "docproc-test", str(probe))
    except (OSError, subprocess.CalledProcessError) as exc:
        missing(f"cannot mount a tmpfs here: {exc}")
    mounted = [probe]
    yield mounted
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


@pytest.fixture
def embedded(valkey_socket: Path) -> dict[str, Any]:
    import redis

    redis.Redis(unix_socket_path=str(valkey_socket)).flushdb()
    return {"broker_url": f"redis+socket://{valkey_socket}", "result_backend": None}


def _ledger(settings: Settings) -> RedisLedger:
    return RedisLedger(redis_client(settings))


def _start(daemon: Callable[[Path], Daemon], config: Path) -> Daemon:
    run = daemon(config)
    run.start("worker")
    run.start("beat")
    run.start("watch")
    return run


def _notes(folder: Path, count: int, size: int) -> list[Path]:
    """Write count distinct text files of about size bytes; return them."""
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for number in range(count):
        line = f"note {number} about invoices, receipts and the quarterly review\n"
        path = folder / f"note-{number:02d}.txt"
        path.write_text(line * (size // len(line)))
        made.append(path)
    return made


def _all_done(outbox: Path, count: int) -> list[dict[str, Any]]:
    found = reports(outbox)
    return found if len(found) == count else []


def test_a_full_outbox_holds_documents_and_they_finish_once_there_is_room(
    mountable: list[Path], embedded: dict[str, Any], make_config: Callable[..., Path],
    daemon: Callable[[Path], Daemon], tmp_path: Path,
) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    _mount("-t", "tmpfs", "-o", "size=1m", "docproc-outbox", str(outbox))
    mountable.append(outbox)
    config = make_config(**embedded)
    settings = load_settings(config, environ={})
    holding = Holding(_ledger(settings).redis)
    _start(daemon, config)
    count = 24
    for note in _notes(tmp_path / "made", count, 100_000):
        drop(note, settings.inbox / note.name)

    wait_until(lambda: holding.count() > 0, 60, message="documents held for the full outbox")
    status = run_docproc(config, "status")
    assert "outbox not writable since" in status.stdout, status.stdout + status.stderr
    assert "No space left on device" in status.stdout, status.stdout
    wait_until(lambda: len(reports(outbox)) + holding.count() == count, 60,
               message="every document either written or held")
    assert _ledger(settings).counts()["failed"] == 0

    _mount("-o", "remount,size=64m", str(outbox))
    found = wait_until(lambda: _all_done(outbox, count), 90,
                       message="every held document to finish once there is room")
    assert sorted(report["status"] for report in found) == ["done"] * count
    assert {report["source"]["name"] for report in found} == {f"note-{n:02d}.txt"
                                                              for n in range(count)}
    assert all((report["_folder"] / "text.txt").stat().st_size > 90_000 for report in found)
    wait_until(lambda: holding.count() == 0 and not holding.state().since, 10,
               message="the outage to end")
    assert _ledger(settings).counts()["failed"] == 0
    wait_until(lambda: not list(settings.spool_dir.glob("*.data")), 10,
               message="the spool to be emptied")


def test_a_read_only_outbox_holds_documents_health_says_why_and_they_finish_after(
    mountable: list[Path], embedded: dict[str, Any], make_config: Callable[..., Path],
    daemon: Callable[[Path], Daemon], tmp_path: Path,
) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    config = make_config(**embedded)
    settings = load_settings(config, environ={})
    holding = Holding(_ledger(settings).redis)
    _start(daemon, config)
    _mount("--bind", str(outbox), str(outbox))
    mountable.append(outbox)
    _mount("-o", "remount,bind,ro", str(outbox))
    count = 5
    for note in _notes(tmp_path / "made", count, 2_000):
        drop(note, settings.inbox / note.name)

    wait_until(lambda: holding.count() == count, 60, message="every document held")
    api = create_app(settings).test_client()
    # Degraded, not unavailable, once the worker's first heartbeat is in.
    body = wait_until(lambda: (answer := api.get("/healthz").get_json())["workers"] and answer,
                      10, message="the worker's heartbeat")
    assert api.get("/healthz").status_code == 503
    assert body["status"] == "degraded", body
    assert "Read-only file system" in body["reason"] and f"{count} documents held" in body["reason"]
    metrics = api.get("/metrics").get_data(as_text=True)
    assert f"docproc_documents_held {count}.0" in metrics
    assert _ledger(settings).counts()["failed"] == 0

    subprocess.run(["umount", str(outbox)], check=True)
    mountable.remove(outbox)
    found = wait_until(lambda: _all_done(outbox, count), 60,
                       message="every held document to finish once the outbox is writable")
    assert [report["status"] for report in found] == ["done"] * count
    assert api.get("/healthz").status_code == 200


def _stranded(settings: Settings) -> str:
    """Make what earlier versions left when they could not write a failure: a failed record
    with no outbox folder, its original in the spool. Return its key."""
    settings.spool_dir.mkdir(parents=True, exist_ok=True)
    settings.inbox.mkdir(parents=True, exist_ok=True)
    made = settings.inbox.parent / "made.txt"
    made.write_text("A stranded note about invoices and receipts.\n")
    staged = settings.inbox / "stranded.txt"
    os.rename(made, staged)
    claimed = claim(staged, settings.inbox, settings.spool_dir)
    assert claimed is not None
    ledger = _ledger(settings)
    [receipt] = ledger.record_many([claimed])
    ledger.finish(receipt.key, "failed", "", "internal")
    return receipt.key


@pytest.fixture
def stranded(embedded: dict[str, Any], make_config: Callable[..., Path]
             ) -> tuple[Path, Settings, str]:
    """Return a config, its settings and the key of a stranded record made under them."""
    config = make_config(**embedded)
    settings = load_settings(config, environ={})
    return config, settings, _stranded(settings)


def test_stranded_records_of_earlier_versions_are_processed_again_at_start(
    stranded: tuple[Path, Settings, str], daemon: Callable[[Path], Daemon],
) -> None:
    config, settings, key = stranded
    _start(daemon, config)
    [report] = wait_until(lambda: reports(settings.outbox), 60, message="the stranded one's report")
    assert report["status"] == "done" and report["source"]["name"] == "stranded.txt"
    ledger = _ledger(settings)
    assert wait_until(lambda: (ledger.get(key) or {}).get("status") == "done", 10)
    assert ledger.counts()["failed"] == 0
    wait_until(lambda: not list(settings.spool_dir.glob("*.data")), 10,
               message="the spool to be emptied")


def test_retry_sends_a_stranded_record_again_from_its_spooled_original(
    stranded: tuple[Path, Settings, str], daemon: Callable[[Path], Daemon],
) -> None:
    config, settings, key = stranded
    retried = run_docproc(config, "retry", key)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert (settings.inbox / "stranded.txt").is_file()
    _start(daemon, config)
    [report] = wait_until(lambda: reports(settings.outbox), 60, message="the retried report")
    assert report["status"] == "done" and report["source"]["name"] == "stranded.txt"
    assert (_ledger(settings).get(key) or {}).get("status") == "retried"


def _job(key: str, received_ts: float) -> Job:
    source = Source(f"{key}.txt", f"{key}.txt", 1, "0" * 64, "2026-11-23T10:00:00Z")
    return Job(key, key, f"token-{key}", f"/spool/{key}.data", f"/spool/{key}.work",
               received_ts, source)


def test_held_documents_go_on_in_the_order_they_came(embedded: dict[str, Any],
                                                     make_config: Callable[..., Path]) -> None:
    holding = Holding(_ledger(load_settings(make_config(**embedded), environ={})).redis)
    jobs = [_job(key, ts) for key, ts in (("b", 2.0), ("c", 3.0), ("a", 1.0))]
    holding.hold(jobs[:2], "cannot write: No space left on device")
    holding.hold(jobs[2:], None)
    state = holding.state()
    assert state.count == 3 and state.reason == "cannot write: No space left on device"
    assert [job.key for job in holding.take(2)] == ["a", "b"]
    assert holding.state().count == 1
    assert [job.key for job in holding.take(2)] == ["c"]
    assert holding.state() == HoldingState(0, None, None) and holding.take(2) == []


def test_a_release_sends_on_only_what_was_held_when_its_probe_passed(
    embedded: dict[str, Any], make_config: Callable[..., Path],
) -> None:
    # A probe that passes where the documents do not fit: each one sent is held again at
    # once. The release must end, leaving them for the next try, not loop on them.
    holding = Holding(_ledger(load_settings(make_config(**embedded), environ={})).redis)
    jobs = [_job(f"k{n}", float(n)) for n in range(40)]
    holding.hold(jobs, "cannot write: No space left on device")
    holding.redis.hset("docproc:held:state", "next_try", "0")
    sent: list[str] = []

    def send(batch: list[Job]) -> None:
        sent.extend(job.key for job in batch)
        holding.hold(batch, "cannot write: No space left on device")

    assert holding.release(lambda: None, send) == 40
    assert sent == [f"k{n}" for n in range(40)]
    assert holding.count() == 40
    assert holding.release(lambda: "still full", send) is None  # not due yet: backed off
