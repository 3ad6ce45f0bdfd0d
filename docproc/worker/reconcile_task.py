"""The docproc.reconcile task: recovery's Celery glue, run by Beat every few seconds.

It wires the Reconciler to the app's ledger and the document tasks' `submit`; the held
documents go on from here too, once the outbox and spool take a write again.
"""

from __future__ import annotations

from typing import Any

from celery import Task

from docproc import stages
from docproc.app import app
from docproc.errors import OutboxError
from docproc.holding import probe_writable
from docproc.ledger.keyspace import RECONCILE_LOCK
from docproc.model import Job
from docproc.stages import StageContext
from docproc.tasks import intake, submit
from docproc.worker.reconcile import RECONCILE_SECONDS, Reconciler, queued_documents


@app.task(bind=True, name="docproc.reconcile", ignore_result=True, acks_late=False)
def reconcile_task(self: Task) -> dict[str, list[str]]:
    """Send again the documents no live worker holds; fail those that keep killing workers."""
    settings = app.settings
    if not app.ledger.lock(RECONCILE_LOCK, RECONCILE_SECONDS * 0.9):
        return {"resent": [], "failed": []}
    release_held()
    reconciler = Reconciler(app.ledger, intake().resend, give_up, settings.workers.max_retries,
                            app.holding.keys)
    outcome = reconciler.run_if_due(lambda: queued_documents(app, settings.broker,
                                                             app.ledger.redis))
    if outcome is None:
        return {"resent": [], "failed": []}
    return {"resent": outcome.resent, "failed": outcome.failed}


def release_held() -> None:
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


def give_up(record: dict[str, Any], reason: str) -> None:
    """Fail an orphaned document as `timeout`, its original kept; hold it if the outbox refuses."""
    job = intake().job_for(record)
    stages.fail(job, record.get("stage") or "detect", "timeout", reason)
    ctx = StageContext(app.settings.pipeline, app.ledger, record.get("worker") or "reconciler")
    try:
        stages.finish(job, ctx, app.outbox, keep_original=True)
    except OutboxError as exc:
        app.holding.hold([job], str(exc))
