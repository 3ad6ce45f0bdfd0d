"""Flower, pointed at docproc's Celery app, shows our workers and the tasks they ran."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from docproc.settings import load_settings
from tests.conftest import Daemon, free_port, reports, require, wait_until

require(importlib.util.find_spec("flower"), "flower is in the test extra: pip install -e '.[test]'",
        module=True)


@pytest.fixture
def flower(tmp_path: Path) -> Iterator[Callable[[Path], int]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(config: Path) -> int:
        port = free_port()
        env = {**os.environ, "DOCPROC_CONFIG": str(config), "FLOWER_UNAUTHENTICATED_API": "true"}
        log = (tmp_path / "flower.log").open("ab")
        started.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "docproc.tasks", "flower",
             "--address=127.0.0.1", f"--port={port}",
             # The workers must send events because the configuration says so, not because
             # Flower switched them on.
             "--enable_events=False"],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True))
        return port

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())
    except OSError:
        return None


def test_flower_shows_our_workers_and_tasks_with_task_events_on(
    valkey_socket: Path, make_config: Callable[..., Path], daemon: Callable[[Path], Daemon],
    flower: Callable[[Path], int],
) -> None:
    redis.Redis(unix_socket_path=str(valkey_socket)).flushdb()
    config = make_config(broker_url=f"redis+socket://{valkey_socket}",
                         workers={"task_events": True})
    settings = load_settings(config, environ={})
    run = daemon(config)
    run.start("worker", "--name", "flowered@%h")
    run.start("watch")
    port = flower(config)
    base = f"http://127.0.0.1:{port}/api"
    workers = wait_until(lambda: (found := _get(f"{base}/workers?refresh=1"))
                         and any(name.startswith("flowered@") for name in found) and found,
                         40, interval=0.5, message="Flower to list our worker")
    name = next(name for name in workers if name.startswith("flowered@"))
    registered = set(workers[name]["registered"])
    assert {"docproc.extract", "docproc.finish"} <= registered

    (settings.inbox / "letter.txt").write_text("Dear reader, the invoices are attached.\n")
    wait_until(lambda: reports(settings.outbox), 30, message="the letter's report")

    def finished_tasks() -> dict[str, Any]:
        tasks = _get(f"{base}/tasks") or {}
        return {task["name"]: task for task in tasks.values()
                if task.get("state") == "SUCCESS" and task.get("worker") == name}

    tasks = wait_until(lambda: len(found := finished_tasks()) >= 2 and found, 20, interval=0.5,
                       message="Flower to see the chain's tasks succeed")
    assert {"docproc.extract", "docproc.finish"} <= set(tasks)
    # Operators see which documents a task carries, not a dump of its jobs.
    assert "1 document: " in tasks["docproc.extract"]["args"]
    assert "letter.txt" in tasks["docproc.finish"]["args"]
