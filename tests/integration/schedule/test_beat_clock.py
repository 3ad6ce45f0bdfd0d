"""Beat's due checks driven by a clock the test holds: a daily run is sent when that clock
reaches its time, once, and again the next day, whatever the wall clock says.

The real LeaderScheduler ticks in this process against the session's embedded Valkey; no
worker runs, so what it sends stays in the control queue, where the test counts it.
"""

from __future__ import annotations

import datetime
import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from docproc.app import app, configure
from docproc.schedule.beat import LeaderScheduler
from docproc.schedule.clock import daily_at
from docproc.settings import load_settings

REPORT = "docproc.daily.report"


def local(*parts: int) -> datetime.datetime:
    return datetime.datetime(*parts).astimezone()  # type: ignore[arg-type]


class FakeClock:
    """A clock that stands still until the test sets it."""

    def __init__(self, now: datetime.datetime) -> None:
        self.now = now

    def __call__(self) -> datetime.datetime:
        return self.now


def sent(client: redis.Redis) -> Counter[str]:
    """Return how many tasks of each name wait in the control queue."""
    return Counter(json.loads(raw)["headers"]["task"]
                   for raw in client.lrange("docproc.control", 0, -1))


@pytest.fixture
def scheduler(
    broker: dict[str, Any], make_config: Callable[..., Path]
) -> Iterator[tuple[LeaderScheduler, FakeClock]]:
    """A Beat whose only entry is the daily report at 07:00 by a clock set to 06:59:58."""
    settings = load_settings(make_config(**broker), environ={})
    before = (app._settings, app.conf.beat_schedule)
    configure(settings)
    clock = FakeClock(local(2030, 6, 10, 6, 59, 58))
    app.conf.beat_schedule = {
        "daily-report": {"task": REPORT, "schedule": daily_at("07:00:00", clock)},
    }
    beat = LeaderScheduler(app)
    yield beat, clock
    beat.close()
    app._settings, app.conf.beat_schedule = before


@pytest.mark.parametrize("broker", ["embedded"], indirect=True)
def test_beat_sends_the_daily_report_when_its_clock_reaches_the_time_and_once_a_day(
    scheduler: tuple[LeaderScheduler, FakeClock], valkey_socket: Path,
) -> None:
    beat, clock = scheduler
    client = redis.Redis(unix_socket_path=str(valkey_socket), decode_responses=True)

    def tick_a_while() -> None:
        for _ in range(5):
            beat.tick()

    tick_a_while()  # takes the lead: the catch-up only, the report is 2 s away
    assert sent(client) == Counter({"docproc.daily.catch_up": 1})
    clock.now = local(2030, 6, 10, 6, 59, 59)
    tick_a_while()
    assert sent(client)[REPORT] == 0
    clock.now = local(2030, 6, 10, 7, 0, 0)
    tick_a_while()
    assert sent(client)[REPORT] == 1
    clock.now = local(2030, 6, 11, 6, 59, 59)
    tick_a_while()
    assert sent(client)[REPORT] == 1
    clock.now = local(2030, 6, 11, 7, 0, 0)
    tick_a_while()
    assert sent(client)[REPORT] == 2
    # What Beat noted for the next leader is the clock's time of that run.
    noted = app.ledger.note("beat.last_run.daily-report")
    assert noted is not None and datetime.datetime.fromisoformat(noted) == clock.now
