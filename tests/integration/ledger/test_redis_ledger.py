"""RedisLedger keeps the document-records contract on the embedded Valkey, and pages, and locks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from docproc.ledger.redis_ledger import RedisLedger
from tests.ledger_contract import LedgerContract, claim


@pytest.fixture
def redis_ledger(valkey_socket: Path) -> Iterator[RedisLedger]:
    client = redis.Redis(unix_socket_path=str(valkey_socket), decode_responses=True)
    client.flushdb()
    yield RedisLedger(client)
    client.flushdb()


class TestRedisLedger(LedgerContract):
    @pytest.fixture
    def ledger(self, redis_ledger: RedisLedger) -> RedisLedger:
        return redis_ledger


def test_records_and_starts_after_the_server_forgot_its_scripts(
    redis_ledger: RedisLedger,
) -> None:
    first = redis_ledger.record(claim(b"before the restart"))
    redis_ledger.redis.script_flush()  # what a restarted broker knows of our Lua scripts
    scan = claim(b"after the restart")
    second = redis_ledger.record(scan)
    assert first.key != second.key and redis_ledger.key_for_token(scan.token) == second.key
    redis_ledger.redis.script_flush()
    assert redis_ledger.start_stage_many({second.key: "{}"}, "detect", "w1") == set()
    record = redis_ledger.get(second.key)
    assert record is not None and record["stage"] == "detect" and record["worker"] == "w1"


def test_pages_go_newest_first_and_each_document_comes_once(redis_ledger: RedisLedger) -> None:
    keys = [redis_ledger.record(claim(f"page {n}".encode())).key for n in range(7)]
    for key in keys[::2]:
        redis_ledger.finish(key, "failed", f"/outbox/{key}", "corrupt")
    seen, cursor = [], None
    while True:
        page, cursor = redis_ledger.page(limit=3, cursor=cursor)
        seen += page
        if cursor is None:
            break
    assert sorted(record["key"] for record in seen) == sorted(keys)
    stamps = [(record["received_ts"], record["key"]) for record in seen]
    assert stamps == sorted(stamps, reverse=True)
    failed, _ = redis_ledger.page(statuses=["failed"], limit=10)
    assert {record["key"] for record in failed} == set(keys[::2])


def test_a_held_lock_is_kept_by_its_owner_only(redis_ledger: RedisLedger) -> None:
    assert redis_ledger.hold_lock("beat", "one", 10) and redis_ledger.hold_lock("beat", "one", 10)
    assert not redis_ledger.hold_lock("beat", "two", 10)
    assert redis_ledger.lock_holder("beat") == "one"
    redis_ledger.release_lock("beat", "two")
    assert redis_ledger.lock_holder("beat") == "one"
    redis_ledger.release_lock("beat", "one")
    assert redis_ledger.lock_holder("beat") is None and redis_ledger.hold_lock("beat", "two", 10)
    assert redis_ledger.redis.get("docproc:lock:beat") == "two"  # the key existing ledgers use


def test_ocr_pages_read_this_minute_show_in_the_rate_at_once(redis_ledger: RedisLedger) -> None:
    key = redis_ledger.record(claim(b"a scan")).key
    assert redis_ledger.ocr_pages() == (0, 0.0)
    redis_ledger.count_ocr_pages(key, 4, 4, 10)
    total, rate = redis_ledger.ocr_pages()
    assert total == 4 and 0 < rate <= 4
    record = redis_ledger.get(key)
    assert record is not None
    assert (str(record["ocr_done"]), str(record["ocr_total"])) == ("4", "10")
