"""The OCR tasks, on the docproc.ocr queue: page ranges read in parallel, and their join.

`tasks.submit(jobs, start="ocr")` sends a document with a few pages to read as one
`docproc.ocr` task; a bigger one as a chord whose `docproc.ocr_pages` tasks each read a
range into the work folder and whose callback, `docproc.ocr` again, joins the pages in
order. Either way `docproc.ocr` then sends the document on to the finish stages.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from celery import Task

from docproc.app import app
from docproc.model import Message, jobs_of, to_messages
from docproc.tasks import (
    DocumentTask,
    finish_task,
    log_finished,
    ocr_progress,
    run_stages,
    stage_context,
    submit,
)
from docproc.worker import crash_loop, ocr_pages

log = logging.getLogger("docproc.tasks")


def unique(messages: list[Message]) -> list[Message]:
    """Return one message per document: a chord's join gets one from each range task."""
    return list({message["key"]: message for message in messages}.values())


class OcrJoinTask(DocumentTask):
    """The join: a failure fails each document once, not once per range."""

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        super().on_failure(exc, task_id, (unique(args[0]), *args[1:]), kwargs, einfo)


@app.task(bind=True, base=DocumentTask, name="docproc.ocr_pages", ignore_result=False)
def ocr_pages_task(self: Task, messages: list[Message], indexes: list[int]) -> Message:
    """Read a range of a document's pages into its work folder; those already there are kept."""
    with jobs_of(messages) as jobs:
        for job in crash_loop.jobs_to_run(self, jobs, submit, stage_context, log_finished):
            # Shows who reads it now; a document finished meanwhile is not read again.
            finished = app.ledger.start_stage_many({job.key: json.dumps(job.progress)}, "ocr",
                                                   self.request.hostname or "local")
            if not finished:
                read = ocr_pages.read_range(job, app.settings.pipeline, indexes,
                                            ocr_progress(job))
                log.info("%s ocr pages %d-%d: %d read in process %d", job.key, indexes[0] + 1,
                         indexes[-1] + 1, read, os.getpid())
    return messages[0]


@app.task(bind=True, base=OcrJoinTask, name="docproc.ocr")
def ocr_task(self: Task, messages: list[Message]) -> int:
    """Read the pages still missing, join them in page order and send the document on."""
    with jobs_of(unique(messages)) as jobs:
        going = run_stages(self, jobs, ("ocr",))
        if going:
            finish_task.apply_async((to_messages(going),))
        return len(going)
