"""Celery glue: the app, one thin task per stage, and `submit` that sends a job on its way."""

from __future__ import annotations

import logging
import os
import resource
import signal
import threading
from functools import cached_property
from pathlib import Path
from typing import Any

from celery import Celery, Task, chain
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import after_setup_logger, worker_process_init, worker_ready, worker_shutdown
from celery.worker import state as worker_state
from kombu.exceptions import OperationalError as KombuOperationalError
from redis import RedisError

from docproc import queues, stages
from docproc.broker import redis_client
from docproc.errors import OutboxError
from docproc.holding import Holding, is_infrastructure, probe_writable
from docproc.inbox.intake import Intake, written_after_claim
from docproc.instance import die_with_parent
from docproc.ledger import Ledger
from docproc.model import Job, Message, Stage, from_messages, jobs_of, to_messages
from docproc.outbox import Outbox
from docproc.reconcile import (
    HEARTBEAT_SECONDS,
    NODE_TTL_SECONDS,
    RECONCILE_SECONDS,
    Reconciler,
    queued_keys,
)
from docproc.schedule.clock import daily_at
from docproc.settings import Settings, load_settings
from docproc.stages import StageContext

log = logging.getLogger("docproc.tasks")
TRANSIENT = (OSError, RedisError)
INFRASTRUCTURE = (RedisError, KombuOperationalError, ConnectionError)


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
        return Outbox(self.settings.outbox, self.settings.outbox_umask)

    @cached_property
    def holding(self) -> Holding:
        return Holding(self.ledger.redis)

    @cached_property
    def intake(self) -> Intake:
        return Intake(self.settings, self.ledger, submit)


# Modules whose tasks the worker registers besides the stage tasks here.
app = DocprocCelery("docproc", set_as_current=True, include=["docproc.schedule.tasks"])


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
    for task in (extract_task, finish_task):
        task.max_retries = settings.workers.max_retries
    return app


@app.on_configure.connect
def _configure_from_settings(sender: DocprocCelery, **_: Any) -> None:
    # `celery -A docproc.tasks flower|events|inspect` reads docproc's configuration too.
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


_heartbeat_stop = threading.Event()


@worker_ready.connect
def _start_heartbeat(sender: Any = None, **_: Any) -> None:
    node = f"{getattr(sender, 'hostname', 'worker')}/{os.getpid()}"
    threading.Thread(target=_heartbeat, args=(node,), name="docproc-heartbeat", daemon=True).start()


@worker_shutdown.connect
def _stop_heartbeat(**_: Any) -> None:
    _heartbeat_stop.set()


def _held_keys() -> list[str]:
    """Return the keys of the documents this worker node has reserved or is running."""
    for _ in range(5):
        try:
            requests = [*worker_state.active_requests, *worker_state.reserved_requests]
            break
        except RuntimeError:  # the sets changed while being copied
            continue
    else:
        requests = []
    keys: list[str] = []
    for request in requests:
        try:
            keys.extend(job["key"] for job in request.args[0])
        except (IndexError, KeyError, TypeError, AttributeError):
            continue
    return keys


def _heartbeat(node: str) -> None:
    """Publish, every second, that this node lives and which documents it holds."""
    ledger = Ledger(redis_client(app.settings))
    failing = False
    # The first beat at once: a node killed in its first second must still be seen to vanish.
    while True:
        try:
            ledger.heartbeat(node, _held_keys(), NODE_TTL_SECONDS)
            failing = False
        except RedisError as exc:
            if not failing:
                log.warning("heartbeat of %s failed: %s", node, exc)
            failing = True
        if _heartbeat_stop.wait(HEARTBEAT_SECONDS):
            return


class DocumentTask(Task):
    """A stage task: retries transient errors, and fails the document when retries run out."""

    autoretry_for = TRANSIENT
    retry_backoff = True
    retry_backoff_max = 60
    acks_late = True

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        if isinstance(exc, INFRASTRUCTURE):
            # The broker or ledger is away: not the documents' fault. They stay unfinished
            # in the ledger and the reconciler sends them again once it answers.
            log.warning("%d documents wait for the broker to come back: %s", len(args[0]), exc)
            return
        if is_infrastructure(exc):
            app.holding.hold(from_messages(args[0]), f"{type(exc).__name__}: {exc}")
            return
        for job in from_messages(args[0]):
            _fail_for_good(self, job, exc)


def _context(task: Task) -> StageContext:
    limit = app.settings.workers.task_soft_time_limit
    return StageContext(app.settings.pipeline, app.ledger, task.request.hostname or "local",
                        interrupts=(SoftTimeLimitExceeded,),
                        timeout_message=stages.timeout_message(limit))


def _run(task: Task, jobs: list[Job], stages_of_task: tuple[Stage, ...]) -> list[Job]:
    """Run a task's stages over a batch; send on what a time limit cut off; pass on the rest."""
    jobs = _unless_it_kills(task, jobs)
    for stage in stages_of_task:
        going: list[Job] = []
        deferred: list[Job] = []
        held: list[Job] = []
        for job in stages.run_stage(jobs, stage, _context(task)):
            _log_stage(job, stage)
            if job.deferred:
                job.deferred = False
                deferred.append(job)
            elif job.held:
                held.append(job)
            elif not job.finished:
                going.append(job)
        if deferred:
            submit(deferred, start=stage)
        if held:
            app.holding.hold(held, held[0].held)
        jobs = going
    return jobs


def _unless_it_kills(task: Task, jobs: list[Job]) -> list[Job]:
    """Return the jobs to run; none when an earlier run of this message lost its worker child.

    A child killed mid-task (out of memory, a crash in a C library, kill -9) gets its message
    requeued at once (task_reject_on_worker_lost), where the reconciler never sees it: runs
    are counted per message. A batch cut off so is sent on one document a task, to find the
    one that kills; a single document cut off more than workers.max_retries times fails as
    `timeout`, its original kept.
    """
    request = task.request
    if not request.id or request.is_eager:
        return jobs
    keep_for = 2 * app.conf.broker_transport_options["visibility_timeout"]
    runs = app.ledger.count_run(f"{request.id}:{request.retries}", keep_for)
    if runs == 1 or not jobs:
        return jobs
    if len(jobs) > 1:
        log.warning("%d documents lost their worker child; sent on one a task", len(jobs))
        for job in jobs:
            submit([job], start=stages.next_stage(job))
        return []
    if runs <= app.settings.workers.max_retries + 1:
        return jobs
    job = jobs[0]
    stage = stages.next_stage(job)
    reason = (f"its worker died or was killed {runs - 1} times ({stage} on "
              f"{request.hostname}); the file may exceed workers.task_time_limit or "
              "workers.max_memory_per_child_mb")
    log.error("%s failed: %s", job.key, reason)
    stages.fail(job, stage, "timeout", reason)
    try:
        _log_finished(job, stages.finish(job, _context(task), app.outbox, keep_original=True))
    except OutboxError as exc:
        app.holding.hold([job], str(exc))
    return []


def _log_stage(job: Job, stage: str) -> None:
    error = job.error
    if error and error["stage"] == stage:
        log.info("%s %s failed: %s (%s)", job.key, stage, error["type"], error["message"])
    elif stage in job.timings_ms:
        log.debug("%s %s %s %.1f ms", job.key, stage, job.source.relpath,
                  job.timings_ms[stage])


def _finish_all(task: Task, jobs: list[Job]) -> int:
    """Write the documents' outbox folders; hold those the outbox refused.

    A document whose file its writer wrote on after the claim is not reported from the part
    read: it is claimed again and runs anew once its writer has been quiet. While documents
    are held, new ones join the end of their line: they go on in the order they came.
    """
    released: list[Job] = []
    fresh: list[Job] = []
    for job in jobs:
        if written_after_claim(job):
            if (again := app.intake.claim_again(job)) is not None:
                submit([again], countdown=app.settings.watcher.quiet_seconds)
        elif job.released:
            job.released = False
            released.append(job)
        else:
            fresh.append(job)
    if fresh and app.holding.count():
        app.holding.hold(fresh, None)
        fresh = []
    jobs = released + fresh
    outcomes = stages.finish_many(jobs, _context(task), app.outbox,
                                  keep_original=_keep_originals())
    finished = 0
    refused: list[Job] = []
    for job, outcome in zip(jobs, outcomes, strict=True):
        if isinstance(outcome, OutboxError):
            refused.append(job)
            continue
        _log_finished(job, outcome)
        finished += 1
    if refused:
        reason = next(str(o) for o in outcomes if isinstance(o, OutboxError))
        app.holding.hold(refused, reason)
    return finished


def _keep_originals() -> bool:
    return app.settings.watcher.on_success == "archive"


def _log_finished(job: Job, folder: Path) -> None:
    timings = " ".join(f"{stage} {ms:g}" for stage, ms in job.timings_ms.items())
    log.info("%s %s %s (ms: %s) -> %s", job.key, job.state, job.source.relpath, timings, folder)


# Two hops: a task of its own costs more than detect or analyze take (~0.1 ms), so each
# rides with the heavy stage beside it.
EXTRACT_STAGES: tuple[Stage, ...] = ("detect", "extract")
FINISH_STAGES: tuple[Stage, ...] = ("analyze", "thumbnail")


@app.task(bind=True, base=DocumentTask, name="docproc.extract")
def extract_task(self: Task, messages: list[Message]) -> list[Message]:
    """Detect each file's type and extract its text, pages and image facts."""
    with jobs_of(messages) as jobs:
        return to_messages(_run(self, jobs, EXTRACT_STAGES))


@app.task(bind=True, base=DocumentTask, name="docproc.finish")
def finish_task(self: Task, messages: list[Message]) -> int:
    """Analyze the text, make thumbnails and write each document's outbox folder, each alone."""
    with jobs_of(messages) as jobs:
        return _finish_all(self, _run(self, jobs, FINISH_STAGES))


def _fail_for_good(task: Task, job: Job, exc: BaseException) -> None:
    """Fail a document whose retries ran out, writing its failure if the outbox allows."""
    message = f"{type(exc).__name__}: {exc}"
    log.error("%s failed for good in %s: %s", job.key, task.name, message)
    if not job.error:
        stages.fail(job, task.name.rsplit(".", 1)[-1], "internal", message)
    try:
        _log_finished(job, stages.finish(job, _context(task), app.outbox,
                                         keep_original=_keep_originals()))
    except OutboxError as outbox_error:
        app.holding.hold([job], str(outbox_error))


@app.task(bind=True, name="docproc.reconcile", ignore_result=True, acks_late=False)
def reconcile_task(self: Task) -> dict[str, list[str]]:
    """Send again the documents no live worker holds; fail those that keep killing workers."""
    settings = app.settings
    if not app.ledger.lock("reconcile", RECONCILE_SECONDS * 0.9):
        return {"resent": [], "failed": []}
    def queued() -> set[str] | None:
        if not settings.broker.startswith("amqp"):
            return set().union(*(queued_keys(app.ledger.redis, queue)
                                 for queue in queues.DOCUMENT_QUEUES))
        # RabbitMQ cannot list its queues; empty ones at least say that nothing waits.
        with app.connection_for_write() as connection:
            for queue in queues.DOCUMENT_QUEUES:
                _, waiting, _ = connection.default_channel.queue_declare(queue, passive=True)
                if waiting:
                    return None
        return set()

    _release_held()
    reconciler = Reconciler(app.ledger, app.intake.resend, _give_up, settings.workers.max_retries,
                            app.holding.keys)
    outcome = reconciler.run_if_due(queued)
    if outcome is None:
        return {"resent": [], "failed": []}
    return {"resent": outcome.resent, "failed": outcome.failed}


def _release_held() -> None:
    """Send held documents on, in the order they came, once the outbox and spool take a write."""
    settings = app.settings

    def problem() -> str | None:
        return probe_writable(settings.outbox) or probe_writable(settings.spool_dir)

    def send(jobs: list[Job]) -> None:
        for stage_jobs in _by_next_stage(jobs):
            submit(stage_jobs, start=stages.next_stage(stage_jobs[0]))

    app.holding.release(problem, send)


def _by_next_stage(jobs: list[Job]) -> list[list[Job]]:
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        groups.setdefault(stages.next_stage(job), []).append(job)
    return list(groups.values())


def _give_up(record: dict[str, Any], reason: str) -> None:
    job = app.intake.job_for(record)
    stages.fail(job, record.get("stage") or "detect", "timeout", reason)
    ctx = StageContext(app.settings.pipeline, app.ledger, record.get("worker") or "reconciler")
    try:
        stages.finish(job, ctx, app.outbox, keep_original=True)
    except OutboxError as exc:
        app.holding.hold([job], str(exc))


def submit(jobs: list[Job], start: Stage = "detect", countdown: float | None = None) -> None:
    """Send a batch of jobs through the chain, from the task that runs the given stage on.

    Stages a job has already been through are not run again. With a countdown, the first
    task waits that many seconds.
    """
    # What Flower and `celery inspect` show as the arguments: the documents, not their jobs.
    shown = {"argsrepr": _describe(jobs), "kwargsrepr": "{}"}
    messages = to_messages(jobs)
    if start in EXTRACT_STAGES:
        chain(extract_task.s(messages).set(**shown), finish_task.s().set(**shown)).apply_async(
            countdown=countdown)
    else:
        finish_task.apply_async((messages,), countdown=countdown, **shown)


def _describe(jobs: list[Job]) -> str:
    keys = ", ".join(f"{job.key} {job.source.relpath}" for job in jobs[:8])
    more = f", … {len(jobs) - 8} more" if len(jobs) > 8 else ""
    noun = "document" if len(jobs) == 1 else "documents"
    return f"[{len(jobs)} {noun}: {keys}{more}]"
