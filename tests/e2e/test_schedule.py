"""Beat's schedule under `docproc up`: the daily report and the purge run once when due (here:
missed runs, last noted two days ago); a day whose report was never built is caught up at the
next start. When a run is due by the clock is the part of
tests/integration/schedule/test_beat_clock.py and tests/unit/schedule/test_clock.py.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
import yaml

from tests.aging import age, age_beat_runs, clear_of_midnight, records_by_name
from tests.conftest import Daemon, reports, start_up, stop_up, wait_until

pytestmark = pytest.mark.e2e


def test_up_runs_report_and_purge_on_schedule_and_catches_up_missed_days(
    make_config: Callable[..., Path], daemon: Callable[[Path], Daemon], tmp_path: Path,
) -> None:
    clear_of_midnight(300)  # the dates expected below are those of the start
    today = datetime.date.today()
    yesterday, two_days_ago = (today - datetime.timedelta(days=n) for n in (1, 2))
    config = make_config(broker_url="embedded",
                         schedule={"daily_report": "12:00:00", "purge": "12:00:01"})
    settings = yaml.safe_load(config.read_text())
    socket_path = Path(settings["state_dir"]) / "valkey.sock"
    # Both last ran two days ago, as noted in the broker `docproc up` will use: missed runs,
    # due once as soon as its Beat leads, whatever the time and however slowly it starts.
    broker = daemon(config)
    broker.start("broker")
    client = redis.Redis(unix_socket_path=str(socket_path), decode_responses=True)
    wait_until(lambda: socket_path.exists() and client.ping(), 30, message="the broker")
    age_beat_runs(client, ["daily-report", "purge"])
    broker.stop()
    inbox, outbox = Path(settings["inbox"]), Path(settings["outbox"])
    # Left by a run long ago: past retention.days (30).
    ancient = outbox / "documents" / "2001-02-03" / "scan.0123456789ab"
    ancient.mkdir(parents=True)
    (ancient / "report.json").write_text("{}")
    for n in range(3):
        (inbox / f"letter-{n}.txt").write_text(f"Letter {n} about the quarterly invoices.\n")
    daily = outbox / "reports" / f"daily-{yesterday}.json"

    up = start_up(config, tmp_path / "up-1.log")
    try:
        wait_until(lambda: len(reports(outbox)) == 3, 60, interval=0.2, message="3 reports")
        wait_until(daily.exists, 40, interval=0.2, message="the scheduled daily report")
        assert daily.with_suffix(".html").exists()
        assert json.loads(daily.read_text())["documents"] == 0
        wait_until(lambda: not ancient.parent.exists(), 20, interval=0.2,
                   message="the scheduled purge")
        assert (outbox / "documents" / today.isoformat()).is_dir()
        # While the daemon runs, make today's documents look received two days ago, on a day
        # whose report was never built.
        morning = datetime.datetime.combine(two_days_ago, datetime.time(10)).astimezone()
        for record in records_by_name(client).values():
            age(client, record["key"], morning)
        built = daily.stat().st_mtime_ns
    finally:
        stop_up(up)

    caught_up = outbox / "reports" / f"daily-{two_days_ago}.json"
    assert not caught_up.exists()
    up = start_up(config, tmp_path / "up-2.log")
    try:
        wait_until(caught_up.exists, 40, interval=0.2, message="the caught-up daily report")
        report = json.loads(caught_up.read_text())
        assert report["documents"] == 3 and report["by_status"]["done"] == 3
        assert {"keyword": "invoices", "documents": 3} in report["keywords"]
    finally:
        stop_up(up)
    # The restart ran nothing again that had run today.
    assert daily.stat().st_mtime_ns == built
    first = (tmp_path / "up-1.log").read_text()
    assert first.count("sending daily-report") == 1 and first.count("sending purge") == 1
    log = (tmp_path / "up-2.log").read_text()
    assert "sending daily-report" not in log and "sending purge" not in log
