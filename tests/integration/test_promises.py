"""What the README promises and no other test checked, each by its user-visible outcome."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import yaml
from prometheus_client.parser import text_string_to_metric_families

from docproc.inbox.spool import Claimed
from docproc.ledger import Ledger
from docproc.settings import load_settings
from docproc.status_api import create_app
from tests.conftest import (
    Daemon,
    children_of,
    ledger_url,
    reports,
    short_tmpdir,
    wait_until,
)


def _slow_image(path: Path, side: int = 9000) -> None:
    """Write an image under the bomb limit that takes seconds to decode."""
    from PIL import Image

    Image.new("RGB", (side, side), (200, 30, 30)).save(path, format="PNG", compress_level=1)


def _alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


# --- Delivery: late acks, reject on worker lost, JSON only, visibility timeout ----------------

def test_delivery_settings_are_what_the_readme_says(make_config: Callable[..., Path]) -> None:
    from docproc.app import celery_config

    for hard, soft in ((60, 50), (7200, 7000)):
        settings = load_settings(make_config(workers={"task_time_limit": hard,
                                                      "task_soft_time_limit": soft}), environ={})
        config = celery_config(settings)
        assert config["task_acks_late"] is True
        assert config["task_reject_on_worker_lost"] is True
        assert config["accept_content"] == ["json"]
        assert config["task_serializer"] == config["result_serializer"] == "json"
        assert config["broker_transport_options"]["visibility_timeout"] > hard
        assert config["broker_connection_max_retries"] is None  # connection retries forever


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
    ledger = Ledger(redis.Redis.from_url(ledger_url(broker), decode_responses=True))
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


# --- Retry: ` (retry 2)` when the name is taken -------------------------------------------------

def test_retry_adds_retry_2_to_the_name_when_a_file_of_that_name_waits_in_the_inbox(
    make_config: Callable[..., Path], valkey_socket: Path, tmp_path: Path,
) -> None:
    client = redis.Redis(unix_socket_path=str(valkey_socket), decode_responses=True)
    client.flushdb()
    config = make_config(broker_url=f"redis+socket://{valkey_socket}")
    settings = load_settings(config, environ={})
    ledger = Ledger(client)
    original = b"%PDF-1.4 the failed original\n"
    spooled = tmp_path / "spooled.data"
    spooled.write_bytes(original)
    key = ledger.record(Claimed("01-retry", spooled, "scan.pdf", "dept/scan.pdf", len(original),
                                hashlib.sha256(original).hexdigest(),
                                "2026-11-23T10:00:00Z")).key
    folder = settings.outbox / "failed" / "2026-11-23" / f"scan.{key}"
    (folder / "original").mkdir(parents=True)
    (folder / "original" / "scan.pdf").write_bytes(original)
    (folder / "report.json").write_text(json.dumps({"id": key, "status": "failed"}))
    ledger.finish(key, "failed", str(folder), "corrupt")
    (settings.inbox / "dept").mkdir(parents=True, exist_ok=True)
    (settings.inbox / "dept" / "scan.pdf").write_bytes(b"someone else's scan, waiting\n")

    environ = {**os.environ}
    environ.pop("DOCPROC_CONFIG", None)
    done = subprocess.run([sys.executable, "-m", "docproc", "--config", str(config), "retry", key],
                          capture_output=True, text=True, timeout=60, env=environ)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (settings.inbox / "dept" / "scan (retry 2).pdf").read_bytes() == original
    assert (settings.inbox / "dept" / "scan.pdf").read_bytes() == b"someone else's scan, waiting\n"
    assert sorted(p.name for p in (settings.inbox / "dept").iterdir()) == [
        "scan (retry 2).pdf", "scan.pdf"]


# --- The embedded broker: a 0700 unix socket, no TCP port ------------------------------------

def _listening_inodes() -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                inodes.add(fields[9])
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def test_the_embedded_broker_listens_on_a_0700_socket_only(
    make_config: Callable[..., Path], daemon: Callable[[Path], Daemon],
) -> None:
    config = make_config(broker_url="embedded")
    settings = load_settings(config, environ={})
    broker = daemon(config).start("broker")
    client = redis.Redis(unix_socket_path=str(settings.socket_path))

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    wait_until(answers, 30, message="the embedded broker to answer")
    assert stat.S_ISSOCK(settings.socket_path.stat().st_mode)
    assert stat.S_IMODE(settings.socket_path.stat().st_mode) == 0o700
    assert stat.S_IMODE(settings.state_dir.stat().st_mode) == 0o700
    # `docproc broker` replaced itself with valkey-server: its pid is the server's.
    assert Path(f"/proc/{broker.pid}/exe").resolve().name.startswith("valkey")
    sockets = _socket_inodes(broker.pid)
    assert sockets, "the server holds no socket at all"
    assert sockets & _listening_inodes() == set()
    assert client.config_get("port") == {"port": "0"}


# --- Which configuration file: --config, else $DOCPROC_CONFIG, else ./config/docproc.yaml ---

def test_config_show_reads_docproc_config_else_the_default_path(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DOCPROC")}

    def show(cwd: Path, **extra: str) -> dict[str, Any]:
        done = subprocess.run([sys.executable, "-m", "docproc", "config", "show"], cwd=cwd,
                              capture_output=True, text=True, timeout=60,
                              env={**environ, **extra})
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    named = tmp_path / "elsewhere" / "named.yaml"
    named.parent.mkdir()
    named.write_text(yaml.safe_dump({"inbox": "/srv/from-env/inbox"}))
    default = tmp_path / "here" / "config" / "docproc.yaml"
    default.parent.mkdir(parents=True)
    default.write_text(yaml.safe_dump({"inbox": "/srv/from-default/inbox"}))

    assert show(tmp_path / "here", DOCPROC_CONFIG=str(named))["inbox"] == "/srv/from-env/inbox"
    assert show(tmp_path / "here")["inbox"] == "/srv/from-default/inbox"


# --- The status API: since as Unix seconds, every status filter, the unchecked metrics -------

def test_documents_listing_filters_by_each_status_and_since_in_unix_seconds(
    make_config: Callable[..., Path], valkey_socket: Path, tmp_path: Path,
) -> None:
    client = redis.Redis(unix_socket_path=str(valkey_socket), decode_responses=True)
    client.flushdb()
    ledger = Ledger(client)
    settings = load_settings(make_config(broker_url=f"redis+socket://{valkey_socket}"),
                             environ={})

    def record(name: str) -> str:
        data = name.encode()
        return ledger.record(Claimed(f"tok-{name}", tmp_path / name, name, name, len(data),
                                     hashlib.sha256(data).hexdigest(),
                                     time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))).key

    keys = {status: record(f"{status}.txt") for status in
            ("queued", "running", "done", "failed", "duplicate", "retried")}
    ledger.start_stage_many({keys["running"]: "{}"}, "extract", "w1")
    ledger.finish(keys["done"], "done", "", None)
    ledger.finish(keys["failed"], "failed", "", "corrupt")
    ledger.finish(keys["duplicate"], "duplicate", "", None)
    ledger.finish(keys["retried"], "failed", "", "corrupt")
    assert ledger.mark_retried(keys["retried"]) == "retried"
    api = create_app(settings, ledger).test_client()

    def listed(query: str) -> list[str]:
        response = api.get(f"/api/documents?{query}")
        assert response.status_code == 200, response.get_json()
        return [document["key"] for document in response.get_json()["documents"]]

    for status, key in keys.items():
        assert listed(f"status={status}") == [key], status
    assert sorted(listed("status=queued,retried")) == sorted([keys["queued"], keys["retried"]])
    received = {key: float(ledger.get(key)["received_ts"]) for key in keys.values()}
    newest = max(received.values())
    assert sorted(listed(f"since={newest:.6f}")) == sorted(
        key for key, ts in received.items() if ts >= newest)
    assert listed(f"since={int(newest) + 3600}") == []
    assert sorted(listed(f"since={int(min(received.values())) - 1}")) == sorted(keys.values())


def _metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_watcher_spool_ledger_and_queue_wait_metrics(
    make_config: Callable[..., Path], daemon: Callable[[Path], Daemon], valkey_socket: Path,
) -> None:
    redis.Redis(unix_socket_path=str(valkey_socket)).flushdb()
    config = make_config(broker_url=f"redis+socket://{valkey_socket}")
    settings = load_settings(config, environ={})
    run = daemon(config)
    run.start("watch")
    for number in range(3):
        (settings.inbox / f"note-{number}.txt").write_text(f"note number {number}\n")
    api = create_app(settings).test_client()

    def metrics() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return _metric_samples(api.get("/metrics").get_data(as_text=True))

    # No worker yet: three claimed files wait in the spool.
    spooled = sum(len(f"note number {n}\n") for n in range(3))
    waiting = wait_until(lambda: (m := metrics()).get(("docproc_spool_files", ())) == 3
                         and m.get(("docproc_watcher_files_claimed_total", ())) == 3 and m, 30,
                         message="three files claimed and spooled")
    assert waiting[("docproc_spool_bytes", ())] == spooled
    assert waiting[("docproc_watcher_files_seen_total", ())] == 3
    assert waiting[("docproc_watchers_online", ())] == 1
    assert waiting[("docproc_ledger_up", ())] == 1
    run.start("worker")
    wait_until(lambda: len(reports(settings.outbox)) == 3, 60, message="three reports")
    done = wait_until(lambda: (m := metrics()).get(("docproc_spool_files", ())) == 0 and m, 30,
                      message="the spool to empty")
    assert done[("docproc_spool_bytes", ())] == 0
    assert done[("docproc_queue_wait_seconds_count", ())] == 3
    assert done[("docproc_queue_wait_seconds_bucket", (("le", "+Inf"),))] == 3

    gone = load_settings(make_config(broker_url="redis://127.0.0.1:1/0"), environ={})
    away = _metric_samples(create_app(gone).test_client().get("/metrics").get_data(as_text=True))
    assert away[("docproc_ledger_up", ())] == 0


def test_healthz_body_names_the_live_workers(
    make_config: Callable[..., Path], daemon: Callable[[Path], Daemon], valkey_socket: Path,
) -> None:
    redis.Redis(unix_socket_path=str(valkey_socket)).flushdb()
    config = make_config(broker_url=f"redis+socket://{valkey_socket}")
    run = daemon(config)
    run.start("worker", "--name", "scanner@%h")
    api = create_app(load_settings(config, environ={})).test_client()
    healthy = wait_until(lambda: (r := api.get("/healthz")).status_code == 200 and r, 60,
                         message="a healthy answer")
    assert healthy.get_json() == {"status": "ok", "workers": [f"scanner@{os.uname().nodename}"]}
