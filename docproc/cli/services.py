"""The programs `docproc up` supervises: broker, watch, worker, beat and api."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING

from docproc.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, prepare_state, refuse_exposed_api
from docproc.settings import Settings

if TYPE_CHECKING:
    from docproc.inbox.intake import Intake

SPOOL_SWEEP_SECONDS = 30.0


def _stop_event() -> threading.Event:
    stop = threading.Event()

    def _handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    return stop


def cmd_broker(settings: Settings, args: argparse.Namespace) -> int:
    """Become the embedded broker, when broker_url asks for one."""
    from docproc.broker import exec_embedded
    from docproc.instance import AlreadyRunning, hold_lock

    if settings.broker_url != "embedded":
        logging.info("broker_url is %s: no embedded broker to run", settings.broker_url)
        return EXIT_OK
    prepare_state(settings)
    try:
        # Held by valkey-server, which replaces this process: two would share one AOF file.
        hold_lock(settings.state_dir, "broker")
    except AlreadyRunning as exc:
        logging.error("%s", exc)
        return EXIT_FAILURE
    exec_embedded(settings)
    return EXIT_FAILURE  # not reached


def cmd_watch(settings: Settings, args: argparse.Namespace) -> int:
    """Watch the inbox and hand claimed files over until stopped."""
    from docproc.app import configure
    from docproc.broker import BrokerCheck, redis_client, wait_for_broker
    from docproc.inbox.intake import Intake
    from docproc.inbox.spool import recover_spool
    from docproc.ledger.redis_ledger import RedisLedger
    from docproc.status.watchers import publish_watcher_stats
    from docproc.tasks import submit
    from docproc.watcher import InboxWatcher

    prepare_state(settings)
    settings.inbox.mkdir(parents=True, exist_ok=True)
    stop = _stop_event()
    configure(settings, results=False)
    wait_for_broker(settings)
    intake = Intake(settings, RedisLedger(redis_client(settings)), submit)
    intake.recover(recover_spool(settings.spool_dir))
    watcher = InboxWatcher(
        settings.inbox, settings.spool_dir, settings.watcher, intake,
        can_claim=BrokerCheck(settings), on_batch_end=intake.flush,
    )
    threading.Thread(target=_sweep_spool, args=(intake, settings, stop), daemon=True).start()
    publish_watcher_stats(watcher, settings, stop)
    watcher.run(stop)
    try:
        intake.flush()
    except Exception:
        # Claims not handed over stay in the spool; the next start sends them on.
        logging.exception("could not hand over the last claims; they stay in the spool")
    return EXIT_OK


def _sweep_spool(intake: Intake, settings: Settings, stop: threading.Event) -> None:
    while not stop.wait(SPOOL_SWEEP_SECONDS):
        try:
            intake.sweep(settings.spool_dir, min_age=SPOOL_SWEEP_SECONDS)
        except Exception:
            logging.exception("sweeping the spool failed; trying again later")


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Run a Celery worker on the document queues, or on those --queues names."""
    from docproc import queues
    from docproc.app import configure
    from docproc.broker import wait_for_broker

    # Made at start, as `docproc up` does; once running, a vanished outbox (an unmounted
    # share) holds documents instead of being made again on the mount point.
    settings.outbox.mkdir(parents=True, exist_ok=True)
    app = configure(settings)
    wait_for_broker(settings)
    chosen = args.queues.split(",") if getattr(args, "queues", None) else queues.ALL
    unknown = sorted(set(chosen) - set(queues.ALL))
    if unknown:
        logging.error("unknown queues %s; docproc's are %s", ",".join(unknown),
                      ",".join(queues.ALL))
        return EXIT_USAGE
    ocr_only = list(chosen) == [queues.OCR]
    argv = [
        "worker", "--loglevel", "INFO",
        "-n", args.name or ("ocr1@%h" if ocr_only else "worker1@%h"),
        "--concurrency", str(args.concurrency or settings.workers.concurrency),
        "--without-mingle", "--without-gossip", "--queues", ",".join(chosen),
    ]
    if ocr_only:
        # Prefetch is per worker: 1 keeps a range of pages from waiting behind another in a
        # busy child while an idle process (here or on another host) could read it.
        argv += ["--prefetch-multiplier", "1"]
    app.worker_main(argv)
    return EXIT_OK


def cmd_beat(settings: Settings, args: argparse.Namespace) -> int:
    """Run Celery Beat; the one holding the lock in Redis sends."""
    from docproc.app import configure
    from docproc.broker import wait_for_broker
    from docproc.schedule.beat import RENEW_SECONDS

    prepare_state(settings)
    app = configure(settings)
    wait_for_broker(settings)
    # Any number of Beats may run: the one holding the lock in Redis sends, the others stand
    # by; last runs live in Redis too, so the schedule needs no file.
    app.start(["beat", "--loglevel", "INFO",
               "--scheduler", "docproc.schedule.beat:LeaderScheduler",
               "--max-interval", str(int(RENEW_SECONDS))])
    return EXIT_OK


def cmd_api(settings: Settings, args: argparse.Namespace) -> int:
    """Serve the status API and page."""
    from docproc.status_api import serve

    if refuse_exposed_api(settings):
        return EXIT_USAGE
    serve(settings)
    return EXIT_OK
