"""What the watchers published, merged: the files waiting longest, and a missing inbox."""

from __future__ import annotations

from typing import Any

from docproc.status.watchers import inbox_problem, inbox_view, waiting_files

NOW = 1_764_000_000.0


def _waiting(relpath: str, age: float) -> dict[str, Any]:
    return {"relpath": relpath, "bytes": "7", "since": NOW - age, "reason": "settling"}


def test_waiting_files_of_every_watcher_are_merged_oldest_first_up_to_the_limit() -> None:
    published = [{"waiting": [_waiting("a/new", 1), _waiting("a/old", 50)]},
                 {"waiting": [_waiting("b/mid", 20)]}, {}]
    found = waiting_files(published, NOW, limit=2)
    assert [(f["relpath"], f["waiting_seconds"]) for f in found] == [("a/old", 50.0),
                                                                      ("b/mid", 20.0)]
    assert found[0]["bytes"] == 7 and found[0]["since"] == "2025-11-24T15:59:10Z"


def test_the_inbox_shown_is_the_one_missing_longest_else_the_watched_one() -> None:
    watched = {"state": "watched", "path": "/srv/inbox", "since": NOW - 500, "reason": None}
    gone_late = {"state": "missing", "path": "/srv/inbox", "since": NOW - 5, "reason": "removed"}
    gone_early = {"state": "missing", "path": "/srv/inbox", "since": NOW - 60,
                  "reason": "unmounted"}
    assert inbox_view([{"seen": 1}], NOW) is None
    assert (inbox_view([{"inbox": watched}], NOW) or {}).get("state") == "watched"
    shown = inbox_view([{"inbox": s} for s in (watched, gone_late, gone_early)], NOW)
    assert shown == {"state": "missing", "path": "/srv/inbox", "since": "2025-11-24T15:59:00Z",
                     "seconds": 60.0, "reason": "unmounted"}
    assert inbox_problem([{"inbox": watched}], NOW) is None
    problem = inbox_problem([{"inbox": gone_early}], NOW)
    assert problem is not None and "/srv/inbox is missing (unmounted)" in problem
