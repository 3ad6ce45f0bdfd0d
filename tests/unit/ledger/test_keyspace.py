"""Existing ledgers stay readable: every key is the string earlier versions wrote."""

from __future__ import annotations

import itertools
from importlib import resources

import pytest

from docproc.ledger import keyspace, scripts


def test_document_keys_are_those_existing_ledgers_hold() -> None:
    assert (keyspace.DOCS, keyspace.ACTIVE, keyspace.FAILED, keyspace.COUNTS) == (
        "docproc:docs", "docproc:active", "docproc:failed", "docproc:counts")
    assert keyspace.doc("a948904f2f0f-2") == "docproc:doc:a948904f2f0f-2"
    assert keyspace.token("0001-ab") == "docproc:token:0001-ab"
    assert keyspace.content("ff" * 32) == f"docproc:sha:{'ff' * 32}"
    assert keyspace.sequence("a948904f2f0f") == "docproc:seq:a948904f2f0f"
    assert keyspace.SUSPECTS == "docproc:suspects"


def test_worker_metric_and_bookkeeping_keys_are_those_existing_ledgers_hold() -> None:
    assert (keyspace.NODES, keyspace.node("w1@h/1")) == ("docproc:nodes", "docproc:node:w1@h/1")
    assert keyspace.task_run("id:0") == "docproc:run:id:0"
    assert (keyspace.FINISHED, keyspace.SECONDS, keyspace.minute(7)) == (
        "docproc:m:finished", "docproc:m:seconds", "docproc:m:minute:7")
    assert keyspace.lock_key(keyspace.BEAT_LOCK) == "docproc:lock:beat"
    assert keyspace.lock_key(keyspace.RECONCILE_LOCK) == "docproc:lock:reconcile"
    assert keyspace.lock_key(keyspace.daily_lock("2026-12-01")) == "docproc:lock:daily:2026-12-01"
    assert keyspace.kept_key(keyspace.daily_run("r1")) == "docproc:daily:run:r1"
    assert keyspace.NOTES == "docproc:notes"
    assert keyspace.last_run_note("daily-report") == "beat.last_run.daily-report"
    assert (keyspace.SERVER_RUN_ID_NOTE, keyspace.LAST_FULL_PASS_NOTE) == (
        "server_run_id", "last_full_pass")
    assert keyspace.published_names("watcher") == "docproc:stats:watcher"
    assert keyspace.published("watcher", "h/1") == "docproc:stats:watcher:h/1"
    assert (keyspace.HELD, keyspace.HELD_JOBS, keyspace.HELD_STATE) == (
        "docproc:held", "docproc:held:jobs", "docproc:held:state")


LUA = sorted(path.name.removesuffix(".lua")
             for path in resources.files("docproc.ledger").joinpath("lua").iterdir()
             if path.name.endswith(".lua"))


def test_the_package_ships_every_script() -> None:
    assert LUA == ["finish", "forget", "hold_lock", "record", "release_lock", "reopen", "retry",
                   "start", "unretry", "withdraw"]


@pytest.mark.parametrize("name", LUA)
def test_each_script_says_what_it_takes_and_touches(name: str) -> None:
    lines = scripts.script(name).source.splitlines()
    text = "\n".join(itertools.takewhile(lambda line: line.startswith("--"), lines))
    for part in ("-- KEYS:", "-- ARGV:", "-- Reads:", "-- Writes:", "-- Returns:"):
        assert part in text, (name, part)
