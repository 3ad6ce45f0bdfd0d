"""The daily schedule's arithmetic: the next local time, due checks on a given clock."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from docproc.errors import ConfigError
from docproc.schedule.clock import DailyAt, daily_at, next_at, parse_clock
from docproc.settings import load_settings
from tests.unit.schedule.samples import local


def test_next_at_is_the_next_local_clock_time(berlin: None) -> None:
    clock = parse_clock("00:05")
    assert next_at(clock, local(2026, 11, 23, 0, 4, 59)) == local(2026, 11, 23, 0, 5)
    assert next_at(clock, local(2026, 11, 23, 0, 5)) == local(2026, 11, 24, 0, 5)
    assert parse_clock("12:34:56") == datetime.time(12, 34, 56)
    # 00:05 in Berlin is 23:05 UTC the day before in winter, 22:05 in summer.
    assert next_at(clock, local(2026, 3, 28, 12)).astimezone(datetime.UTC).hour == 23
    assert next_at(clock, local(2026, 3, 29, 12)).astimezone(datetime.UTC).hour == 22


def test_daily_at_is_due_once_a_day_and_once_after_a_missed_day() -> None:
    now = local(2026, 11, 23, 10, 0, 11)
    schedule = DailyAt("10:00:10", clock=lambda: now)
    due, wait = schedule.is_due(local(2026, 11, 22, 10, 0, 10))
    assert due and wait == pytest.approx(86399, abs=1)
    due, wait = schedule.is_due(local(2026, 11, 20, 9))  # down for days: due once now
    assert due
    due, wait = schedule.is_due(now)
    assert not due and wait == pytest.approx(86399, abs=1)
    assert DailyAt("10:00:10") == DailyAt("10:00:10") != DailyAt("10:00")


def test_daily_at_tells_time_by_the_clock_it_is_given_across_midnight(berlin: None) -> None:
    now = local(2026, 3, 28, 23, 59, 58)  # the night before Berlin's clocks go forward
    schedule = daily_at("00:00:05", clock=lambda: now)
    assert schedule.now() == now
    due, wait = schedule.is_due(local(2026, 3, 28, 9))
    assert not due and wait == 7
    assert schedule.remaining_estimate(local(2026, 3, 28, 9)) == datetime.timedelta(seconds=7)
    now = local(2026, 3, 29, 0, 0, 5)
    due, wait = schedule.is_due(local(2026, 3, 28, 9))
    assert due and wait == 23 * 3600  # the next 00:00:05 is 23 hours on, on a DST day
    assert not schedule.is_due(now).is_due


def test_schedule_times_take_minutes_or_seconds(tmp_path: Path) -> None:
    config = tmp_path / "docproc.yaml"
    config.write_text('schedule:\n  daily_report: "07:30:15"\n  purge: "23:59"\n')
    schedule = load_settings(config, environ={}).schedule
    assert (schedule.daily_report, schedule.purge) == ("07:30:15", "23:59")
    config.write_text('schedule:\n  purge: "24:00"\n')
    with pytest.raises(ConfigError, match=r"schedule\.purge"):
        load_settings(config, environ={})
