"""What the README promises and no other test checked, each by its user-visible outcome."""

from __future__ import annotations

import hashlib
import json
import os
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
    reports,
    wait_until,
)


def _alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


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
