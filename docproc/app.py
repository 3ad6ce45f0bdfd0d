"""The Celery app: its configuration from docproc's settings, per-process resources, signals.

It imports no task module: the worker imports those by name, from `include`.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
from functools import cached_property
from typing import Any

from celery import Celery
from celery.signals import after_setup_logger, worker_process_init, worker_ready, worker_shutdown

from docproc import queues
from docproc.broker import redis_client
from docproc.holding import Holding
from docproc.instance import die_with_parent
from docproc.ledger.redis_ledger import RedisLedger
from docproc.outbox import Outbox
from docproc.schedule.clock import daily_at
from docproc.settings import Settings, load_settings
from docproc.worker import heartbeat
from docproc.worker.reconcile import RECONCILE_SECONDS


class DocprocCelery(Celery):
    """The Celery app, holding the settings it was configured with and per-process resources."""

    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            # `celery -A docproc.app …` (Flower, inspect) loads the default configuration.
            configure(load_settings())
        assert self._settings is not None
        return self._settings

    @cached_property
    def ledger(self) -> RedisLedger:
        return RedisLedger(redis_client(self.settings))

    @cached_property
    def outbox(self) -> Outbox:
        return Outbox(self.settings.outbox, self.settings.outbox_umask)

    @cached_property
    def holding(self) -> Holding:
        return Holding(self.ledger.redis)


# Modules whose tasks the worker registers: named, not imported here, as each imports the app.
app = DocprocCelery("docproc", set_as_current=True,
                    include=["docproc.tasks", "docproc.worker.reconcile_task",
                             "docproc.schedule.tasks", "docproc.worker.ocr_tasks"])


def celery_config(settings: Settings) -> dict[str, Any]:
    """Return the Celery configuration for these settings: late acks, JSON only, time limits."""
    workers = settings.workers
    return {
        "broker_url": settings.broker,
        "result_backend": settings.backend,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_ignore_result": True,
        # Safe with late acks: heartbeats list reserved tasks too, so a dead worker's
        # prefetched documents are recovered like its running ones.
        "worker_prefetch_multiplier": 4,
        "task_time_limit": workers.task_time_limit,
        "task_soft_time_limit": workers.task_soft_time_limit,
        "worker_max_memory_per_child": workers.max_memory_per_child_mb * 1024,
        "worker_concurrency": workers.concurrency,
        # Redelivery of an unacknowledged task must never overtake a task still running.
        "broker_transport_options": {"visibility_timeout": max(3600, workers.task_time_limit * 2)},
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "task_default_queue": queues.DOCUMENTS,
        "task_routes": {"docproc.finish": {"queue": queues.FINISHING},
                        "docproc.ocr": {"queue": queues.OCR},
                        "docproc.ocr_pages": {"queue": queues.OCR},
                        "docproc.reconcile": {"queue": queues.CONTROL},
                        # The daily report's chord and the purge read and delete files, briefly:
                        # they must not wait behind a backlog of documents.
                        "docproc.daily.*": {"queue": queues.CONTROL},
                        "docproc.purge": {"queue": queues.CONTROL}},
        "worker_hijack_root_logger": False,
        # Task events for Flower and `celery events`: workers.task_events.
        "worker_send_task_events": workers.task_events,
        "task_send_sent_event": workers.task_events,
        "enable_utc": True,
        "beat_schedule": {
            "reconcile": {"task": "docproc.reconcile", "schedule": RECONCILE_SECONDS,
                          "options": {"expires": RECONCILE_SECONDS * 2}},
            # Local times; docproc.schedule.beat.LeaderScheduler runs them from one Beat only.
            "daily-report": {"task": "docproc.daily.report",
                             "schedule": daily_at(settings.schedule.daily_report)},
            "purge": {"task": "docproc.purge", "schedule": daily_at(settings.schedule.purge)},
        },
    }


def configure(settings: Settings, *, results: bool = True) -> DocprocCelery:
    """Configure the app once for these settings.

    A process that only sends documents on (the watcher) passes results=False: it never
    reads a result, and each chain it sends would otherwise track result handles.
    """
    app._settings = settings
    app.conf.update(celery_config(settings))
    if not results:
        app.conf.result_backend = None
    return app


@app.on_configure.connect
def _configure_from_settings(sender: DocprocCelery, **_: Any) -> None:
    # `celery -A docproc.app flower|events|inspect` reads docproc's configuration too.
    if sender._settings is None:
        configure(load_settings())


@after_setup_logger.connect
def _quiet_celery_task_lines(**_: Any) -> None:
    # Our stages log one line per document and stage; Celery's own per-task lines only repeat
    # them, and Beat would log the reconciler every few seconds.
    for name in ("celery.app.trace", "celery.worker.strategy", "celery.beat"):
        logging.getLogger(name).setLevel(logging.WARNING)


@worker_process_init.connect
def _prepare_child(**_: Any) -> None:
    # A runaway document raises MemoryError in its own child instead of starving the machine.
    megabytes = app.settings.workers.max_memory_per_child_mb
    limit = max(2 * megabytes, megabytes + 1024) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # A child whose worker was killed dies with it instead of running on, orphaned.
    die_with_parent(signal.SIGKILL)


@worker_ready.connect
def _start_heartbeat(sender: Any = None, **_: Any) -> None:
    node = f"{getattr(sender, 'hostname', 'worker')}/{os.getpid()}"
    heartbeat.start(node, app.settings)


@worker_shutdown.connect
def _stop_heartbeat(**_: Any) -> None:
    heartbeat.stop()
