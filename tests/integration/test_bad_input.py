"""Bad input is contained: seeded mutants of corpus files each end done or failed, nothing hangs."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import Daemon, broker_name, reports, wait_until

MUTANTS = 300
SEED = 20261123
# Through the workers, all 300 mutants go through the embedded broker; the other brokers of
# the matrix get the first 60 of the same seeded sequence, which cover every kind of mutation
# and source type while keeping the matrix's wall time sane.
MUTANTS_PER_BROKER = {"embedded": MUTANTS, "redis": 60, "rabbitmq": 60}


def _mutate(data: bytes, donor: bytes, rng: random.Random) -> bytes:
    kind = rng.choice(["flip", "truncate", "splice", "zero-run"])
    buffer = bytearray(data)
    if kind == "flip":
        for _ in range(rng.randint(1, 40)):
            position = rng.randrange(len(buffer))
            buffer[position] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del buffer[rng.randint(1, max(1, len(buffer) - 1)):]
    elif kind == "splice":
        cut = rng.randint(0, min(len(donor), 4096))
        buffer = bytearray(donor[:cut]) + buffer[cut:]
    else:
        start = rng.randrange(len(buffer))
        buffer[start:start + rng.randint(16, 4096)] = bytes(rng.randint(16, 4096))
    return bytes(buffer)


def make_mutants(corpus: Path, folder: Path, count: int = MUTANTS, seed: int = SEED) -> list[Path]:
    """Write count seeded mutants of small corpus PDFs and images; return their paths."""
    rng = random.Random(seed)
    sources = sorted(
        p for sub in ("pdf", "images") for p in (corpus / sub).iterdir()
        if p.suffix.lower() in {".pdf", ".jpg", ".png", ".gif", ".tif", ".tiff", ".webp", ".bmp"}
        and p.stat().st_size < 400_000
    )
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for number in range(count):
        source, donor = rng.choice(sources), rng.choice(sources)
        mutant = _mutate(source.read_bytes(), donor.read_bytes(), rng)
        # A unique tail keeps every mutant distinct, so none is a duplicate.
        target = folder / f"mutant-{number:03d}{source.suffix}"
        target.write_bytes(mutant + number.to_bytes(4, "big"))
        made.append(target)
    return made


def _check_outcomes(found: list[dict[str, Any]]) -> None:
    statuses = {report["status"] for report in found}
    assert statuses <= {"done", "failed"}
    for report in found:
        if report["status"] == "failed":
            assert report["error"]["type"] in {"corrupt", "unsupported_type", "too_large",
                                               "encrypted", "empty", "timeout"}, report["error"]
            assert report["error"]["message"]


def test_mutants_through_docproc_process(corpus: Path, tmp_path: Path) -> None:
    mutants = make_mutants(corpus, tmp_path / "mutants")
    outbox = tmp_path / "outbox"
    config = tmp_path / "docproc.yaml"
    config.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state")}))
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "docproc", "--config", str(config), "process", "--jobs", "2",
         str(tmp_path / "mutants"), "--outbox", str(outbox)],
        capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    found = reports(outbox)
    assert sorted(r["source"]["name"] for r in found) == sorted(m.name for m in mutants)
    _check_outcomes(found)
    print(f"\n{len(found)} mutants in {time.monotonic() - started:.1f} s through docproc process: "
          f"{sum(r['status'] == 'failed' for r in found)} failed")


def test_mutants_through_the_workers(
    broker: dict[str, Any], make_config: Callable[..., Path],
    daemon: Callable[[Path], Daemon], corpus: Path, tmp_path: Path,
) -> None:
    config = make_config(**broker)
    settings = yaml.safe_load(config.read_text())
    inbox, outbox = Path(settings["inbox"]), Path(settings["outbox"])
    count = MUTANTS_PER_BROKER[broker_name(broker)]
    mutants = make_mutants(corpus, tmp_path / "mutants", count)
    run = daemon(config)
    worker = run.start("worker")
    run.start("watch")
    for mutant in mutants:
        mutant.rename(inbox / mutant.name)
    found = wait_until(lambda: len(reports(outbox)) >= count and reports(outbox), 180,
                       interval=0.5, message=f"{count} reports")
    assert sorted(r["source"]["name"] for r in found) == sorted(m.name for m in mutants)
    _check_outcomes(found)
    assert worker.poll() is None, "the worker died"
    assert "Traceback" not in run.log("worker")


def _start(config: Path, daemon: Callable[[Path], Daemon]) -> tuple[Daemon, Path, Path]:
    settings = yaml.safe_load(config.read_text())
    run = daemon(config)
    run.start("worker")
    run.start("watch")
    return run, Path(settings["inbox"]), Path(settings["outbox"])


def test_awkward_names_and_oversized_files(
    broker: dict[str, Any], make_config: Callable[..., Path],
    daemon: Callable[[Path], Daemon], corpus: Path,
) -> None:
    config = make_config(**broker, pipeline={"max_file_mb": 0.05})
    _, inbox, outbox = _start(config, daemon)
    names = ["with spaces.txt", "line\nbreak.txt", "x" * 246 + ".txt", "caf\udce9-latin1.txt"]
    for number, name in enumerate(names):
        (inbox / name).write_text(f"document number {number} about awkward names\n")
    big = corpus / "pdf" / "009-pdflatex-geotopo_GeoTopo-komprimiert.pdf"
    (inbox / "big.pdf").write_bytes(big.read_bytes())
    found = wait_until(lambda: len(reports(outbox)) >= len(names) + 1 and reports(outbox), 60,
                       message="a report for each file")
    by_name = {report["source"]["name"]: report for report in found}
    assert by_name["big.pdf"]["status"] == "failed"
    assert by_name["big.pdf"]["error"]["type"] == "too_large"
    assert "max_file_mb" in by_name["big.pdf"]["error"]["message"]
    for name in names:
        shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        report = by_name[shown]
        assert report["status"] == "done", report
        assert (report["_folder"] / "original" / name).exists()


def test_a_broken_outbox_holds_the_document_until_it_is_mended(
    broker: dict[str, Any], make_config: Callable[..., Path], daemon: Callable[[Path], Daemon],
) -> None:
    # Not the document's fault: it must neither fail nor be lost, and go on by itself.
    from docproc.broker import redis_client
    from docproc.holding import Holding
    from docproc.settings import load_settings

    config = make_config(**broker, workers={"max_retries": 1})
    holding = Holding(redis_client(load_settings(config, environ={})))
    settings = yaml.safe_load(config.read_text())
    outbox = Path(settings["outbox"])
    outbox.mkdir()
    (outbox / "documents").write_text("a file where the documents folder should be")
    run, inbox, _ = _start(config, daemon)
    run.start("beat")
    (inbox / "memo.txt").write_text("the outbox cannot take this\n")
    wait_until(lambda: holding.count() == 1, 60, message="the document held")
    assert "Not a directory" in (holding.state().reason or "")
    assert reports(outbox) == []
    (outbox / "documents").unlink()
    [report] = wait_until(lambda: reports(outbox), 60, message="the report once mended")
    assert report["status"] == "done" and report["source"]["name"] == "memo.txt"
    assert (report["_folder"] / "original" / "memo.txt").read_text() == (
        "the outbox cannot take this\n")


# Time limits that cut into the decoding of _slow_image.
TIME_LIMITED = {"task_soft_time_limit": 0.2, "task_time_limit": 0.4, "max_retries": 1}


def _slow_image(path: Path) -> None:
    """Write an image under the bomb limit that takes seconds to decode (80 million pixels)."""
    from PIL import Image

    Image.new("RGB", (9000, 9000), (200, 30, 30)).save(path, format="PNG", compress_level=1)


def test_a_document_slower_than_the_time_limit_fails_as_timeout(
    broker: dict[str, Any], make_config: Callable[..., Path],
    daemon: Callable[[Path], Daemon], tmp_path: Path,
) -> None:
    config = make_config(**broker, workers=TIME_LIMITED)
    run, inbox, outbox = _start(config, daemon)
    _slow_image(tmp_path / "huge.png")
    (tmp_path / "huge.png").rename(inbox / "huge.png")
    (inbox / "after.txt").write_text("a small file after the slow one\n")
    found = wait_until(lambda: len(reports(outbox)) >= 2 and reports(outbox), 90,
                       message="both reports")
    by_name = {report["source"]["name"]: report for report in found}
    assert by_name["huge.png"]["status"] == "failed"
    assert by_name["huge.png"]["error"]["type"] == "timeout"
    assert by_name["after.txt"]["status"] == "done"
    assert run.processes["worker"].poll() is None


SUBMIT_AS_ONE_TASK = """
import sys
from docproc.broker import redis_client
from docproc.inbox.intake import Intake
from docproc.ledger.redis_ledger import RedisLedger
from docproc.settings import load_settings
from docproc.app import configure
from docproc.tasks import submit
from docproc.inbox.spool import claim

settings = load_settings(sys.argv[1], environ={})
claims = [claim(settings.inbox / name, settings.inbox, settings.spool_dir)
          for name in ("huge.png", "after.txt")]
jobs = []
configure(settings)
intake = Intake(settings, RedisLedger(redis_client(settings)), jobs.extend)
intake.pending.extend(claimed for claimed in claims if claimed is not None)
intake.flush()
submit(jobs)  # one task for both: the time limit cuts it in the middle
"""


def test_a_time_limit_in_a_batch_fails_the_slow_document_and_sends_on_the_rest(
    broker: dict[str, Any], make_config: Callable[..., Path],
    daemon: Callable[[Path], Daemon], tmp_path: Path,
) -> None:
    from docproc.settings import load_settings

    config = make_config(**broker, workers=TIME_LIMITED)
    settings = load_settings(config, environ={})
    run = daemon(config)
    run.start("worker")
    settings.inbox.mkdir(parents=True, exist_ok=True)
    _slow_image(settings.inbox / "huge.png")
    (settings.inbox / "after.txt").write_text("sent on after the slow one in its batch\n")
    # In a process of its own: Celery's app keeps its first broker connection for good.
    sent = subprocess.run([sys.executable, "-c", SUBMIT_AS_ONE_TASK, str(config)],
                          capture_output=True, text=True, timeout=60)
    assert sent.returncode == 0, sent.stderr[-2000:]

    found = wait_until(lambda: len(reports(settings.outbox)) >= 2 and reports(settings.outbox),
                       90, message="both reports")
    by_name = {report["source"]["name"]: report for report in found}
    assert (by_name["huge.png"]["status"], by_name["huge.png"]["error"]["type"]) == (
        "failed", "timeout")
    assert by_name["after.txt"]["status"] == "done"
    assert by_name["after.txt"]["text"]["words"] == 9
    assert run.processes["worker"].poll() is None
