"""Shared fixtures: the corpus, an embedded Valkey for the session, configs in tmp folders.

A test that needs a component of the machine (a broker service, Chromium, systemd-analyze)
calls require() or missing(): without it the test skips, saying what to install, and under
CI=true it fails, so CI never passes with part of the suite left out.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
import redis
import yaml

from docproc.broker import embedded_command

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "corpus"


def in_ci() -> bool:
    """Whether the suite runs as CI (CI=true, as .ci/run and most CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing(reason: str, *, module: bool = False) -> NoReturn:
    """A component this test needs is absent: fail under CI=true, skip saying why otherwise.

    module=True when called at a test module's top level (skips or fails the whole module).
    """
    __tracebackhide__ = True  # a skip is reported at the line of the test that needs it
    if in_ci():
        pytest.fail(f"{reason} (CI=true: every component must be present)", pytrace=False)
    pytest.skip(reason, allow_module_level=module)


def require(condition: object, reason: str, *, module: bool = False) -> None:
    """Go on when condition holds; otherwise missing(reason)."""
    __tracebackhide__ = True
    if not condition:
        missing(reason, module=module)


def wait_until(condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05,
               message: str = "condition") -> Any:
    """Poll condition until it returns something truthy; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {message}")
        time.sleep(interval)


def short_tmpdir(prefix: str) -> Path:
    """Return a fresh folder with a short path (unix sockets allow ~100 characters)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The real-world corpus of the repository (tests/data/corpus, licences in its README)."""
    assert (CORPUS / "pdf" / "files.json").is_file(), f"the corpus is missing from {CORPUS}"
    return CORPUS


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    """An empty inbox folder."""
    path = tmp_path / "inbox"
    path.mkdir()
    return path


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    """Where an instance whose state is under tmp_path keeps its spool (not made yet)."""
    return tmp_path / "state" / "spool"


@pytest.fixture(scope="session")
def valkey_socket() -> Iterator[Path]:
    """Run one embedded Valkey (the product's own command line) for the whole session."""
    state = short_tmpdir("dpv-")
    socket_path = state / "valkey.sock"
    (state / "valkey").mkdir()
    process = subprocess.Popen(embedded_command(state, socket_path), stdout=subprocess.DEVNULL)
    client = redis.Redis(unix_socket_path=str(socket_path))

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    wait_until(answers, 15, message="the embedded valkey to answer")
    yield socket_path
    process.terminate()
    process.wait(10)
    shutil.rmtree(state, ignore_errors=True)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# A database of the machine's Redis for this test session: two suites running at once (two
# checkouts on one machine) would otherwise flush and take each other's tasks.
SYSTEM_REDIS_DB = 1 + os.getpid() % 15
BROKERS = ["embedded", "redis", "rabbitmq"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark broker_matrix every test through the broker fixture, over the whole matrix or the
    brokers it pins: `pytest -m broker_matrix -k rabbitmq` runs what goes through RabbitMQ."""
    for item in items:
        if "broker" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.broker_matrix)


@contextlib.contextmanager
def _machine_wide_lock(name: str) -> Iterator[None]:
    """Hold a lock that every test session on this machine takes before using a shared service.

    RabbitMQ's queues (vhost /) are shared by every session on the machine, and two sessions
    may draw the same database of the system Redis: at once, they would purge or flush each
    other's queues and ledger and run each other's tasks.
    """
    import fcntl

    with open(f"/tmp/docproc-tests-{name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(params=BROKERS)
def broker(request: pytest.FixtureRequest, valkey_socket: Path) -> Iterator[dict[str, str | None]]:
    """Broker and result backend URLs for each broker of the matrix; a clean ledger.

    A system Redis or RabbitMQ that is not listening is missing(): a skip, or under CI a failure.
    A shared broker is held by this test alone until its end (_machine_wide_lock).
    """
    if request.param == "embedded":
        yield _broker_urls(request.param, valkey_socket)
        return
    with _machine_wide_lock(request.param):
        yield _broker_urls(request.param, valkey_socket)


def _broker_urls(name: str, valkey_socket: Path) -> dict[str, str | None]:
    embedded = f"redis+socket://{valkey_socket}"
    if name == "embedded":
        urls: dict[str, str | None] = {"broker_url": embedded, "result_backend": None}
        flush = f"unix://{valkey_socket}"
    elif name == "redis":
        require(_reachable("127.0.0.1", 6379),
                "no Redis on 127.0.0.1:6379 (Debian: redis-server; tests/run.sh starts it as root)")
        urls = {"broker_url": f"redis://127.0.0.1:6379/{SYSTEM_REDIS_DB}", "result_backend": None}
        flush = f"redis://127.0.0.1:6379/{SYSTEM_REDIS_DB}"
    else:
        require(_reachable("127.0.0.1", 5672), "no RabbitMQ on 127.0.0.1:5672 "
                "(Debian: rabbitmq-server; tests/run.sh starts it as root)")
        urls = {"broker_url": "amqp://guest:guest@127.0.0.1:5672//", "result_backend": embedded}
        flush = f"unix://{valkey_socket}"
        _purge_amqp_queue(urls["broker_url"] or "")
    redis.Redis.from_url(flush).flushdb()
    return urls


def ledger_url(broker: dict[str, str | None]) -> str:
    """Return the redis-py URL of the Redis that holds the ledger for this broker of the matrix."""
    from docproc.settings import as_redis_url

    return as_redis_url(broker["result_backend"] or broker["broker_url"] or "")


def broker_name(broker: dict[str, str | None]) -> str:
    """Return which broker of the matrix these URLs are: embedded, redis or rabbitmq."""
    url = broker["broker_url"] or ""
    return "rabbitmq" if url.startswith("amqp") else "embedded" if "socket" in url else "redis"


def _purge_amqp_queue(url: str) -> None:
    from kombu import Connection

    from docproc import queues

    with Connection(url) as connection:
        channel = connection.channel()
        for queue in queues.ALL:
            with contextlib.suppress(Exception):  # the queue does not exist yet
                channel.queue_purge(queue)


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a config file with inbox, outbox and state in tmp folders; return its path."""

    def make(**overrides: Any) -> Path:
        state = short_tmpdir("dps-")
        config: dict[str, Any] = {
            "inbox": str(tmp_path / "inbox"),
            "outbox": str(tmp_path / "outbox"),
            "state_dir": str(state),
            "watcher": {"settle_seconds": 0.3, "quiet_seconds": 0.3, "empty_grace_seconds": 1.0,
                        "rescan_interval": 5},
            "workers": {"concurrency": 2, "task_time_limit": 60, "task_soft_time_limit": 50},
            "status_api": {"port": free_port()},
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(config.get(key), dict):
                config[key] = {**config[key], **value}
            else:
                config[key] = value
        (tmp_path / "inbox").mkdir(exist_ok=True)
        path = tmp_path / "docproc.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    return make


class Daemon:
    """docproc components run as real subprocesses, stopped (as process groups) at the end."""

    def __init__(self, config: Path, log_dir: Path) -> None:
        self.config = config
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, *command: str) -> subprocess.Popen[bytes]:
        name = command[0]
        log = (self.log_dir / f"{name}.log").open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("DOCPROC_CONFIG", None)
        process = subprocess.Popen(
            [sys.executable, "-m", "docproc", "--config", str(self.config), *command],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env,
        )
        self.processes[name] = process
        if name == "watch":
            # Files dropped before the watch exists are found by its first scan and settle,
            # broken ones waiting out incomplete_grace_seconds: drop after it watches.
            wait_watching(lambda: self.log("watch"))
        return process

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Callable[[Path], Daemon]]:
    started: list[Daemon] = []

    def make(config: Path) -> Daemon:
        logs = tmp_path / "logs"
        logs.mkdir(exist_ok=True)
        instance = Daemon(config, logs)
        started.append(instance)
        return instance

    yield make
    for instance in started:
        instance.stop()


def start_up(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start `docproc up` with this config in its own process group, logging to a file."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("DOCPROC_CONFIG", None)
    return subprocess.Popen([sys.executable, "-m", "docproc", "--config", str(config), "up"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)


def wait_watching(log: Callable[[], str], timeout: float = 60) -> None:
    """Wait until a watcher's log says it watches the inbox (its first scan comes after)."""
    wait_until(lambda: re.search(r"\bwatch\s+INFO\s+watching ", log()), timeout,
               interval=0.05, message="the watcher to watch the inbox")


def stop_up(up: subprocess.Popen[bytes]) -> int:
    """Stop `docproc up` as Ctrl-C does (killing it after 25 s); return its exit status.

    -SIGKILL means it did not stop by itself within those 25 s.
    """
    os.killpg(up.pid, signal.SIGINT)
    try:
        up.wait(25)
    except subprocess.TimeoutExpired:
        os.killpg(up.pid, signal.SIGKILL)
        up.wait(5)
    return up.returncode


def run_docproc(config: Path, *args: str, env: dict[str, str] | None = None
                ) -> subprocess.CompletedProcess[str]:
    """Run a docproc command with this config, as a user would; return what it did."""
    environ = {**os.environ, **(env or {})}
    environ.pop("DOCPROC_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "docproc", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=60, env=environ)


def drop(source: Path, target: Path) -> None:
    """Put a copy of source into the inbox whole: under a hidden name, then renamed in.

    For tests about processing: a broken file copied in place (a crash TIFF, a bomb GIF) is
    structurally incomplete and waits watcher.incomplete_grace_seconds, like a cut-short scan.
    """
    staged = target.with_name(f".{target.name}.part")
    shutil.copyfile(source, staged)
    os.rename(staged, target)


def drop_tree(files: dict[str, Path], inbox: Path, beside: Path) -> None:
    """Put copies of files (inbox relpath: source) into the inbox as whole top-level entries.

    Each top-level folder is built beside the inbox and renamed in: a file moved into a
    folder made a moment earlier could be seen before its folder's watch exists, as a file
    found by a scan that must settle.
    """
    for relpath, source in files.items():
        staged = beside / relpath
        staged.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, staged)
    for top in sorted({relpath.split("/", 1)[0] for relpath in files}):
        os.rename(beside / top, inbox / top)


def reports(outbox: Path) -> list[dict[str, Any]]:
    """Return every report.json under the outbox's documents/ and failed/."""
    found = []
    for section in ("documents", "failed"):
        for path in sorted((outbox / section).glob("*/*/report.json")):
            report = json.loads(path.read_text())
            report["_folder"] = path.parent
            found.append(report)
    return found


def children_of(pid: int) -> list[int]:
    """Return the pids of the processes whose parent is pid, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found
