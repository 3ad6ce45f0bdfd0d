"""Bad input is contained: seeded mutants of corpus files each end done or failed, nothing hangs."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Daemon, reports, wait_until

MUTANTS = 300
SEED = 20261123


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


@pytest.mark.parametrize("broker", ["embedded"], indirect=True)
def test_mutants_through_the_workers(
    broker: dict[str, Any], make_config: Callable[..., Path],
    daemon: Callable[[Path], Daemon], corpus: Path, tmp_path: Path,
) -> None:
    config = make_config(**broker)
    settings = yaml.safe_load(config.read_text())
    inbox, outbox = Path(settings["inbox"]), Path(settings["outbox"])
    mutants = make_mutants(corpus, tmp_path / "mutants")
    run = daemon(config)
    worker = run.start("worker")
    run.start("watch")
    for mutant in mutants:
        mutant.rename(inbox / mutant.name)
    found = wait_until(lambda: len(reports(outbox)) >= MUTANTS and reports(outbox), 180,
                       interval=0.5, message=f"{MUTANTS} reports")
    assert sorted(r["source"]["name"] for r in found) == sorted(m.name for m in mutants)
    _check_outcomes(found)
    assert worker.poll() is None, "the worker died"
    assert "Traceback" not in run.log("worker")
