"""One Beat only: two `docproc beat` against one broker send each scheduled run once.

No worker runs, so every task Beat sends stays in the control queue's Redis list, where the
test counts them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.aging import age_beat_runs
from tests.conftest import Daemon, wait_until


def sent(client: redis.Redis) -> Counter[str]:
    """Return how many tasks of each name wait in the control queue."""
    return Counter(json.loads(raw)["headers"]["task"]
                   for raw in client.lrange("docproc.control", 0, -1))


def pid_of(holder: str | None) -> int | None:
    return int(holder.split("/")[1]) if holder else None


@pytest.mark.parametrize("broker", ["embedded"], indirect=True)
def test_two_beats_send_each_run_once_and_the_second_takes_over(
    broker: dict[str, Any], make_config: Callable[..., Path],
    daemon: Callable[[Path], Daemon], valkey_socket: Path,
) -> None:
    client = redis.Redis(unix_socket_path=str(valkey_socket), decode_responses=True)
    # Its last run noted two days ago: the daily report is due as soon as a Beat leads, however
    # slowly it starts and whatever the time (when it is due by the clock: test_beat_clock).
    age_beat_runs(client, ["daily-report"])
    config = make_config(**broker, schedule={"daily_report": "12:00:00", "purge": "00:00:00"})
    first = daemon(config).start("beat")
    wait_until(lambda: client.get("docproc:lock:beat"), 20, message="a Beat to lead")
    second = daemon(config).start("beat")
    leader = pid_of(client.get("docproc:lock:beat"))
    assert leader == first.pid

    wait_until(lambda: sent(client)["docproc.daily.report"], 20, message="the daily report")
    reconciles = sent(client)["docproc.reconcile"]
    # Both Beats have ticked since the report was due by the leader's next reconcile.
    wait_until(lambda: sent(client)["docproc.reconcile"] > reconciles, 10,
               message="the next reconcile")
    assert sent(client)["docproc.daily.report"] == 1
    assert sent(client)["docproc.daily.catch_up"] == 1

    first.terminate()
    first.wait(15)
    wait_until(lambda: pid_of(client.get("docproc:lock:beat")) == second.pid, 10,
               message="the second Beat to take over")
    # The new leader starts from the runs the first noted: no second daily report.
    wait_until(lambda: sent(client)["docproc.daily.catch_up"] == 2, 10,
               message="the new leader's catch-up")
    reconciles = sent(client)["docproc.reconcile"]
    wait_until(lambda: sent(client)["docproc.reconcile"] > reconciles, 10,
               message="a reconcile from the new leader")
    assert sent(client)["docproc.daily.report"] == 1
