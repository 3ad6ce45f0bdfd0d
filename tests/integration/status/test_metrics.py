"""`/metrics` over a real watcher and worker: spool, watcher, ledger and queue-wait figures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import redis

from docproc.settings import load_settings
from docproc.status_api import create_app
from tests.conftest import Daemon, reports, wait_until
from tests.integration.status.scrape import Samples, metric_samples


def test_watcher_spool_ledger_and_queue_wait_metrics(
    make_config: Callable[..., Path], daemon: Callable[[Path], Daemon], valkey_socket: Path,
) -> None:
    redis.Redis(unix_socket_path=str(valkey_socket)).flushdb()
    config = make_config(broker_url=f"redis+socket://{valkey_socket}")
    settings = load_settings(config, environ={})
    run = daemon(config)
    run.start("watch")
    for number in range(3):
        (settings.inbox / f"note-{number}.txt").write_text(f"note number {number}\n")
    api = create_app(settings).test_client()

    def metrics() -> Samples:
        return metric_samples(api.get("/metrics").get_data(as_text=True))

    # No worker yet: three claimed files wait in the spool.
    spooled = sum(len(f"note number {n}\n") for n in range(3))
    waiting = wait_until(lambda: (m := metrics()).get(("docproc_spool_files", ())) == 3
                         and m.get(("docproc_watcher_files_claimed_total", ())) == 3 and m, 30,
                         message="three files claimed and spooled")
    assert waiting[("docproc_spool_bytes", ())] == spooled
    assert waiting[("docproc_watcher_files_seen_total", ())] == 3
    assert waiting[("docproc_watchers_online", ())] == 1
    assert waiting[("docproc_ledger_up", ())] == 1
    run.start("worker")
    wait_until(lambda: len(reports(settings.outbox)) == 3, 60, message="three reports")
    done = wait_until(lambda: (m := metrics()).get(("docproc_spool_files", ())) == 0 and m, 30,
                      message="the spool to empty")
    assert done[("docproc_spool_bytes", ())] == 0
    assert done[("docproc_queue_wait_seconds_count", ())] == 3
    assert done[("docproc_queue_wait_seconds_bucket", (("le", "+Inf"),))] == 3

    gone = load_settings(make_config(broker_url="redis://127.0.0.1:1/0"), environ={})
    away = metric_samples(create_app(gone).test_client().get("/metrics").get_data(as_text=True))
    assert away[("docproc_ledger_up", ())] == 0
