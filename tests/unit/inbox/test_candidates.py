"""Why the watcher says it waits on a file, as `docproc status` and the status API show it."""

from __future__ import annotations

import time
from pathlib import Path

from docproc.inbox.candidates import WAIT_REASONS, Candidate, summarize_waiting
from docproc.inbox.events import CLOSED, MOVED_IN, WRITTEN
from docproc.settings import WatcherSettings

SETTINGS = WatcherSettings(quiet_seconds=2.0, settle_seconds=5.0)


def test_each_event_gives_the_reason_a_user_reads() -> None:
    now = time.monotonic()
    cand = Candidate(now, size=10)
    assert cand.reason() == "settling"
    assert cand.apply(WRITTEN, now, SETTINGS, events_mode=True) is None
    assert cand.reason() == "open_for_writing"
    assert cand.apply(CLOSED, now, SETTINGS, events_mode=True) == now + 2.0
    assert cand.reason() == "quiet_period"
    assert cand.apply(MOVED_IN, now, SETTINGS, events_mode=True) == now
    assert cand.quiet_seconds(SETTINGS) == 0.0
    assert Candidate(now, size=0).reason() == "empty"


def test_a_write_seen_by_polling_waits_to_settle_not_for_a_close() -> None:
    now = time.monotonic()
    cand = Candidate(now, size=10)
    cand.deadline = now + 60
    assert cand.apply(WRITTEN, now, SETTINGS, events_mode=False) == now + 5.0
    assert cand.reason() == "settling"


def test_a_file_cut_short_is_incomplete_until_its_grace_passes(tmp_path: Path) -> None:
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(b"%PDF-1.7\n1 0 obj\n<< >>\nendobj\n")
    now = time.monotonic()
    cand = Candidate(now - 1, size=scan.stat().st_size)
    settings = WatcherSettings(incomplete_grace_seconds=30)
    verdict, again = cand.judge_structure(str(scan), now, settings, polling=False)
    assert verdict is None and again == cand.since + 30
    assert cand.reason() == "incomplete"
    verdict, again = cand.judge_structure(str(scan), now + 60, settings, polling=False)
    assert again is None and verdict is not None and verdict.startswith("a PDF without %%EOF")


def test_the_summary_counts_every_reason_and_lists_the_oldest_first(tmp_path: Path) -> None:
    now = time.monotonic()
    old, new = tmp_path / "old.pdf", tmp_path / "new.pdf"
    old.write_bytes(b"12345")
    new.write_bytes(b"")
    pending = {str(new): Candidate(now, size=0), str(old): Candidate(now - 100, size=5)}
    summary = summarize_waiting(pending, f"{tmp_path}/", limit=1)
    assert set(summary.counts) == set(WAIT_REASONS)
    assert summary.counts["empty"] == 1 and summary.counts["settling"] == 1
    [oldest] = summary.oldest
    assert oldest.to_dict()["relpath"] == "old.pdf" and oldest.bytes == 5
    assert abs(oldest.since - (time.time() - 100)) < 5
