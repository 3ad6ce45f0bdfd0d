"""Nothing lost, nothing doubled: kill -9 every process of `docproc up` while documents fly.

Run through every broker of the matrix. Through RabbitMQ the reconciler cannot read the
queues (BLIND_QUIET_SECONDS): a dead worker's documents come back by RabbitMQ's redelivery.
"""

from __future__ import annotations

import os
import signal
import time
import xmlrpc.client
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from supervisor.xmlrpc import SupervisorTransport

from docproc.model import TERMINAL
from docproc.settings import load_settings
from tests.conftest import (
    broker_name,
    children_of,
    reports,
    start_up,
    stop_up,
    wait_until,
    wait_watching,
)

pytestmark = pytest.mark.e2e
DOCUMENTS = 200
WAVES = 4
# All 200 documents through the embedded broker; 60 (the first of the same sequence) through
# the others, to keep the matrix's wall time sane.
# Enough that a wave is still in flight after its first reports, on every broker.
DOCUMENTS_PER_BROKER = {"embedded": DOCUMENTS, "redis": 120, "rabbitmq": 120}


class Up:
    """A running `docproc up`, with its supervisord reachable for process ids."""

    def __init__(self, config: Path, log: Path) -> None:
        settings = yaml.safe_load(config.read_text())
        self.inbox = Path(settings["inbox"])
        self.outbox = Path(settings["outbox"])
        self.state = Path(settings["state_dir"])
        self.port = settings["status_api"]["port"]
        self.embedded = settings["broker_url"] == "embedded"
        self.process = start_up(config, log)
        url = load_settings(config, environ={}).redis_url
        self.ledger = redis.Redis.from_url(url, decode_responses=True)

    def rpc(self) -> Any:
        socket = f"unix://{self.state / 'supervisor.sock'}"
        transport = SupervisorTransport(None, None, socket)
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def pid(self, program: str) -> int:
        def running() -> int:
            try:
                info = self.rpc().supervisor.getProcessInfo(program)
            except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
                return 0
            return int(info["pid"]) if info["statename"] == "RUNNING" else 0
        return int(wait_until(running, 30, interval=0.1, message=f"{program} running"))

    def child_of(self, pid: int) -> int:
        def child() -> int:
            return next(iter(children_of(pid)), 0)
        return int(wait_until(child, 30, interval=0.1, message=f"a child of {pid}"))

    def kill(self, pid: int) -> float:
        os.kill(pid, signal.SIGKILL)
        return time.time()

    def stop(self) -> None:
        if self.process.poll() is None:
            stop_up(self.process)


@pytest.fixture
def up(broker: dict[str, str | None], make_config: Callable[..., Path], tmp_path: Path
       ) -> Iterator[Up]:
    """`docproc up` on this broker of the matrix: its own embedded one, or a shared service."""
    urls = {"broker_url": "embedded"} if broker_name(broker) == "embedded" else broker
    config = make_config(**urls, workers={"task_time_limit": 60, "task_soft_time_limit": 50})
    instance = Up(config, tmp_path / "up.log")
    wait_watching(lambda: (tmp_path / "up.log").read_text(errors="replace"))
    yield instance
    instance.stop()


def _distinct_pdfs(corpus: Path, count: int, folder: Path) -> list[Path]:
    sources = sorted(p for p in (corpus / "pdf").glob("0[0-2]*.pdf")
                     if "password" not in p.name and "unreadable" not in p.name)
    folder.mkdir()
    made = []
    for number in range(count):
        source = sources[number % len(sources)]
        target = folder / f"doc-{number:03d}-{source.name}"
        target.write_bytes(source.read_bytes() + f"\n%docproc-recovery-{number}\n".encode())
        made.append(target)
    return made


def _drop(files: list[Path], inbox: Path) -> None:
    for file in files:
        temporary = inbox / f".{file.name}.tmp"
        temporary.write_bytes(file.read_bytes())
        os.rename(temporary, inbox / file.name)


def _running(up: Up) -> set[str]:
    return {k for k in up.ledger.zrange("docproc:active", 0, -1)
            if up.ledger.hget(f"docproc:doc:{k}", "status") == "running"}


def _worked_on_since(up: Up, keys: set[str], since: float) -> Callable[[], bool]:
    """Return a check that each document ran a stage, or ended, after a given time."""
    pending = set(keys)

    def check() -> bool:
        for key in list(pending):
            status, updated = up.ledger.hmget(f"docproc:doc:{key}", "status", "updated_ts")
            # A resend alone marks it queued: a worker must have started it again.
            if status in TERMINAL or (status == "running" and float(updated or 0) > since + 0.001):
                pending.discard(key)
        return not pending
    return check


def test_kill_each_process_in_turn_loses_and_doubles_nothing(
    up: Up, broker: dict[str, str | None], corpus: Path, tmp_path: Path
) -> None:
    documents = DOCUMENTS_PER_BROKER[broker_name(broker)]
    files = _distinct_pdfs(corpus, documents, tmp_path / "payload")
    waves = [files[i::WAVES] for i in range(WAVES)]
    up.pid("api")
    worker = up.pid("worker")

    _drop(waves[0], up.inbox)
    wait_until(lambda: len(reports(up.outbox)) >= 2, 60, message="first reports")
    # The kills hit documents in flight, not an idle worker; each of them must end done.
    in_flight = wait_until(lambda: _running(up), 60, interval=0.01,
                           message="documents in flight")
    up.kill(up.child_of(worker))
    in_flight |= _running(up)
    killed_at = up.kill(up.pid("worker"))
    assert in_flight
    # The reconciler, not the broker restart further on, sends them again: they run before
    # the next kill. A deadline, not a speed (how soon is a figure for benchmarks/).
    wait_until(_worked_on_since(up, in_flight, killed_at), 60, interval=0.05,
               message="the killed worker's documents to run again")
    _drop(waves[1], up.inbox)
    up.kill(up.pid("watcher"))
    _drop(waves[2], up.inbox)
    up.kill(up.pid("beat"))
    wait_until(lambda: len(reports(up.outbox)) >= documents // 2, 90, message="half the reports")
    if up.embedded:  # a shared Redis or RabbitMQ is not the test's to kill
        up.kill(up.pid("broker"))
    _drop(waves[3], up.inbox)
    up.kill(up.pid("api"))

    found = wait_until(lambda: len(reports(up.outbox)) >= documents and reports(up.outbox), 150,
                       interval=0.5, message=f"{documents} reports")
    names = [report["source"]["name"] for report in found]
    doubled = sorted({name for name in names if names.count(name) > 1})
    lost = sorted({f.name for f in files} - set(names))
    not_done = sorted(r["source"]["name"] for r in found if r["status"] != "done")
    assert lost == [] and doubled == [] and not_done == []
    assert in_flight <= {report["id"] for report in found}
    assert not [p for p in up.inbox.rglob("*") if p.is_file()]


# Only the embedded broker is the daemon's own to stop; a shared Redis or RabbitMQ is not.
@pytest.mark.parametrize("broker", ["embedded"], indirect=True)
def test_broker_down_for_ten_seconds_mid_burst_loses_nothing(
    up: Up, corpus: Path, tmp_path: Path
) -> None:
    files = _distinct_pdfs(corpus, 120, tmp_path / "payload")
    up.pid("api")
    up.pid("worker")
    _drop(files[:60], up.inbox)
    wait_until(lambda: len(reports(up.outbox)) >= 10, 60, message="first reports")
    up.pid("broker")
    up.rpc().supervisor.stopProcess("broker")
    down_since = time.monotonic()
    _drop(files[60:], up.inbox)
    # While the broker is down, every file is safe: in the inbox, in the spool, or reported.
    while time.monotonic() - down_since < 10:
        # Counted in the files' direction of travel, so that none moves on uncounted.
        waiting = len([p for p in up.inbox.iterdir() if not p.name.startswith(".")])
        spooled = len(list((up.state / "spool").glob("*.data")))
        assert waiting + spooled + len(reports(up.outbox)) >= len(files)
        time.sleep(0.5)  # the outage lasts ten seconds by design
    up.rpc().supervisor.startProcess("broker")
    found = wait_until(lambda: len(reports(up.outbox)) >= len(files) and reports(up.outbox), 150,
                       interval=0.5, message=f"{len(files)} reports")
    names = [report["source"]["name"] for report in found]
    assert sorted(names) == sorted(f.name for f in files)
    assert {report["status"] for report in found} == {"done"}
