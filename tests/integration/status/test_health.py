"""`/healthz`: worker heartbeats, a broker away or hung, the live workers' names."""

from __future__ import annotations

import concurrent.futures
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from docproc.ledger.redis_ledger import RedisLedger
from docproc.settings import Settings, load_settings
from docproc.status_api import create_app
from tests.conftest import Daemon, free_port, wait_until


def _settings(config: Path) -> Settings:
    return load_settings(config, environ={})


def test_healthz_reads_worker_heartbeats_and_says_when_the_broker_is_away_or_hangs(
    embedded: dict[str, Any], make_config: Callable[..., Path], valkey_socket: Path,
) -> None:
    settings = _settings(make_config(**embedded))
    client = create_app(settings).test_client()
    alone = client.get("/healthz")
    assert alone.status_code == 503 and "heartbeat" in alone.get_json()["reason"]

    ledger = RedisLedger(redis.Redis(unix_socket_path=str(valkey_socket), decode_responses=True))
    ledger.heartbeat("worker7@scanhost/4242", [], 4.0)
    healthy = client.get("/healthz")
    assert healthy.status_code == 200
    assert healthy.get_json() == {"status": "ok", "workers": ["worker7@scanhost"]}

    # A broker that is gone, and one that hangs (accepts, never answers): a health check
    # says so (how fast is for benchmarks/), rather than waiting on the broker for good.
    with socket.create_server(("127.0.0.1", 0)) as hung:
        for url in (f"redis://127.0.0.1:{free_port()}/0",
                    f"redis://127.0.0.1:{hung.getsockname()[1]}/0"):
            broker_away = create_app(_settings(make_config(broker_url=url))).test_client()
            pool = concurrent.futures.ThreadPoolExecutor(1)
            try:
                answer = pool.submit(broker_away.get, "/healthz").result(timeout=60)
            finally:
                pool.shutdown(wait=False)
            assert answer.status_code == 503, url
            assert "does not answer" in answer.get_json()["reason"]


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
