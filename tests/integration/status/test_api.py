"""The status API over real workers and a real watcher: numbers, documents, outputs, retry."""

from __future__ import annotations

import hashlib
import io
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from PIL import Image

from docproc.inbox.spool import Claimed
from docproc.ledger.redis_ledger import RedisLedger
from docproc.settings import Settings, load_settings
from docproc.status_api import create_app
from tests.conftest import Daemon, reports, wait_until
from tests.integration.status.scrape import scrape

ENCRYPTED = "pdf-hard/r6-user-password.pdf"
FOUR_PAGES = "pdf/004-pdflatex-4-pages_pdflatex-4-pages.pdf"


def _settings(config: Path) -> Settings:
    return load_settings(config, environ={})


@pytest.fixture
def processed(
    embedded: dict[str, Any], make_config: Callable[..., Path],
    daemon: Callable[[Path], Daemon], corpus: Path,
) -> Iterator[tuple[Settings, FlaskClient, dict[str, str]]]:
    """Run two worker nodes and a watcher over five dropped files; yield the API's client."""
    config = make_config(**embedded, workers={"concurrency": 1})
    settings = _settings(config)
    run = daemon(config)
    run.start("worker", "--name", "one@%h")
    run.processes["worker-one"] = run.processes.pop("worker")
    run.start("worker", "--name", "two@%h")
    run.start("watch")
    inbox = settings.inbox
    (inbox / "dept").mkdir()
    shutil.copy(corpus / FOUR_PAGES, inbox / "dept" / "four.pdf")
    shutil.copy(corpus / ENCRYPTED, inbox / "dept" / "locked.pdf")
    shutil.copy(corpus / "images" / "hopper.png", inbox / "hopper.png")
    (inbox / "notes.txt").write_text("Quarterly invoices and receipts for the review.\n")
    (inbox / "more.txt").write_text("Minutes of the meeting about invoices.\n")
    wait_until(lambda: len(reports(settings.outbox)) == 5, 60, message="five reports")
    keys = {report["source"]["name"]: report["id"] for report in reports(settings.outbox)}
    yield settings, create_app(settings).test_client(), keys


def test_stats_progress_outputs_metrics_and_listing_of_processed_documents(
    processed: tuple[Settings, FlaskClient, dict[str, str]],
) -> None:
    _, client, keys = processed
    # A report is written before its spool file is removed: wait for both, not just one.
    stats = wait_until(lambda: (body := client.get("/api/stats").get_json())["workers"]
                       and body["watcher"]["online"] and body["spool"]["files"] == 0 and body,
                       10, message="workers in stats and an empty spool")
    assert stats["counts"] == {"queued": 0, "running": 0, "done": 4, "failed": 1,
                               "duplicate": 0, "retried": 0}
    assert stats["throughput"]["last_1m"] == 5 and len(stats["throughput"]["per_minute"]) == 60
    assert stats["stages"]["detect"]["count"] == 5 and stats["stages"]["thumbnail"]["count"] == 4
    assert stats["stages"]["extract"]["p50_ms"] > 0
    assert {w["name"].split("@")[0] for w in stats["workers"]} == {"one", "two"}
    assert stats["queues"] == {"docproc": 0, "docproc.finish": 0, "docproc.ocr": 0,
                               "docproc.control": 0}
    assert set(stats["ocr"]) == {"pages", "pages_per_minute"}
    assert stats["watcher"]["backlog"] == 0 and stats["spool"]["files"] == 0
    assert stats["oldest_unfinished"] is None
    assert [f["name"] for f in stats["failures"]] == ["locked.pdf"]
    assert stats["failures"][0]["error"]["type"] == "encrypted"
    assert "password" in stats["failures"][0]["error"]["message"]

    pdf = client.get(f"/api/documents/{keys['four.pdf']}").get_json()
    assert pdf["status"] == "done" and pdf["kind"] == "pdf" and pdf["pages"] == 4
    assert pdf["relpath"] == "dept/four.pdf" and pdf["worker"].split("@")[0] in ("one", "two")
    assert [(s["stage"], s["state"]) for s in pdf["progress"]] == [
        ("detect", "done"), ("extract", "done"), ("analyze", "done"), ("thumbnail", "done")]
    assert all(s["started_at"] and s["ended_at"] for s in pdf["progress"])
    assert pdf["retries"] == 0 and pdf["report"]["pages"] == 4
    locked = client.get(f"/api/documents/{keys['locked.pdf']}").get_json()
    assert [s["state"] for s in locked["progress"]] == ["done", "failed", "skipped", "skipped"]
    assert locked["links"]["retry"] == f"/api/documents/{keys['locked.pdf']}/retry"

    text = client.get(f"/api/documents/{keys['notes.txt']}/text")
    assert text.status_code == 200 and text.get_data(as_text=True).startswith("Quarterly")
    assert text.headers["Content-Type"] == "text/plain; charset=utf-8"
    thumbnail = client.get(f"/api/documents/{keys['hopper.png']}/thumbnail")
    assert thumbnail.mimetype == "image/png"
    assert Image.open(io.BytesIO(thumbnail.data)).size[0] > 0
    missing = client.get(f"/api/documents/{keys['locked.pdf']}/thumbnail")
    assert missing.status_code == 404 and "no thumbnail" in missing.get_json()["error"]

    samples = scrape(client)
    kinds = {labels: value for (name, labels), value in samples.items()
             if name == "docproc_documents_total"}
    # Both worker nodes finished documents; the counts kept in Redis add up.
    assert sum(kinds.values()) == 5
    assert kinds[(("kind", "pdf"), ("status", "done"))] == 1
    assert kinds[(("kind", "text"), ("status", "done"))] == 2
    assert kinds[(("kind", "pdf"), ("status", "failed"))] == 1
    assert samples[("docproc_stage_duration_seconds_count", (("stage", "detect"),))] == 5
    assert samples[("docproc_stage_duration_seconds_bucket",
                    (("le", "+Inf"), ("stage", "extract")))] == 5
    assert samples[("docproc_document_duration_seconds_count", ())] == 5
    assert samples[("docproc_documents_current", (("status", "failed"),))] == 1
    assert samples[("docproc_queue_depth", (("queue", "docproc"),))] == 0
    assert samples[("docproc_workers_online", ())] == 2
    assert samples[("docproc_watcher_backlog_files", ())] == 0
    assert samples[("docproc_document_failures_total", (("error", "encrypted"),))] == 1
    _check_listing(client)


def _check_listing(client: FlaskClient) -> None:
    everything = client.get("/api/documents").get_json()
    assert [d["key"] for d in everything["documents"]] and everything["next_cursor"] is None
    newest_first = [d["key"] for d in everything["documents"]]
    paged, cursor = [], None
    for _ in range(10):
        query = "/api/documents?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(query).get_json()
        paged += [d["key"] for d in page["documents"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == newest_first and len(paged) == 5
    failed = client.get("/api/documents?status=failed").get_json()["documents"]
    assert [d["name"] for d in failed] == ["locked.pdf"]
    assert failed[0]["error"]["type"] == "encrypted"
    both = client.get("/api/documents?status=failed,done&limit=500").get_json()["documents"]
    assert len(both) == 5
    assert client.get("/api/documents?since=2999-01-01").get_json()["documents"] == []
    assert len(client.get("/api/documents?since=2000-01-01T00:00:00Z").get_json()["documents"]) == 5
    for query, words in [("status=exploded", "unknown status"), ("since=yesterday", "since"),
                         ("since=nan", "since"), ("limit=many", "limit"),
                         ("cursor=nonsense", "cursor")]:
        response = client.get(f"/api/documents?{query}")
        assert response.status_code == 400 and words in response.get_json()["error"], query
    for path in ("/api/documents/000000000000", "/api/documents/..%2F..%2Fetc%2Fpasswd",
                 "/api/documents/nothing/text", "/api/nowhere"):
        response = client.get(path)
        assert response.status_code == 404 and response.get_json()["error"], path
    assert client.post("/api/stats").get_json()["status"] == 405


def test_retry_from_the_api_sends_the_original_again_as_a_new_receipt(
    processed: tuple[Settings, FlaskClient, dict[str, str]],
) -> None:
    settings, client, keys = processed
    key = keys["locked.pdf"]
    done = client.post(f"/api/documents/{keys['four.pdf']}/retry")
    assert done.status_code == 409 and "only failed" in done.get_json()["error"]
    response = client.post(f"/api/documents/{key}/retry")
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["sent_as"] == "dept/locked.pdf"
    again = client.post(f"/api/documents/{key}/retry")
    assert again.status_code == 409
    # The failed attempt moved aside; the new receipt comes out with a report of its own.
    new = wait_until(lambda: [r for r in reports(settings.outbox) if r["source"]["name"]
                              == "locked.pdf"], 30, message="the retried document's report")
    assert len(reports(settings.outbox)) == 5 and new[0]["status"] == "failed"
    assert (settings.outbox / "retried").is_dir()
    assert list((settings.outbox / "retried").glob(f"*/locked.{key}/original/locked.pdf"))
    old = client.get(f"/api/documents/{key}").get_json()
    assert old["status"] == "retried" and old["retried_as"] == f"{key}-2"
    assert old["report"]["status"] == "failed"
    counts = client.get("/api/stats").get_json()["counts"]
    assert counts["retried"] == 1 and counts["failed"] == 1
    failures = client.get("/api/documents?status=failed").get_json()["documents"]
    assert [d["key"] for d in failures] == [f"{key}-2"]


def test_nothing_outside_the_outbox_is_served(
    embedded: dict[str, Any], make_config: Callable[..., Path], tmp_path: Path,
) -> None:
    settings = _settings(make_config(**embedded))
    ledger = RedisLedger(redis.Redis.from_url(settings.redis_url, decode_responses=True))
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "text.txt").write_text("not for the API")
    inside = settings.outbox / "documents" / "2026-01-01" / "doc.aaaaaaaaaaaa"
    inside.mkdir(parents=True)
    (inside / "text.txt").symlink_to(outside / "text.txt")
    (inside / "thumbnail.png").symlink_to("/etc/passwd")
    escape = settings.outbox / "documents" / "2026-01-01" / "doc.bbbbbbbbbbbb"
    escape.symlink_to(outside)
    records = {"aaaaaaaaaaaa": inside, "bbbbbbbbbbbb": escape, "cccccccccccc": outside,
               "dddddddddddd": settings.outbox / ".." / "secret"}
    for key, outdir in records.items():
        ledger.redis.hset(f"docproc:doc:{key}", mapping={
            "key": key, "status": "done", "outdir": str(outdir), "stages": "{}"})
        ledger.redis.zadd("docproc:docs", {key: 1.0})
    client = create_app(settings, ledger).test_client()
    for key in records:
        for output in ("text", "thumbnail"):
            response = client.get(f"/api/documents/{key}/{output}")
            assert response.status_code == 404, (key, output)
            assert b"not for the API" not in response.data and b"root:" not in response.data
        assert client.get(f"/api/documents/{key}").get_json()["report"] is None


def test_documents_listing_filters_by_each_status_and_since_in_unix_seconds(
    make_config: Callable[..., Path], valkey_socket: Path, tmp_path: Path,
) -> None:
    client = redis.Redis(unix_socket_path=str(valkey_socket), decode_responses=True)
    client.flushdb()
    ledger = RedisLedger(client)
    settings = load_settings(make_config(broker_url=f"redis+socket://{valkey_socket}"),
                             environ={})

    def record(name: str) -> str:
        data = name.encode()
        return ledger.record(Claimed(f"tok-{name}", tmp_path / name, name, name, len(data),
                                     hashlib.sha256(data).hexdigest(),
                                     time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))).key

    keys = {status: record(f"{status}.txt") for status in
            ("queued", "running", "done", "failed", "duplicate", "retried")}
    ledger.start_stage_many({keys["running"]: "{}"}, "extract", "w1")
    ledger.finish(keys["done"], "done", "", None)
    ledger.finish(keys["failed"], "failed", "", "corrupt")
    ledger.finish(keys["duplicate"], "duplicate", "", None)
    ledger.finish(keys["retried"], "failed", "", "corrupt")
    assert ledger.mark_retried(keys["retried"]) == "retried"
    api = create_app(settings, ledger).test_client()

    def listed(query: str) -> list[str]:
        response = api.get(f"/api/documents?{query}")
        assert response.status_code == 200, response.get_json()
        return [document["key"] for document in response.get_json()["documents"]]

    for status, key in keys.items():
        assert listed(f"status={status}") == [key], status
    assert sorted(listed("status=queued,retried")) == sorted([keys["queued"], keys["retried"]])
    received = {key: float(ledger.get(key)["received_ts"]) for key in keys.values()}
    newest = max(received.values())
    assert sorted(listed(f"since={newest:.6f}")) == sorted(
        key for key, ts in received.items() if ts >= newest)
    assert listed(f"since={int(newest) + 3600}") == []
    assert sorted(listed(f"since={int(min(received.values())) - 1}")) == sorted(keys.values())
