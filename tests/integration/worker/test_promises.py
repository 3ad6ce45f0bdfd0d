"""What the README promises of workers: JSON only, the memory cap, children dying with their
worker, documents that keep killing it, and the soft limit of `docproc process`."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import yaml

from docproc.ledger.redis_ledger import RedisLedger
from docproc.settings import load_settings
from tests.conftest import Daemon, children_of, ledger_url, reports, short_tmpdir, wait_until


def _slow_image(path: Path, side: int = 9000) -> None:
    """Write an image under the bomb limit that takes seconds to decode."""
    from PIL import Image

    Image.new("RGB", (side, side), (200, 30, 30)).save(path, format="PNG", compress_level=1)


# --- Delivery: late acks, reject on worker lost, JSON only, visibility timeout ----------------

def test_a_pickled_message_is_refused_and_the_worker_goes_on(
    broker: dict[str, Any], make_config: Callable[..., Path], daemon: Callable[[Path], Daemon],
    tmp_path: Path,
) -> None:
    from kombu import Connection

    from docproc.app import celery_config

    config = make_config(**broker)
    settings = load_settings(config, environ={})
    run = daemon(config)
    run.start("worker")
    wait_until(lambda: "ready." in run.log("worker"), 60, message="the worker to be ready")
    run.start("watch")
    marker = tmp_path / "unpickled"
    # What a pickle would run on the worker, were it accepted: it must never exist.
    payload = _Touch(str(marker))
    with Connection(celery_config(settings)["broker_url"]) as connection:
        producer = connection.Producer(serializer="pickle")
        producer.publish(((payload,), {}, {}), routing_key="docproc", exchange="docproc",
                         headers={"task": "docproc.extract", "id": "pickled-1", "lang": "py",
                                  "argsrepr": "", "kwargsrepr": "", "retries": 0},
                         declare=[])
    wait_until(lambda: "untrusted content" in run.log("worker"), 30,
               message="the worker to refuse the pickle")
    (settings.inbox / "after.txt").write_text("sent after a message the worker refused\n")
    found = wait_until(lambda: reports(settings.outbox), 60, message="the next report")
    assert [(r["source"]["name"], r["status"]) for r in found] == [("after.txt", "done")]
    assert not marker.exists()
    assert run.processes["worker"].poll() is None


class _Touch:
    """Unpickled, it would create a file: the proof that pickle was (not) accepted."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (Path(self.path),))


# --- Workers: the memory cap, children dying with their parent, documents that kill them -----

def test_a_document_needing_more_memory_than_the_cap_fails_too_large_and_the_worker_goes_on(
    make_config: Callable[..., Path], daemon: Callable[[Path], Daemon], valkey_socket: Path,
    tmp_path: Path,
) -> None:
    redis.Redis(unix_socket_path=str(valkey_socket)).flushdb()
    config = make_config(broker_url=f"redis+socket://{valkey_socket}",
                         workers={"max_memory_per_child_mb": 64, "concurrency": 1})
    settings = load_settings(config, environ={})
    run = daemon(config)
    run.start("worker")
    run.start("watch")
    # 40 million two-letter words in 120 MB (under max_file_mb): counting them takes some
    # 2.4 GB (a list entry and a string each), more than a child capped near
    # max(2 * 64, 64 + 1024) MB of address space has.
    staged = tmp_path / "words.txt"
    with staged.open("w") as out:
        for _ in range(40):
            out.write("ab " * 1_000_000)
    staged.rename(settings.inbox / "words.txt")
    found = wait_until(lambda: reports(settings.outbox), 120, message="the report")
    assert (found[0]["status"], found[0]["error"]["type"]) == ("failed", "too_large"), found[0]
    assert "max_memory_per_child_mb" in found[0]["error"]["message"]
    (settings.inbox / "after.txt").write_text("a small file after the big one\n")
    found = wait_until(lambda: len(reports(settings.outbox)) == 2 and reports(settings.outbox),
                       60, message="the next report")
    assert {r["source"]["name"]: r["status"] for r in found}["after.txt"] == "done"
    assert run.processes["worker"].poll() is None


# Run as a child subreaper, in a process group of its own within this session: a worker child
# left behind comes back to it (its exit status seen), and its group is never orphaned, so
# the kernel's SIGHUP to stopped members of orphaned groups does not end it in our place.
KILL_THE_WORKER_MAIN = """
import ctypes, json, os, signal, subprocess, sys, time
PR_SET_CHILD_SUBREAPER = 36
ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1)
worker = subprocess.Popen([sys.executable, "-m", "docproc", "--config", sys.argv[1], "worker"],
                          stdout=open(sys.argv[2], "ab"), stderr=subprocess.STDOUT,
                          process_group=0)

def children():
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == worker.pid:
                        found.append(int(entry))
            except OSError:
                pass
    return found

deadline = time.monotonic() + 60
while len(kids := children()) < 2 or b"ready." not in open(sys.argv[2], "rb").read():
    assert time.monotonic() < deadline, "no two worker children"
    time.sleep(0.05)
# Stopped, a child cannot notice by itself that its parent is gone (a closed pipe, as when
# busy with a long document): only the parent-death signal ends it.
for kid in kids:
    os.kill(kid, signal.SIGSTOP)
os.kill(worker.pid, signal.SIGKILL)
worker.wait()
ended = {}
deadline = time.monotonic() + 10
while len(ended) < len(kids) and time.monotonic() < deadline:
    pid, status = os.waitpid(-1, os.WNOHANG)
    if pid in kids:
        ended[pid] = os.WTERMSIG(status) if os.WIFSIGNALED(status) else -os.WEXITSTATUS(status)
    elif pid == 0:
        time.sleep(0.05)
left = [kid for kid in kids if kid not in ended]
for kid in left:
    os.kill(kid, signal.SIGKILL)
print(json.dumps({"children": len(kids), "ended_by": sorted(ended.values()), "left": len(left)}))
"""


def test_a_worker_child_dies_with_its_killed_parent(
    make_config: Callable[..., Path], valkey_socket: Path, tmp_path: Path,
) -> None:
    config = make_config(broker_url=f"redis+socket://{valkey_socket}",
                         workers={"concurrency": 2})
    environ = {k: v for k, v in os.environ.items() if k != "DOCPROC_CONFIG"}
    done = subprocess.run([sys.executable, "-c", KILL_THE_WORKER_MAIN, str(config),
                           str(tmp_path / "worker.log")],
                          capture_output=True, text=True, timeout=120, env=environ)
    assert done.returncode == 0, done.stderr[-2000:]
    outcome = json.loads(done.stdout.splitlines()[-1])
    assert outcome == {"children": 2, "ended_by": [signal.SIGKILL, signal.SIGKILL], "left": 0}


def test_a_document_that_keeps_killing_its_worker_ends_timeout_after_max_retries(
    broker: dict[str, Any], make_config: Callable[..., Path], daemon: Callable[[Path], Daemon],
    tmp_path: Path,
) -> None:
    max_retries = 1
    config = make_config(**broker, workers={"max_retries": max_retries, "concurrency": 1})
    settings = load_settings(config, environ={})
    ledger = RedisLedger(redis.Redis.from_url(ledger_url(broker), decode_responses=True))
    run = daemon(config)
    worker = run.start("worker")
    run.start("beat")  # sends the reconciler
    run.start("watch")
    _slow_image(tmp_path / "killer.png")
    data = (tmp_path / "killer.png").read_bytes()
    (tmp_path / "killer.png").rename(settings.inbox / "killer.png")
    key = hashlib.sha256(data).hexdigest()[:12]

    killed: set[int] = set()
    runs_cut: set[Any] = set()
    deadline = time.monotonic() + 240
    # Kill the child that runs it, each time it runs again, as a memory killer would.
    while not reports(settings.outbox):
        assert len(runs_cut) <= max_retries + 3, f"not given up after {len(runs_cut)} kills"
        assert time.monotonic() < deadline, f"no report 240 s on, after {len(runs_cut)} kills"
        record = ledger.get(key) or {}
        # Each run records when its extract (seconds of decoding) started: a run not yet cut.
        run_started = (record.get("stages") or {}).get("extract", {}).get("started")
        if record.get("stage") == "extract" and run_started not in runs_cut:
            runs_cut.add(run_started)
            for child in children_of(worker.pid):
                os.kill(child, signal.SIGKILL)
                killed.add(child)
        time.sleep(0.05)
    report = reports(settings.outbox)[0]
    assert (report["status"], report["error"]["type"]) == ("failed", "timeout"), report
    assert "died or was killed" in report["error"]["message"]
    assert (report["_folder"] / "original" / "killer.png").read_bytes() == data
    assert len(runs_cut) == len(killed) == max_retries + 1
    assert worker.poll() is None


# --- docproc process: the soft limit ends a stage ---------------------------------------------

def test_docproc_process_ends_a_stage_at_the_soft_limit_as_timeout(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    _slow_image(tmp_path / "in" / "huge.png")
    (tmp_path / "in" / "small.txt").write_text("a small file beside the slow one\n")
    config = tmp_path / "docproc.yaml"
    config.write_text(yaml.safe_dump({
        "state_dir": str(short_tmpdir("dps-")),
        "workers": {"task_soft_time_limit": 0.2, "task_time_limit": 0.4}}))
    done = subprocess.run(
        [sys.executable, "-m", "docproc", "--config", str(config), "process",
         str(tmp_path / "in"), "--outbox", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    by_name = {r["source"]["name"]: r for r in reports(tmp_path / "out")}
    assert set(by_name) == {"huge.png", "small.txt"}
    huge = by_name["huge.png"]
    assert (huge["status"], huge["error"]["type"]) == ("failed", "timeout")
    assert "task_soft_time_limit (0.2 s)" in huge["error"]["message"]
    assert (huge["_folder"] / "original" / "huge.png").exists()
    assert by_name["small.txt"]["status"] == "done"


