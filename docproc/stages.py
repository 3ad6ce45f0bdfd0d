"""A document's way through the stages, as a job (docproc.model) passed from stage to stage.

Stages call the pure pipeline functions, record progress in the ledger and turn a
`DocumentError` into the job's error; `finish` writes the outbox folder. Celery tasks
and `docproc process` both drive documents through these functions.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from docproc.errors import DocumentError, ErrorType, OutboxError
from docproc.holding import is_infrastructure
from docproc.ledger.interface import DocumentLedger
from docproc.ledger.model import ClaimInfo, Ending, Receipt
from docproc.model import STAGES, FileTypeInfo, Job, Source, Stage, State, printable
from docproc.outbox import Outbox, Outputs
from docproc.pipeline import FileType, analyze, detect, extract, make_thumbnail, ocr
from docproc.report import build, ms_since
from docproc.report import read as read_report
from docproc.settings import PipelineSettings

log = logging.getLogger("docproc.stages")


@dataclass(frozen=True)
class StageContext:
    """What a stage needs besides the job: pipeline settings, the ledger and who runs it."""

    pipeline: PipelineSettings
    ledger: DocumentLedger
    worker: str
    # Exceptions that end a stage from outside (a time limit): never a verdict on the document.
    interrupts: tuple[type[BaseException], ...] = ()
    timeout_message: str = "{stage} ran past its time limit; the file may be pathological"
    # A stage run otherwise here: Celery's ocr reads pages into files and joins those.
    functions: dict[Stage, Callable[[Job, PipelineSettings], None]] = field(default_factory=dict)


def new_job(
    claim: ClaimInfo, receipt: Receipt, source: Path, work_dir: Path, keep_source: bool = False,
    received_ts: float | None = None,
) -> Job:
    """Return the job that carries a claimed file through the stages."""
    return Job(
        key=receipt.key, id=claim.sha256[:12], token=claim.token, source_path=str(source),
        work_dir=str(work_dir), received_ts=time.time() if received_ts is None else received_ts,
        source=Source(raw_name=claim.name, relpath=printable(claim.relpath), bytes=claim.bytes,
                      sha256=claim.sha256, received_at=claim.received_at),
        keep_source=keep_source, claimed_mtime_ns=claim.mtime_ns, incomplete=claim.incomplete,
        duplicate_of=receipt.duplicate_of,
    )


def file_type(job: Job) -> FileType:
    """Return the file type detect found for a job."""
    assert job.type is not None, "detect runs first"
    return FileType(mime=job.type["mime"], kind=job.type["kind"])


def _detect(job: Job, settings: PipelineSettings) -> None:
    size = job.source.bytes
    limit = settings.max_file_mb * 1024 * 1024
    if size > limit:
        raise DocumentError(
            "too_large",
            f"the file has {size / 1048576:.1f} MB, more than pipeline.max_file_mb "
            f"({settings.max_file_mb:g}); split it or raise the limit",
        )
    found = detect(Path(job.source_path))
    job.type = FileTypeInfo(mime=found.mime, kind=found.kind, encrypted=False)
    if job.incomplete:
        raise DocumentError("truncated", f"its writer never finished it: {job.incomplete}")


def _extract(job: Job, settings: PipelineSettings) -> None:
    result = extract(Path(job.source_path), file_type(job),
                     max_image_pixels=settings.max_image_pixels)
    text_path = Path(job.work_dir) / "text.txt"
    text_path.parent.mkdir(parents=True, exist_ok=True)
    text_path.write_text(result.text, encoding="utf-8", errors="replace")
    assert job.type is not None, "detect runs first"
    job.type["encrypted"] = result.encrypted
    job.pages = result.pages
    job.image = result.image.to_dict() if result.image else None
    job.text = {"path": "text.txt", "chars": len(result.text), "words": 0, "ocr": False}
    frames = result.image.frames if result.image else 0
    job.ocr_pages = ocr.pages_to_read(file_type(job), result.text.split(ocr.PAGE_SEPARATOR),
                                      frames, settings.ocr)
    if job.type["mime"] == "image/tiff" and len(job.ocr_pages) > 1:
        job.pages = len(job.ocr_pages)


def ocr_options(settings: PipelineSettings) -> ocr.OcrOptions:
    """Return how the pipeline's settings ask pages to be read."""
    return ocr.OcrOptions(languages=tuple(settings.ocr_languages), dpi=settings.ocr_dpi,
                          tessdata=settings.tessdata)


def _ocr(job: Job, settings: PipelineSettings) -> None:
    read = list(ocr.read_pages(Path(job.source_path), file_type(job), job.ocr_pages,
                               ocr_options(settings), settings.max_image_pixels))
    join_ocr(job, settings, read)


def join_ocr(job: Job, settings: PipelineSettings, read: list[ocr.PageText]) -> None:
    """Put the pages read by OCR into the job's text, in page order, with their summary."""
    text_path = Path(job.work_dir) / "text.txt"
    layer = text_path.read_text(encoding="utf-8")
    pages = job.pages or max((page.index + 1 for page in read), default=1)
    text = ocr.merge(layer.split(ocr.PAGE_SEPARATOR) if layer else [], read, pages)
    text_path.write_text(text, encoding="utf-8", errors="replace")
    assert job.text is not None, "extract runs first"
    read_ok = [page for page in read if page.read]
    confidences = [page.confidence for page in read_ok if page.confidence is not None]
    job.text["chars"] = len(text)
    job.text["ocr"] = any(page.text.strip() for page in read_ok)
    job.ocr = {
        "engine": ocr.ENGINE, "languages": list(settings.ocr_languages), "pages": len(read_ok),
        "mean_confidence": round(sum(confidences) / len(confidences), 1) if confidences else None,
        "seconds": round(sum(page.seconds for page in read), 3),
    }
    job.warnings.extend(page.warning for page in read if page.warning)


def _analyze(job: Job, settings: PipelineSettings) -> None:
    text_path = Path(job.work_dir) / "text.txt"
    text = text_path.read_text(encoding="utf-8")
    result = analyze(text, settings.keywords)
    assert job.text is not None, "extract runs first"
    job.text["chars"], job.text["words"] = result.chars, result.words
    job.analysis = {"keywords": result.keywords, "language": result.language}


def _thumbnail(job: Job, settings: PipelineSettings) -> None:
    target = Path(job.work_dir) / "thumbnail.png"
    try:
        size = make_thumbnail(
            Path(job.source_path), file_type(job), settings.thumbnail_size, target,
            max_image_pixels=settings.max_image_pixels,
        )
    except DocumentError as exc:
        # Text and facts were extracted: the document is done, only without a picture.
        log.warning("%s: no thumbnail: %s", job.key, exc.message)
        size = None
    if size is not None:
        job.thumbnail = {"path": "thumbnail.png", "width": size[0], "height": size[1]}


STAGE_FUNCTIONS: dict[Stage, Callable[[Job, PipelineSettings], None]] = {
    "detect": _detect, "extract": _extract, "ocr": _ocr, "analyze": _analyze,
    "thumbnail": _thumbnail,
}


def run_stage(jobs: list[Job], stage: Stage, ctx: StageContext) -> list[Job]:
    """Run one stage of each job still going, recording progress in one ledger round trip.

    A job that a redelivery finished elsewhere is marked `finished`. When a time limit
    interrupts the stage, the job it was on fails as `timeout` and the jobs not yet run
    are marked `deferred`, for the caller to send on again. A job whose stage could not
    write the spool is marked `held` with the reason, for the caller to hold.
    """
    going = [job for job in jobs if _goes_through(job, stage)]
    if not going:
        return jobs
    started = round(time.time(), 3)
    for job in going:
        # OCR started before this task (its pages read in parallel, by range) keeps its start.
        earlier = job.progress.get(stage, {}).get("started") if stage == "ocr" else None
        job.progress[stage] = {"started": earlier or started}
    finished = ctx.ledger.start_stage_many(
        {job.key: json.dumps(job.progress) for job in going}, stage, ctx.worker)
    for index, job in enumerate(going):
        if job.key in finished:
            job.finished = True
            continue
        try:
            _run_one(job, stage, ctx)
        except ctx.interrupts:
            fail(job, stage, "timeout", ctx.timeout_message.format(stage=stage))
            for later in going[index + 1:]:
                later.deferred = True
            break
    return jobs


def next_stage(job: Job) -> Stage:
    """Return the first stage a job has not been through (the last, when it has all)."""
    if job.error:
        return STAGES[-1]
    return next((stage for stage in STAGES
                 if stage not in job.timings_ms and not _skips(job, stage)), STAGES[-1])


def _skips(job: Job, stage: Stage) -> bool:
    """Return True for a stage this job has nothing to do in (ocr, without pages to read)."""
    return stage == "ocr" and "extract" in job.timings_ms and not job.ocr_pages


def _goes_through(job: Job, stage: Stage) -> bool:
    return not (job.finished or job.deferred or job.held or job.error
                or stage in job.timings_ms or _skips(job, stage)
                or (job.duplicate_of and stage != "detect"))


def _run_one(job: Job, stage: Stage, ctx: StageContext) -> None:
    if stage == "detect":
        job.timings_ms["wait"] = ms_since(job.received_ts)
    started = time.perf_counter()
    try:
        ctx.functions.get(stage, STAGE_FUNCTIONS[stage])(job, ctx.pipeline)
    except DocumentError as exc:
        if isinstance(exc.__cause__, ctx.interrupts):
            raise exc.__cause__ from None
        fail(job, stage, exc.type, exc.message)
    except FileNotFoundError as exc:
        fail(job, stage, "internal", f"the claimed file vanished from the spool ({exc.filename}); "
             "look for it in the outbox, or drop it again")
    except MemoryError:
        fail(job, stage, "too_large", f"{stage} needed more memory than "
             "workers.max_memory_per_child_mb allows; raise it or split the file")
    except OSError as exc:
        if not is_infrastructure(exc):
            raise
        # The spool cannot be written (a full state disk): not the document's fault.
        job.held = f"{stage}: {exc.strerror or exc} ({exc.filename})"
        return
    ended = time.time()
    seconds = time.perf_counter() - started
    if stage == "ocr":
        # From the stage's first start: its pages may have been read by earlier tasks.
        seconds = max(seconds, ended - job.progress[stage]["started"])
    job.timings_ms[stage] = round(seconds * 1000, 1)
    job.progress[stage]["ended"] = round(ended, 3)


def timeout_message(limit: float) -> str:
    """Return the failure message of a stage that ran past the soft time limit."""
    return (f"{{stage}} took longer than workers.task_soft_time_limit ({limit:g} s); "
            "the file may be pathological, or raise the limit")


def fail(job: Job, stage: str, error_type: ErrorType, message: str) -> Job:
    """Mark a job failed in a stage with a typed reason."""
    job.error = {"stage": stage, "type": error_type, "message": message}
    return job


def finish(job: Job, ctx: StageContext, outbox: Outbox, keep_original: bool) -> Path:
    """Write the job's outbox folder once, record its end state, and clean the spool."""
    [outcome] = finish_many([job], ctx, outbox, keep_original)
    if isinstance(outcome, OutboxError):
        raise outcome
    return outcome


def finish_many(
    jobs: list[Job], ctx: StageContext, outbox: Outbox, keep_original: bool
) -> list[Path | OutboxError]:
    """Write each job's outbox folder once; record the end states in one ledger round trip.

    Returns each job's folder, or the OutboxError that kept it from being written (that
    job stays unfinished, its original in the spool).
    """
    outcomes: list[Path | OutboxError] = []
    endings: list[Ending] = []
    for job in jobs:
        try:
            folder, ending = _write_folder(job, ctx.worker, outbox, keep_original)
        except OutboxError as exc:
            outcomes.append(exc)
            continue
        except OSError as exc:
            if not is_infrastructure(exc):
                raise
            # Reading what an earlier run wrote failed: the outbox is away as much.
            outcomes.append(OutboxError(exc.errno, f"cannot read {exc.filename}: {exc.strerror}"))
            continue
        outcomes.append(folder)
        endings.append(ending)
    ctx.ledger.finish_many(endings)
    for job, outcome in zip(jobs, outcomes, strict=True):
        if not isinstance(outcome, OutboxError):
            _clean(job)
    return outcomes


def _write_folder(
    job: Job, worker: str, outbox: Outbox, keep_original: bool
) -> tuple[Path, Ending]:
    """Write the job's outbox folder, or find the one an earlier run wrote; say how it ended."""
    progress = json.dumps(job.progress)
    written = outbox.find(job.source.received_at, job.source.raw_name, job.key)
    if written is not None:
        # An earlier run wrote the folder but the ledger lost its end (a broker restart).
        earlier = read_report(written)
        return written, Ending(job.key, earlier.status, str(written), earlier.error_type,
                               progress, earlier.kind)
    status = job.state
    report = build(job, worker)
    work = Path(job.work_dir)
    done = status == State.DONE
    source = Path(job.source_path)
    outputs = Outputs(
        text=work / "text.txt" if done else None,
        thumbnail=work / "thumbnail.png" if done and job.thumbnail else None,
        original=source if (keep_original or not done) and source.exists() else None,
        original_name=job.source.raw_name,
    )
    folder = outbox.folder(status, job.source.received_at, job.source.raw_name, job.key)
    outbox.write(folder, report, outputs)
    return folder, Ending(job.key, status, str(folder), report.error_type, progress, report.kind)


def _clean(job: Job) -> None:
    shutil.rmtree(job.work_dir, ignore_errors=True)
    if not job.keep_source:
        Path(job.source_path).unlink(missing_ok=True)
        Path(job.source_path).with_suffix(".claim.json").unlink(missing_ok=True)
