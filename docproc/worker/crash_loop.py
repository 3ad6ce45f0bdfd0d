"""Crash loops: a task message whose worker child died runs again, but not forever."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from celery import Task

from docproc import stages
from docproc.app import app
from docproc.errors import OutboxError
from docproc.model import Job
from docproc.stages import StageContext

# Logged under the name it had in docproc.tasks: log filters select it.
log = logging.getLogger("docproc.tasks")

Submit = Callable[..., None]


def jobs_to_run(
    task: Task,
    jobs: list[Job],
    submit: Submit,
    context: Callable[[Task], StageContext],
    log_finished: Callable[[Job, Path], None],
) -> list[Job]:
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
        log_finished(job, stages.finish(job, context(task), app.outbox, keep_original=True))
    except OutboxError as exc:
        app.holding.hold([job], str(exc))
    return []
