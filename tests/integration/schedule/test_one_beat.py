"""One Beat only: two `docproc beat` against one broker send each scheduled run once.

No worker runs, so every task Beat sends stays in the control queue, where the test counts
them: a Redis list it reads, or a RabbitMQ queue it drains as it counts.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from docproc.settings import as_redis_url
from tests.aging import age_beat_runs
from tests.conftest import Daemon, ledger_url, wait_until


class ControlQueue:
    """Count the tasks of each name that Beat sent to the control queue of this broker."""

    def __init__(self, broker: dict[str, Any]) -> None:
        self.url: str = broker["broker_url"]
        self.drained: Counter[str] = Counter()

    def __call__(self) -> Counter[str]:
        if not self.url.startswith("amqp"):
            client = redis.Redis.from_url(as_redis_url(self.url))
            return Counter(json.loads(raw)["headers"]["task"]
                           for raw in client.lrange("docproc.control", 0, -1))
        from kombu import Connection

        with Connection(self.url) as connection:
            channel = connection.channel()
            while (message := channel.basic_get("docproc.control", no_ack=True)) is not None:
                self.drained[message.headers["task"]] += 1
        return Counter(self.drained)


def pid_of(holder: str | None) -> int | None:
    return int(holder.split("/")[1]) if holder else None


def test_two_beats_send_each_run_once_and_the_second_takes_over(
    broker: dict[str, Any], make_config: Callable[..., Path], daemon: Callable[[Path], Daemon],
) -> None:
    client = redis.Redis.from_url(ledger_url(broker), decode_responses=True)
    sent = ControlQueue(broker)
    # Its last run noted two days ago: the daily report is due as soon as a Beat leads, however
    # slowly it starts and whatever the time (when it is due by the clock: test_beat_clock).
    age_beat_runs(client, ["daily-report"])
    config = make_config(**broker, schedule={"daily_report": "12:00:00", "purge": "00:00:00"})
    first = daemon(config).start("beat")
    wait_until(lambda: client.get("docproc:lock:beat"), 20, message="a Beat to lead")
    second = daemon(config).start("beat")
    leader = pid_of(client.get("docproc:lock:beat"))
    assert leader == first.pid

    wait_until(lambda: sent()["docproc.daily.report"], 20, message="the daily report")
    reconciles = sent()["docproc.reconcile"]
    # Both Beats have ticked since the report was due by the leader's next reconcile.
    wait_until(lambda: sent()["docproc.reconcile"] > reconciles, 10,
               message="the next reconcile")
    assert sent()["docproc.daily.report"] == 1
    assert sent()["docproc.daily.catch_up"] == 1

    first.terminate()
    first.wait(15)
    wait_until(lambda: pid_of(client.get("docproc:lock:beat")) == second.pid, 10,
               message="the second Beat to take over")
    # The new leader starts from the runs the first noted: no second daily report.
    wait_until(lambda: sent()["docproc.daily.catch_up"] == 2, 10,
               message="the new leader's catch-up")
    reconciles = sent()["docproc.reconcile"]
    wait_until(lambda: sent()["docproc.reconcile"] > reconciles, 10,
               message="a reconcile from the new leader")
    assert sent()["docproc.daily.report"] == 1
