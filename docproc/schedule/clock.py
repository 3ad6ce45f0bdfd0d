"""A Celery Beat schedule that fires once a day at a local wall-clock time."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from celery.schedules import BaseSchedule, schedstate
from celery.utils.time import maybe_make_aware

# What tells a schedule the time: an aware moment, or a naive one in UTC.
Clock = Callable[[], datetime.datetime]


def parse_clock(text: str) -> datetime.time:
    """Return the time of day of "HH:MM" or "HH:MM:SS"."""
    hour, minute, second = ([int(part) for part in text.split(":")] + [0])[:3]
    return datetime.time(hour, minute, second)


def local(moment: datetime.datetime) -> datetime.datetime:
    """Return an aware moment in the machine's local time zone; naive moments are UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone()


def next_at(clock: datetime.time, after: datetime.datetime) -> datetime.datetime:
    """Return the first local time of day `clock` strictly after a moment."""
    after = local(after)
    day = after.date()
    while True:
        # A naive local time made aware by astimezone() follows DST changes.
        candidate = datetime.datetime.combine(day, clock).astimezone()
        if candidate > after:
            return candidate
        day += datetime.timedelta(days=1)


class DailyAt(BaseSchedule):
    """Due once a day at a local time ("HH:MM" or "HH:MM:SS"); a run missed while down is due.

    The clock tells it the time (the system clock when None): Beat asks the schedule, so a
    test that passes its own clock decides when the run is due.
    """

    def __init__(self, at: str, clock: Clock | None = None, app: Any = None) -> None:
        self.at = at
        self.time_of_day = parse_clock(at)
        super().__init__(nowfun=clock, app=app)

    def now(self) -> datetime.datetime:
        """Return the clock's time, in the machine's local time zone."""
        return local(self.nowfun() if self.nowfun else datetime.datetime.now(datetime.UTC))

    def remaining_estimate(self, last_run_at: datetime.datetime) -> datetime.timedelta:
        return next_at(self.time_of_day, maybe_make_aware(last_run_at)) - self.now()

    def is_due(self, last_run_at: datetime.datetime) -> schedstate:
        now = self.now()
        due = next_at(self.time_of_day, maybe_make_aware(last_run_at))
        if due <= now:
            return schedstate(True, (next_at(self.time_of_day, now) - now).total_seconds())
        return schedstate(False, (due - now).total_seconds())

    def __repr__(self) -> str:
        return f"<daily at {self.at} local time>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DailyAt):
            return other.at == self.at
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.at)

    def __reduce__(self) -> tuple[Any, ...]:
        return self.__class__, (self.at,)


def daily_at(at: str, clock: Clock | None = None) -> DailyAt:
    """Return the schedule of a daily job at a local time of the configuration.

    Pass a clock to decide the time it sees (tests); the system clock otherwise.
    """
    return DailyAt(at, clock)
