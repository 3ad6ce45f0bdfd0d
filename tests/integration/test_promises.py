"""What the README promises and no other test checked, each by its user-visible outcome."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import yaml

from docproc.inbox.spool import Claimed
from docproc.ledger.redis_ledger import RedisLedger
from docproc.settings import load_settings
from tests.conftest import (
    Daemon,
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
    ledger = RedisLedger(client)
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
