"""The status API with real workers and a real watcher: progress, files, retry, metrics, token."""

from __future__ import annotations

import concurrent.futures
import io
import json
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from docproc import stats, status_api
from docproc.inbox.candidates import WAIT_REASONS
from docproc.inbox.spool import Claimed
from docproc.ledger import Ledger
from docproc.metrics import publish_watcher_stats
from docproc.settings import Settings, load_settings
from docproc.status_api import create_app
from docproc.watcher import InboxWatcher
from tests.conftest import Daemon, free_port, reports, wait_until

ENCRYPTED = "pdf-hard/r6-user-password.pdf"
FOUR_PAGES = "pdf/004-pdflatex-4-pages_pdflatex-4-pages.pdf"


def _settings(config: Path) -> Settings:
    return load_settings(config, environ={})


@pytest.fixture
def embedded(valkey_socket: Path) -> dict[str, Any]:
    redis.Redis(unix_socket_path=str(valkey_socket)).flushdb()
    return {"broker_url": f"redis+socket://{valkey_socket}", "result_backend": None}


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


def _metrics(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    samples: dict[str, Any] = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            samples[(sample.name, labels)] = sample.value
    return samples


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
    assert stats["queues"] == {"docproc": 0, "docproc.finish": 0, "docproc.control": 0}
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

    samples = _metrics(client)
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
    ledger = Ledger(redis.Redis.from_url(settings.redis_url, decode_responses=True))
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


def test_healthz_reads_worker_heartbeats_and_says_when_the_broker_is_away_or_hangs(
    embedded: dict[str, Any], make_config: Callable[..., Path], valkey_socket: Path,
) -> None:
    settings = _settings(make_config(**embedded))
    client = create_app(settings).test_client()
    alone = client.get("/healthz")
    assert alone.status_code == 503 and "heartbeat" in alone.get_json()["reason"]

    ledger = Ledger(redis.Redis(unix_socket_path=str(valkey_socket), decode_responses=True))
    ledger.heartbeat("worker7@scanhost/4242", [], 4.0)
    healthy = client.get("/healthz")
    assert healthy.status_code == 200
    assert healthy.get_json() == {"status": "ok", "workers": ["worker7@scanhost"]}

    # A broker that is gone, and one that hangs (accepts, never answers): a health check
    # says so (how fast is for benchmarks/), rather than waiting on the broker for good.
    with socket.create_server(("127.0.0.1", 0)) as hung:
        for url in (f"redis://127.0.0.1:{free_port()}/0",
                    f"redis://127.0.0.1:{hung.getsockname()[1]}/0"):
            broker_away = create_app(_settings(make_config(broker_url=url))).test_client()
            pool = concurrent.futures.ThreadPoolExecutor(1)
            try:
                answer = pool.submit(broker_away.get, "/healthz").result(timeout=60)
            finally:
                pool.shutdown(wait=False)
            assert answer.status_code == 503, url
            assert "does not answer" in answer.get_json()["reason"]


def test_the_api_serves_only_its_own_host_names_with_security_headers(
    embedded: dict[str, Any], make_config: Callable[..., Path],
) -> None:
    client = create_app(_settings(make_config(**embedded))).test_client()
    ok = client.get("/api/stats", headers={"Host": "127.0.0.1:8750"})
    assert ok.status_code == 200
    assert "script-src 'self'" in ok.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in ok.headers["Content-Security-Policy"]
    assert ok.headers["X-Frame-Options"] == "DENY"
    assert ok.headers["X-Content-Type-Options"] == "nosniff"
    assert ok.headers["Referrer-Policy"] == "no-referrer"
    assert client.get("/", headers={"Host": "localhost:8750"}).status_code == 200

    # DNS rebinding: a page on attacker.example whose name now points at 127.0.0.1.
    for path in ("/", "/api/documents", "/metrics"):
        refused = client.get(path, headers={"Host": "attacker.example:8750"})
        assert refused.status_code == 403, path
        assert "status_api.allowed_hosts" in refused.get_json()["error"]
    assert client.get("/healthz", headers={"Host": "attacker.example"}).status_code == 503
    cross = client.post("/api/documents/aaaaaaaaaaaa/retry",
                        headers={"Host": "127.0.0.1:8750", "Origin": "http://attacker.example"})
    assert cross.status_code == 403 and "cross-site" in cross.get_json()["error"]

    named = create_app(_settings(make_config(
        **embedded, status_api={"allowed_hosts": ["docproc.example.org"]}))).test_client()
    assert named.get("/api/stats", headers={"Host": "docproc.example.org:8750"}).status_code == 200
    assert named.get("/api/stats", headers={"Host": "other.example.org"}).status_code == 403


def test_token_guards_everything_but_healthz_and_the_page_signs_in(
    embedded: dict[str, Any], make_config: Callable[..., Path],
) -> None:
    settings = _settings(make_config(**embedded, status_api={"token": "s3cret-token"}))
    client = create_app(settings).test_client()
    assert client.get("/healthz").status_code == 503  # no worker here, but no token needed
    for path in ("/api/stats", "/api/documents", "/metrics", "/api/documents/aaaaaaaaaaaa"):
        response = client.get(path)
        assert response.status_code == 401 and "token" in response.get_json()["error"], path
        # From another address: this one's wrong tokens are counted (a test of their own).
        wrong = client.get(path, headers={"Authorization": "Bearer s3cret-tokeN"},
                           environ_base={"REMOTE_ADDR": "192.0.2.1"})
        assert wrong.status_code == 401
    good = {"Authorization": "Bearer s3cret-token"}
    assert client.get("/api/stats", headers=good).status_code == 200
    assert client.get("/metrics", headers=good).status_code == 200
    page = client.get("/")
    assert page.status_code == 401 and b'name="token"' in page.data
    assert client.post("/login", data={"token": "guess"}).status_code == 401
    signed_in = client.post("/login", data={"token": "s3cret-token"})
    assert signed_in.status_code == 303
    cookie = signed_in.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "s3cret-token" not in cookie
    assert b"/static/app.js" in client.get("/").data
    assert client.get("/api/stats").status_code == 200
    assert client.get("/static/app.js").status_code == 200
    cross_site = client.post("/api/documents/aaaaaaaaaaaa/retry",
                             headers={"Origin": "https://elsewhere.example"})
    assert cross_site.status_code == 403
    assert json.loads(client.post("/api/documents/aaaaaaaaaaaa/retry").data)["status"] == 404


def test_wrong_tokens_from_one_address_are_answered_429_for_a_while(
    embedded: dict[str, Any], make_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(status_api, "LOGIN_WINDOW_SECONDS", 2.0, raising=False)
    settings = _settings(make_config(**embedded, status_api={"token": "s3cret-token"}))
    client = create_app(settings).test_client()
    good = {"Authorization": "Bearer s3cret-token"}
    guesser = {"REMOTE_ADDR": "192.0.2.66"}
    for number in range(5):
        guess = client.get("/api/stats", headers={"Authorization": f"Bearer guess-{number}"},
                           environ_base=guesser)
        assert guess.status_code == 401
    # The sixth attempt is refused unread, the right token too: a guesser learns nothing.
    refused = client.get("/api/stats", headers=good, environ_base=guesser)
    assert refused.status_code == 429 and "too many wrong tokens" in refused.get_json()["error"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 2
    signing_in = client.post("/login", data={"token": "s3cret-token"}, environ_base=guesser)
    assert signing_in.status_code == 429 and "Retry-After" in signing_in.headers
    # Other addresses are not held up; a page without its cookie yet is no wrong token.
    assert client.get("/api/stats", headers=good).status_code == 200
    for _ in range(8):
        assert client.get("/api/stats", environ_base={"REMOTE_ADDR": "192.0.2.8"}
                          ).status_code == 401
    assert client.get("/api/stats", headers=good,
                      environ_base={"REMOTE_ADDR": "192.0.2.8"}).status_code == 200
    # Wrong tokens through the sign-in form count the same.
    form = {"REMOTE_ADDR": "192.0.2.99"}
    for number in range(5):
        assert client.post("/login", data={"token": f"guess-{number}"},
                           environ_base=form).status_code == 401
    assert client.post("/login", data={"token": "guess-5"}, environ_base=form).status_code == 429
    # Once the window has passed, the right token works again.
    wait_until(lambda: client.get("/api/stats", headers=good, environ_base=guesser
                                  ).status_code == 200, 10, message="the refusal to end")


def _waiting_metric(client: FlaskClient) -> dict[str, float]:
    return {dict(labels)["reason"]: value for (name, labels), value in _metrics(client).items()
            if name == "docproc_watcher_waiting_files"}


def test_files_waiting_at_every_watcher_are_merged_oldest_first(
    embedded: dict[str, Any], make_config: Callable[..., Path],
) -> None:
    settings = _settings(make_config(**embedded))
    ledger = Ledger(redis.Redis.from_url(settings.redis_url, decode_responses=True))
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

    watcher, _ = stats.watcher_view(settings, ledger, now)
    assert watcher["online"] == 3 and watcher["backlog"] == 28 and watcher["claimed"] == 5
    assert watcher["waiting_by_reason"] == {"open_for_writing": 1, "quiet_period": 1,
                                            "incomplete": 0, "settling": 24, "empty": 1}
    listed = watcher["waiting"]
    assert len(listed) == stats.WAITING_SHOWN == 20
    assert listed[0] == {"relpath": "b/zero", "bytes": 0, "since": stats.iso(now - 100),
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
            assert abs(stats.parse_since(held["since"]) - time.time()) < 30
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
