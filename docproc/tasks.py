"""Celery glue: the app, one thin task per stage, and `submit` that sends a job on its way."""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from typing import Any

from celery import Celery, Task, chain
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import after_setup_logger
from redis import RedisError

from docproc import stages
from docproc.broker import redis_client
from docproc.ledger import Ledger
from docproc.outbox import Outbox, OutboxError
from docproc.settings import Settings, load_settings
from docproc.stages import Job, Stage, StageContext

log = logging.getLogger("docproc.tasks")
QUEUE = "docproc"
TRANSIENT = (OSError, RedisError)


class DocprocCelery(Celery):
    """The Celery app, holding the settings it was configured with and per-process resources."""

    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            # `celery -A docproc.tasks …` (Flower, inspect) loads the default configuration.
            configure(load_settings())
        assert self._settings is not None
        return self._settings

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(redis_client(self.settings))

    @cached_property
    def outbox(self) -> Outbox:
        return Outbox(self.settings.outbox)


app = DocprocCelery("docproc", set_as_current=True)


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
        "worker_prefetch_multiplier": 1,
        "task_time_limit": workers.task_time_limit,
        "task_soft_time_limit": workers.task_soft_time_limit,
        "worker_max_memory_per_child": workers.max_memory_per_child_mb * 1024,
        "worker_concurrency": workers.concurrency,
        # Redelivery of an unacknowledged task must never overtake a task still running.
        "broker_transport_options": {"visibility_timeout": max(3600, workers.task_time_limit * 2)},
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "task_default_queue": QUEUE,
        "worker_hijack_root_logger": False,
        "enable_utc": True,
    }


def configure(settings: Settings) -> DocprocCelery:
    """Configure the app once for these settings."""
    app._settings = settings
    app.conf.update(celery_config(settings))
    for task in (detect_task, extract_task, analyze_task, finish_task):
        task.max_retries = settings.workers.max_retries
    return app


@after_setup_logger.connect
def _quiet_celery_task_lines(**_: Any) -> None:
    # Our stages log one line per document and stage; Celery's own per-task lines only repeat them.
    for name in ("celery.app.trace", "celery.worker.strategy"):
        logging.getLogger(name).setLevel(logging.WARNING)


class DocumentTask(Task):
    """A stage task: retries transient errors, and fails the document when retries run out."""

    autoretry_for = TRANSIENT
    retry_backoff = True
    retry_backoff_max = 60
    acks_late = True

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        job: Job = args[0]
        message = f"{type(exc).__name__}: {exc}"
        log.error("%s failed for good in %s: %s", job.get("key"), self.name, message)
        stages.fail(job, self.name.rsplit(".", 1)[-1], "internal", message)
        try:
            _finish(self, job)
        except Exception:
            log.exception("%s: could not write its failure; the original stays in the spool",
                          job.get("key"))


def _context(task: Task) -> StageContext:
    return StageContext(app.settings.pipeline, app.ledger, task.request.hostname or "local")


def _run(task: Task, job: Job, stage: Stage) -> Job:
    ctx = _context(task)
    try:
        job = stages.run_stage(job, stage, ctx)
    except SoftTimeLimitExceeded:
        limit = app.settings.workers.task_soft_time_limit
        stages.fail(job, stage, "timeout",
                    f"{stage} took longer than workers.task_soft_time_limit ({limit:g} s); "
                    "the file may be pathological, or raise the limit")
    _log_stage(job, stage)
    return job


def _log_stage(job: Job, stage: str) -> None:
    error = job["error"]
    if error and error["stage"] == stage:
        log.info("%s %s failed: %s (%s)", job["key"], stage, error["type"], error["message"])
    elif stage in job["timings_ms"]:
        log.info("%s %s %s %.1f ms", job["key"], stage, job["source"]["relpath"],
                 job["timings_ms"][stage])


def _finish(task: Task, job: Job) -> Path:
    keep = app.settings.watcher.on_success == "archive"
    try:
        folder = stages.finish(job, _context(task), app.outbox, keep_original=keep)
    except OutboxError as exc:
        if task.request.retries >= task.max_retries:
            raise
        raise task.retry(exc=exc, countdown=min(60, 2 ** task.request.retries)) from exc
    log.info("%s %s -> %s", job["key"], stages.status_of(job), folder)
    return folder


@app.task(bind=True, base=DocumentTask, name="docproc.detect")
def detect_task(self: Task, job: Job) -> Job:
    """Detect the file's type."""
    return _run(self, job, "detect")


@app.task(bind=True, base=DocumentTask, name="docproc.extract")
def extract_task(self: Task, job: Job) -> Job:
    """Extract text, pages and image facts."""
    return _run(self, job, "extract")


@app.task(bind=True, base=DocumentTask, name="docproc.analyze")
def analyze_task(self: Task, job: Job) -> Job:
    """Find keywords and language."""
    return _run(self, job, "analyze")


@app.task(bind=True, base=DocumentTask, name="docproc.finish")
def finish_task(self: Task, job: Job) -> str:
    """Make the thumbnail and write the document's outbox folder."""
    job = _run(self, job, "thumbnail")
    return str(_finish(self, job))


def submit(job: Job) -> None:
    """Send a job through the stage chain."""
    chain(detect_task.s(job), extract_task.s(), analyze_task.s(), finish_task.s()).apply_async()
