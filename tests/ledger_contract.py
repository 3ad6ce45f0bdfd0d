"""The contract every ledger of document records keeps, run against each implementation."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass

import pytest

from docproc.ledger.interface import DocumentLedger
from docproc.ledger.model import Ending

_tokens = itertools.count()


@dataclass(frozen=True)
class Claim:
    """A claimed file as the ledger sees it."""

    token: str
    name: str
    relpath: str
    bytes: int
    sha256: str
    received_at: str
    mtime_ns: int = 0
    incomplete: str | None = None


def claim(content: bytes, name: str = "a.txt") -> Claim:
    """Return a new claim (a fresh spool token) of a file with this content."""
    return Claim(f"{next(_tokens):016x}-tok", name, f"dept/{name}", len(content),
                 hashlib.sha256(content).hexdigest(), "2026-11-23T10:00:00Z")


class LedgerContract:
    """Behaviours of DocumentLedger; a subclass provides the `ledger` fixture."""

    @pytest.fixture
    def ledger(self) -> DocumentLedger:
        raise NotImplementedError

    def test_a_claim_is_recorded_once_however_often_it_is_recorded(
        self, ledger: DocumentLedger
    ) -> None:
        scan = claim(b"invoice")
        first = ledger.record(scan)
        assert ledger.record_many([scan, scan]) == [first, first]
        assert ledger.key_for_token(scan.token) == first.key
        record = ledger.get(first.key)
        assert record is not None and record["status"] == "queued"
        assert record["relpath"] == "dept/a.txt" and record["sha256"] == scan.sha256
        assert ledger.counts()["queued"] + ledger.counts()["running"] == 1

    def test_the_same_content_again_is_a_duplicate_of_the_first(
        self, ledger: DocumentLedger
    ) -> None:
        first = ledger.record(claim(b"same"))
        second = ledger.record(claim(b"same", "b.txt"))
        assert first.duplicate_of is None and second.duplicate_of == first.key
        assert second.key != first.key and second.key.startswith(first.key)

    def test_content_whose_first_copy_failed_is_no_duplicate(self, ledger: DocumentLedger) -> None:
        first = ledger.record(claim(b"broken"))
        ledger.finish(first.key, "failed", "/outbox/f", "corrupt")
        assert ledger.record(claim(b"broken")).duplicate_of is None

    def test_stages_progress_until_the_document_finishes(self, ledger: DocumentLedger) -> None:
        key = ledger.record(claim(b"pages")).key
        assert ledger.start_stage_many({key: "{}"}, "detect", "w1") == set()
        stages = '{"detect": {"started": 1.0, "ended": 2.0}}'
        assert ledger.start_stage_many({key: stages}, "extract", "w1") == set()
        record = ledger.get(key)
        assert record is not None and (record["status"], record["stage"]) == ("running", "extract")
        assert record["stages"] == {"detect": {"started": 1.0, "ended": 2.0}}
        ledger.finish(key, "done", "/outbox/doc", None)
        assert ledger.start_stage_many({key: "{}"}, "analyze", "w2") == {key}
        record = ledger.get(key)
        assert record is not None and record["status"] == "done"
        assert record["outdir"] == "/outbox/doc"

    def test_a_document_is_counted_once_however_often_it_finishes(
        self, ledger: DocumentLedger
    ) -> None:
        done, failed = ledger.record(claim(b"one")).key, ledger.record(claim(b"two")).key
        ledger.record(claim(b"three"))
        ending = Ending(done, "done", "/outbox/1", None)
        ledger.finish_many([ending, Ending(failed, "failed", "/outbox/2", "corrupt")])
        ledger.finish_many([ending])
        ledger.finish(done, "failed", "/outbox/1", "late")
        counts = ledger.counts()
        assert (counts["done"], counts["failed"], counts["duplicate"]) == (1, 1, 0)
        assert counts["queued"] + counts["running"] == 1
        record = ledger.get(done)
        assert record is not None and record["status"] == "done"

    def test_recent_lists_newest_first(self, ledger: DocumentLedger) -> None:
        keys = [ledger.record(claim(bytes([n]))).key for n in range(5)]
        newest = [record["key"] for record in ledger.recent(limit=3)]
        assert len(newest) == 3 and set(newest) <= set(keys)
        stamps = [record["received_ts"] for record in ledger.recent(limit=5)]
        assert stamps == sorted(stamps, reverse=True)

    def test_a_retried_failure_leaves_the_failed_count_and_is_no_original(
        self, ledger: DocumentLedger
    ) -> None:
        key = ledger.record(claim(b"retry me")).key
        assert ledger.mark_retried(key) == "queued"
        ledger.finish(key, "failed", "/outbox/f", "timeout")
        assert ledger.mark_retried(key) == "retried"
        assert ledger.mark_retried(key) == "retried"
        assert ledger.counts()["failed"] == 0
        again = ledger.record(claim(b"retry me"))
        assert again.duplicate_of is None

    def test_a_retry_that_was_not_sent_makes_the_document_failed_again(
        self, ledger: DocumentLedger
    ) -> None:
        key = ledger.record(claim(b"unsent")).key
        ledger.finish(key, "failed", "/outbox/f", "timeout")
        ledger.mark_retried(key)
        ledger.unmark_retried(key)
        record = ledger.get(key)
        assert record is not None and record["status"] == "failed"
        assert ledger.counts()["failed"] == 1

    def test_only_an_end_without_an_outbox_folder_reopens(self, ledger: DocumentLedger) -> None:
        stranded, written = ledger.record(claim(b"stranded")).key, ledger.record(claim(b"ok")).key
        ledger.finish(stranded, "failed", "", "outbox")
        ledger.finish(written, "done", "/outbox/ok", None)
        assert ledger.reopen(stranded) and not ledger.reopen(written)
        assert not ledger.reopen(stranded)
        record = ledger.get(stranded)
        assert record is not None and record["status"] == "queued" and not record.get("outdir")
        assert ledger.counts()["failed"] == 0
        ledger.finish(stranded, "done", "/outbox/s", None)
        assert ledger.counts()["done"] == 2

    def test_withdraw_removes_an_unfinished_document_only(self, ledger: DocumentLedger) -> None:
        scan = claim(b"changed after the claim")
        key = ledger.record(scan).key
        assert ledger.withdraw(key)
        assert ledger.get(key) is None and ledger.key_for_token(scan.token) is None
        again = ledger.record(scan)
        assert again.duplicate_of is None
        ledger.finish(again.key, "done", "/outbox/x", None)
        assert not ledger.withdraw(again.key) and ledger.get(again.key) is not None

    def test_forget_removes_finished_documents_and_keeps_unfinished_ones(
        self, ledger: DocumentLedger
    ) -> None:
        done, running = ledger.record(claim(b"old")).key, ledger.record(claim(b"busy")).key
        ledger.finish(done, "done", "/outbox/old", None)
        assert ledger.forget([done, running, "no-such-key"]) == {done: "done"}
        assert ledger.get_many([done, running])[0] is None
        assert ledger.get(running) is not None
        assert ledger.counts()["done"] == 0
        again = ledger.record(claim(b"old"))
        assert again.key == done and again.duplicate_of is None
