"""Files waiting for their writer, as the watchers publish them and the status shows them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from flask.testing import FlaskClient

from docproc.inbox.candidates import WAIT_REASONS
from docproc.inbox.spool import Claimed
from docproc.ledger.redis_ledger import RedisLedger
from docproc.settings import Settings, load_settings
from docproc.status.timestamps import iso, parse_since
from docproc.status.watchers import WAITING_SHOWN, publish_watcher_stats, watcher_view
from docproc.status_api import create_app
from docproc.watcher import InboxWatcher
from tests.conftest import wait_until
from tests.integration.status.scrape import scrape


def _settings(config: Path) -> Settings:
    return load_settings(config, environ={})


def _waiting_metric(client: FlaskClient) -> dict[str, float]:
    return {dict(labels)["reason"]: value for (name, labels), value in scrape(client).items()
            if name == "docproc_watcher_waiting_files"}


def test_files_waiting_at_every_watcher_are_merged_oldest_first(
    embedded: dict[str, Any], make_config: Callable[..., Path],
) -> None:
    settings = _settings(make_config(**embedded))
    ledger = RedisLedger(redis.Redis.from_url(settings.redis_url, decode_responses=True))
    now = time.time()

    def entry(relpath: str, age: float, reason: str, size: int = 10) -> dict[str, Any]:
        return {"relpath": relpath, "bytes": size, "since": now - age, "reason": reason}

    settling = [entry(f"a/{i:02}.txt", i, "settling") for i in range(19)]
    ledger.publish("watcher", "host-a/1", {
        "seen": 30, "pending": 25, "claimed": 5, "retrying": 1,
        "waiting": [entry("a/old.pdf", 90.04, "open_for_writing"), *settling],
        "waiting_by_reason": dict.fromkeys(WAIT_REASONS, 0) | {"open_for_writing": 1,
                                                               "settling": 24},
    }, 10)
    # Reasons a watcher does not publish count as none.
    ledger.publish("watcher", "host-b/2", {
        "seen": 2, "pending": 2, "claimed": 0, "retrying": 0,
        "waiting": [entry("b/scan.pdf", 30, "quiet_period"), entry("b/zero", 100, "empty", 0)],
        "waiting_by_reason": {"quiet_period": 1, "empty": 1},
    }, 10)
    ledger.publish("watcher", "host-c/3", {"seen": 0, "pending": 0, "claimed": 0,
                                          "retrying": 0}, 10)

    watcher, _ = watcher_view(settings, ledger, now)
    assert watcher["online"] == 3 and watcher["backlog"] == 28 and watcher["claimed"] == 5
    assert watcher["waiting_by_reason"] == {"open_for_writing": 1, "quiet_period": 1,
                                            "incomplete": 0, "settling": 24, "empty": 1}
    listed = watcher["waiting"]
    assert len(listed) == WAITING_SHOWN == 20
    assert listed[0] == {"relpath": "b/zero", "bytes": 0, "since": iso(now - 100),
                         "waiting_seconds": 100.0, "reason": "empty"}
    assert [(f["relpath"], f["waiting_seconds"], f["reason"]) for f in listed[1:3]] == [
        ("a/old.pdf", 90.0, "open_for_writing"), ("b/scan.pdf", 30.0, "quiet_period")]
    # The newest of the 22 waiting files are left out.
    assert [f["relpath"] for f in listed[3:]] == [f"a/{i:02}.txt" for i in range(18, 1, -1)]

    client = create_app(settings, ledger).test_client()
    body = client.get("/api/stats").get_json()["watcher"]
    assert body["waiting_by_reason"] == watcher["waiting_by_reason"]
    assert [f["relpath"] for f in body["waiting"]] == [f["relpath"] for f in listed]
    assert _waiting_metric(client) == {"open_for_writing": 1, "quiet_period": 1,
                                       "incomplete": 0, "settling": 24, "empty": 1}


def test_a_file_its_writer_holds_open_is_shown_waiting_until_it_is_claimed(
    embedded: dict[str, Any], make_config: Callable[..., Path],
) -> None:
    # A long settle time: a held file is never claimed as settled while the test looks at it.
    settings = _settings(make_config(**embedded, watcher={"mode": "events",
                                                          "settle_seconds": 20}))
    (settings.inbox / "scans").mkdir()
    claims: list[Claimed] = []
    watcher = InboxWatcher(settings.inbox, settings.spool_dir, settings.watcher, claims.append)
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    thread.start()
    publisher = publish_watcher_stats(watcher, settings, stop, interval=0.1)
    client = create_app(settings).test_client()
    data = b"page one of a long export\n" * 40
    try:
        wait_until(watcher.ready.is_set, 10, message="the watcher to be ready")
        with (settings.inbox / "scans" / "held open.txt").open("wb") as writer:
            writer.write(data)
            writer.flush()

            def listed() -> dict[str, Any] | None:
                waiting = client.get("/api/stats").get_json()["watcher"]["waiting"]
                return next((f for f in waiting if f["relpath"] == "scans/held open.txt"
                             and f["bytes"] == len(data)), None)

            held = wait_until(listed, 30, interval=0.1, message="the held file among the waiting")
            assert held["reason"] in WAIT_REASONS and held["waiting_seconds"] >= 0
            assert abs(parse_since(held["since"]) - time.time()) < 30
            wait_until(lambda: _waiting_metric(client) == {
                reason: float(reason == held["reason"]) for reason in WAIT_REASONS},
                10, interval=0.1, message=f"one file waiting as {held['reason']} in /metrics")
            assert not claims
        wait_until(lambda: claims, 15, message="the closed file to be claimed")
        assert [(c.relpath, c.bytes) for c in claims] == [("scans/held open.txt", len(data))]
        wait_until(lambda: not client.get("/api/stats").get_json()["watcher"]["waiting"], 10,
                   interval=0.1, message="the claimed file to leave the waiting files")
        assert sum(_waiting_metric(client).values()) == 0
    finally:
        stop.set()
        thread.join(15)
        publisher.join(5)
