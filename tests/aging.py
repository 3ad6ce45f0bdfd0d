"""Make really processed documents look received on another day, for report and retention tests.

Documents are processed for real (watcher, worker, outbox); only their receipt time in the
ledger is moved back, and with `move_folder` their outbox folder goes to that UTC day's folder,
as if they had arrived then.
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path
from typing import Any

import redis

from docproc.ledger import keyspace


def records_by_name(client: redis.Redis) -> dict[str, dict[str, Any]]:
    """Return the ledger's records by file name (the last one received for a name)."""
    found = {}
    for key in client.zrange(keyspace.DOCS, 0, -1):
        record = client.hgetall(keyspace.doc(_text(key)))
        record = {_text(k): _text(v) for k, v in record.items()}
        found[record["name"]] = record
    return found


def age(client: redis.Redis, key: str, received: datetime.datetime,
        move_folder: bool = False) -> None:
    """Record a document as received at another moment; move its outbox folder along."""
    doc = keyspace.doc(key)
    utc = received.astimezone(datetime.UTC)
    fields: dict[str, str | float] = {"received_ts": utc.timestamp(),
                                      "received_at": utc.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if move_folder:
        old = Path(_text(client.hget(doc, "outdir")))
        new = old.parent.parent / utc.date().isoformat() / old.name
        new.parent.mkdir(parents=True, exist_ok=True)
        old.rename(new)
        fields["outdir"] = str(new)
    client.hset(doc, mapping=fields)
    client.zadd(keyspace.DOCS, {key: utc.timestamp()})


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def age_beat_runs(client: redis.Redis, names: list[str], days: int = 2) -> None:
    """Note Beat's last runs of these entries days ago: a daily entry is then a missed run,
    due once as soon as a Beat leads, whatever its time of day and whenever Beat starts.
    """
    from docproc.ledger.redis_ledger import RedisLedger

    ran = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=days)
    for name in names:
        RedisLedger(client).note(keyspace.last_run_note(name), ran.isoformat())


def clear_of_midnight(seconds: float) -> None:
    """Return once neither the local nor the UTC date changes within seconds from now.

    A test whose expected dates are those of its start waits out a midnight closer than that.
    """
    from tests.conftest import wait_until

    def clear() -> bool:
        now = time.time()
        return all(
            datetime.datetime.fromtimestamp(now, zone).date()
            == datetime.datetime.fromtimestamp(now + seconds, zone).date()
            for zone in (None, datetime.UTC)
        )

    wait_until(clear, seconds + 30, interval=1.0, message="a midnight to pass")
