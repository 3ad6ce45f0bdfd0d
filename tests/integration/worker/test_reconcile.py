"""The reconciler and the reconcile task, against a real Redis (the session's embedded Valkey)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from docproc.ledger.redis_ledger import RedisLedger
from docproc.settings import load_settings
from docproc.worker.reconcile import (
    CONFIRM_SECONDS,
    QUIET_SECONDS,
    Outcome,
    Reconciler,
    queued_keys,
)
from tests.claims import spooled_file
from tests.conftest import broker_name, ledger_url, wait_until


@pytest.fixture
def ledger(broker: dict[str, str | None]) -> RedisLedger:
    """A clean ledger where each broker of the matrix keeps it (RabbitMQ: its result store)."""
    return RedisLedger(redis.Redis.from_url(ledger_url(broker), decode_responses=True))


def test_reconciler_resends_orphans_only_and_gives_up_after_too_many(
    ledger: RedisLedger, tmp_path: Path
) -> None:
    spool = tmp_path
    orphan = ledger.record(spooled_file(spool, "01-orphan", b"orphan")).key
    held = ledger.record(spooled_file(spool, "02-held", b"held")).key
    waiting = ledger.record(spooled_file(spool, "03-queued", b"queued")).key
    ledger.heartbeat("worker1@host/42", [held], ttl=10)
    resent: list[str] = []
    given_up: list[tuple[str, str]] = []

    def give_up(record: dict[str, Any], reason: str) -> None:
        given_up.append((record["key"], reason))
        ledger.finish(record["key"], "failed", "", "timeout")

    reconciler = Reconciler(ledger, lambda r: resent.append(r["key"]), give_up, max_recoveries=1)
    later = time.time() + QUIET_SECONDS + 1
    assert reconciler.run_once({waiting}, now=later).resent == []  # first sighting: suspect
    assert reconciler.run_once({waiting}, now=later + CONFIRM_SECONDS).resent == [orphan]
    assert ledger.get(orphan)["status"] == "queued"
    again = later + 2 * QUIET_SECONDS + CONFIRM_SECONDS
    reconciler.run_once({waiting}, now=again)
    outcome = reconciler.run_once({waiting}, now=again + CONFIRM_SECONDS)
    assert outcome.failed == [orphan] and "died or was killed" in given_up[0][1]
    assert resent == [orphan]


def test_queued_keys_reads_celery_messages_in_a_redis_queue(ledger: RedisLedger) -> None:
    import base64

    jobs = [{"key": "abc123"}, {"key": "def456"}]
    body = base64.b64encode(json.dumps([[jobs], {}, {}]).encode()).decode()
    message = {"body": body, "properties": {"body_encoding": "base64"}, "headers": {}}
    ledger.redis.lpush("docproc", json.dumps(message), "not json")
    assert queued_keys(ledger.redis, "docproc") == {"abc123", "def456"}


def test_full_passes_run_only_when_something_calls_for_them(ledger: RedisLedger) -> None:
    reconciler = Reconciler(ledger, lambda r: None, lambda r, why: None, max_recoveries=1)
    now = time.time()
    assert reconciler.due(now) == "the broker restarted"  # never reconciled before
    reconciler.run_if_due(lambda: set(), now)
    assert reconciler.due(now + 1) is None
    ledger.heartbeat("worker1@host/7", [], ttl=0.05)
    wait_until(lambda: ledger.vanished_nodes(), 5, message="the node to vanish")
    assert reconciler.due(now + 2) == "a worker node stopped beating"
    reconciler.run_if_due(lambda: set(), now + 2)
    assert reconciler.due(now + 3) is None
    assert reconciler.due(now + 100) == "the periodic check"


RECONCILE_UNTIL_IT_ACTS = """
import json, sys, time
from docproc.settings import load_settings
from docproc.app import configure
from docproc.worker.reconcile_task import reconcile_task
configure(load_settings(sys.argv[1], environ={}))
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    outcome = reconcile_task.run()
    if outcome["resent"] or outcome["failed"]:
        break
    time.sleep(0.2)
print(json.dumps(outcome))
"""


def _reconcile(config: Path) -> dict[str, list[str]]:
    """Run the reconcile task (as Beat's worker does) until a pass sends or fails something."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", RECONCILE_UNTIL_IT_ACTS, str(config)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout.splitlines()[-1]))


def _waiting_keys(broker: dict[str, str | None], queue: str) -> list[str]:
    """Return the document keys of the messages waiting in a queue of this broker; keep them."""
    from docproc.worker.reconcile import _document_keys

    url = broker["broker_url"] or ""
    if not url.startswith("amqp"):
        client = redis.Redis.from_url(ledger_url(broker))
        return [key for raw in client.lrange(queue, 0, -1) for key in _document_keys(raw)]
    from kombu import Connection

    keys: list[str] = []
    with Connection(url) as connection:
        channel = connection.channel()
        # Never acknowledged: back in the queue when the connection closes.
        while (message := channel.basic_get(queue, no_ack=False)) is not None:
            keys.extend(str(job["key"]) for job in json.loads(message.body)[0][0])
    return keys


def test_the_reconcile_task_sends_an_orphan_again_through_each_broker(
    broker: dict[str, str | None], make_config: Callable[..., Path],
) -> None:
    """Redis queues are read; RabbitMQ's are not: with a message waiting, only long-quiet
    running documents are suspected (BLIND_QUIET_SECONDS), with empty queues all quiet ones."""
    from docproc.worker.reconcile import BLIND_QUIET_SECONDS

    config = make_config(**broker)
    settings = load_settings(config, environ={})
    ledger = RedisLedger(redis.Redis.from_url(ledger_url(broker), decode_responses=True))
    settings.spool_dir.mkdir(parents=True)

    def running_orphan(token: str, quiet_for: float) -> str:
        key = ledger.record(spooled_file(settings.spool_dir, token, token.encode())).key
        ledger.start_stage_many({key: "{}"}, "extract", "gone@host")
        ledger.update(key, updated_ts=time.time() - quiet_for)
        return key

    def node_dies(node: str, keys: list[str]) -> None:
        ledger.heartbeat(node, keys, ttl=0.05)  # the node held them, then stopped beating
        wait_until(lambda: node in ledger.vanished_nodes(), 5, message="the node to vanish")

    first = running_orphan("01-first", QUIET_SECONDS + 5)  # every queue is empty
    node_dies("gone@host/1", [first])
    assert _reconcile(config) == {"resent": [first], "failed": []}
    assert _waiting_keys(broker, "docproc") == [first]
    assert ledger.get(first)["status"] == "queued"

    # Now a message waits in the queue. A running document quiet for a while is an orphan
    # where the queue can be read; through RabbitMQ it may be that message: it waits.
    recent = running_orphan("02-recent", QUIET_SECONDS + 5)
    old = running_orphan("03-old", BLIND_QUIET_SECONDS + 5)
    node_dies("gone@host/2", [recent, old])
    outcome = _reconcile(config)
    if broker_name(broker) == "rabbitmq":
        assert outcome == {"resent": [old], "failed": []}
        assert ledger.get(recent)["status"] == "running"
    else:
        assert sorted(outcome["resent"]) == sorted([recent, old]) and outcome["failed"] == []
    assert sorted(_waiting_keys(broker, "docproc")) == sorted([first, *outcome["resent"]])


def test_a_document_orphaned_moments_before_a_pass_is_sent_again_at_the_next(
    ledger: RedisLedger, tmp_path: Path
) -> None:
    resent: list[str] = []
    reconciler = Reconciler(ledger, lambda r: resent.append(r["key"]), lambda r, why: None,
                            max_recoveries=1)
    orphan = ledger.record(spooled_file(tmp_path, "01-orphan", b"its worker just died")).key
    ledger.heartbeat("worker1@host/7", [], ttl=0.05)
    wait_until(lambda: ledger.vanished_nodes(), 5, message="the node to vanish")
    now = time.time()  # the orphan's record changed a moment ago: too recent to judge
    assert reconciler.run_if_due(lambda: set(), now) == Outcome([], [])
    assert reconciler.due(now + 3) == "documents look orphaned"  # not the periodic check
    outcome = reconciler.run_if_due(lambda: set(), now + QUIET_SECONDS)
    assert outcome is not None and outcome.resent == resent == [orphan]
