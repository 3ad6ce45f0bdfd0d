"""The document tasks: one thin task per hop of stages, and `submit` that sends jobs on."""

from __future__ import annotations

import functools
import json
import logging
import time
from pathlib import Path
from typing import Any

from celery import Task, chain, chord
from celery.exceptions import SoftTimeLimitExceeded
from kombu.exceptions import OperationalError as KombuOperationalError
from redis import RedisError

from docproc import stages
from docproc.app import app
from docproc.errors import OutboxError
from docproc.holding import is_infrastructure
from docproc.inbox.intake import Intake, written_after_claim
from docproc.model import Job, Message, Stage, from_messages, jobs_of, to_messages
from docproc.settings import PipelineSettings
from docproc.stages import StageContext
from docproc.worker import crash_loop, ocr_pages

log = logging.getLogger("docproc.tasks")
TRANSIENT = (OSError, RedisError)
INFRASTRUCTURE = (RedisError, KombuOperationalError, ConnectionError)


@functools.cache
def intake() -> Intake:
    """Return this process's Intake, which sends the documents it claims again with submit."""
    return Intake(app.settings, app.ledger, submit)


class DocumentTask(Task):
    """A stage task: retries transient errors, and fails the document when retries run out."""

    autoretry_for = TRANSIENT
    retry_backoff = True
    retry_backoff_max = 60
    acks_late = True

    @property
    def max_retries(self) -> int:
        # Read from the settings the app was configured with: the app knows no task.
        return app.settings.workers.max_retries

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


def stage_context(task: Task) -> StageContext:
    """Return what the stages of a task's run need: settings, ledger, worker, time limits."""
    limit = app.settings.workers.task_soft_time_limit
    return StageContext(app.settings.pipeline, app.ledger, task.request.hostname or "local",
                        interrupts=(SoftTimeLimitExceeded,),
                        timeout_message=stages.timeout_message(limit),
                        functions={"ocr": read_and_join})


def read_and_join(job: Job, settings: PipelineSettings) -> None:
    """Read a job's pages not yet in its work folder, then join them all into its text."""
    progress = ocr_progress(job)
    ocr_pages.read_range(job, settings, job.ocr_pages, progress)
    pages = ocr_pages.collected(job)
    # Range tasks in parallel may have left a count one behind: the join's is final.
    progress(0, len(pages), len(job.ocr_pages))
    stages.join_ocr(job, settings, pages)


def ocr_progress(job: Job) -> ocr_pages.Progress:
    """Return what records, after each page read, the totals and the document's pages done."""
    return functools.partial(app.ledger.count_ocr_pages, job.key)


def run_stages(task: Task, jobs: list[Job], stages_of_task: tuple[Stage, ...]) -> list[Job]:
    """Run a task's stages over a batch; send on what a time limit cut off; pass on the rest."""
    jobs = crash_loop.jobs_to_run(task, jobs, submit, stage_context, log_finished)
    for stage in stages_of_task:
        going: list[Job] = []
        deferred: list[Job] = []
        held: list[Job] = []
        for job in stages.run_stage(jobs, stage, stage_context(task)):
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
            if (again := intake().claim_again(job)) is not None:
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
    outcomes = stages.finish_many(jobs, stage_context(task), app.outbox,
                                  keep_original=_keep_originals())
    finished = 0
    refused: list[Job] = []
    for job, outcome in zip(jobs, outcomes, strict=True):
        if isinstance(outcome, OutboxError):
            refused.append(job)
            continue
        log_finished(job, outcome)
        finished += 1
    if refused:
        reason = next(str(o) for o in outcomes if isinstance(o, OutboxError))
        app.holding.hold(refused, reason)
    return finished


def _keep_originals() -> bool:
    return app.settings.watcher.on_success == "archive"


def log_finished(job: Job, folder: Path) -> None:
    """Log a document's end, its stage timings and its outbox folder, in one line."""
    timings = " ".join(f"{stage} {ms:g}" for stage, ms in job.timings_ms.items())
    log.info("%s %s %s (ms: %s) -> %s", job.key, job.state, job.source.relpath, timings, folder)


# Two hops: a task of its own costs more than detect or analyze take (~0.1 ms), so each
# rides with the heavy stage beside it. Documents with pages to read go from extract to the
# OCR queue instead, and from there to finish.
EXTRACT_STAGES: tuple[Stage, ...] = ("detect", "extract")
# ocr stays for messages sent before the OCR queue existed: finish reads their pages itself.
FINISH_STAGES: tuple[Stage, ...] = ("ocr", "analyze", "thumbnail")


@app.task(bind=True, base=DocumentTask, name="docproc.extract")
def extract_task(self: Task, messages: list[Message]) -> list[Message]:
    """Detect each file's type and extract its text; send documents with pages to read to OCR."""
    with jobs_of(messages) as jobs:
        going = run_stages(self, jobs, EXTRACT_STAGES)
    scans = [job for job in going if stages.next_stage(job) == "ocr"]
    if scans:
        submit(scans, start="ocr")
    return to_messages([job for job in going if stages.next_stage(job) != "ocr"])


@app.task(bind=True, base=DocumentTask, name="docproc.finish")
def finish_task(self: Task, messages: list[Message]) -> int:
    """Analyze the text, make thumbnails and write each document's outbox folder, each alone."""
    with jobs_of(messages) as jobs:
        return _finish_all(self, run_stages(self, jobs, FINISH_STAGES))


def _fail_for_good(task: Task, job: Job, exc: BaseException) -> None:
    """Fail a document whose retries ran out, writing its failure if the outbox allows."""
    message = f"{type(exc).__name__}: {exc}"
    log.error("%s failed for good in %s: %s", job.key, task.name, message)
    if not job.error:
        stages.fail(job, task.name.rsplit(".", 1)[-1], "internal", message)
    try:
        log_finished(job, stages.finish(job, stage_context(task), app.outbox,
                                         keep_original=_keep_originals()))
    except OutboxError as outbox_error:
        app.holding.hold([job], str(outbox_error))


def submit(jobs: list[Job], start: Stage = "detect", countdown: float | None = None) -> None:
    """Send a batch of jobs through the chain, from the task that runs the given stage on.

    Stages a job has already been through are not run again. With a countdown, the first
    task waits that many seconds.
    """
    # What Flower and `celery inspect` show as the arguments: the documents, not their jobs.
    shown = {"argsrepr": _describe(jobs), "kwargsrepr": "{}"}
    messages = to_messages(jobs)
    if start == "ocr":
        for job in jobs:
            _send_to_ocr(job, countdown)
    elif start in EXTRACT_STAGES:
        chain(extract_task.s(messages).set(**shown), finish_task.s().set(**shown)).apply_async(
            countdown=countdown)
    else:
        finish_task.apply_async((messages,), countdown=countdown, **shown)


def _describe(jobs: list[Job]) -> str:
    keys = ", ".join(f"{job.key} {job.source.relpath}" for job in jobs[:8])
    more = f", … {len(jobs) - 8} more" if len(jobs) > 8 else ""
    noun = "document" if len(jobs) == 1 else "documents"
    return f"[{len(jobs)} {noun}: {keys}{more}]"


def _send_to_ocr(job: Job, countdown: float | None) -> None:
    """Send a job to the OCR queue: one task, or a chord of page ranges for a big scan."""
    job.progress.setdefault("ocr", {"started": round(time.time(), 3)})
    # Waiting in the OCR queue until a range task names the worker reading it.
    if app.ledger.start_stage_many({job.key: json.dumps(job.progress)}, "ocr", "docproc.ocr"):
        return  # finished meanwhile (a late redelivery)
    app.ledger.count_ocr_pages(job.key, 0, len(ocr_pages.pages_done(job)), len(job.ocr_pages))
    shown = {"argsrepr": _describe([job]), "kwargsrepr": "{}"}
    ranges = ocr_pages.ranges(job.ocr_pages)
    join = app.signature("docproc.ocr", **shown)
    if len(ranges) == 1:
        join.apply_async(([job.to_message()],), countdown=countdown)
        return
    # Each range task returns the job's message: the join gets them all as its first argument,
    # where the heartbeat and the reconciler look for the documents a task carries.
    header = [app.signature("docproc.ocr_pages", args=([job.to_message()], pages), **shown)
              for pages in ranges]
    chord(header)(join)

