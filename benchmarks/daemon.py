"""Run docproc as an operator does: a config in a temp folder, `docproc up` or one component."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from benchmarks.common import DOCPROC, BenchError, clean_env, wait_until
from benchmarks.procs import (
    Started,
    all_processes,
    cmdline,
    descendants,
    proc_info,
    start,
    status_kb,
    stop,
    tree_cpu,
)
from docproc.ledger.redis_ledger import RedisLedger

HEALTHY_TIMEOUT = 90.0
SECTIONS = ("documents", "failed")


@dataclass(frozen=True)
class Site:
    """The folders and config file of one docproc instance under the benchmark's temp root."""

    root: Path

    @property
    def inbox(self) -> Path:
        return self.root / "in"

    @property
    def outbox(self) -> Path:
        return self.root / "out"

    @property
    def state(self) -> Path:
        return self.root / "st"

    @property
    def beside(self) -> Path:
        """Return a folder next to the inbox, on its filesystem, where files are written whole."""
        return self.root / "beside"

    @property
    def config(self) -> Path:
        return self.root / "docproc.yaml"

    @property
    def spool(self) -> Path:
        return self.state / "spool"

    def command(self, *args: str) -> list[str]:
        """Return the docproc command line of this instance."""
        return [str(DOCPROC), "--config", str(self.config), *args]


# The throughput, latency and scale parts measure the pipeline without OCR, as before OCR
# existed (issue #14): their corpus has photos and image-only PDFs that `ocr: auto` would read.
NO_OCR: dict[str, Any] = {"ocr": "off"}


def make_site(root: Path, mode: str = "events", port: int = 8750,
              pipeline: dict[str, Any] | None = None, workers: dict[str, Any] | None = None,
              **watcher: Any) -> Site:
    """Create the folders and write the config of an instance on the embedded broker.

    pipeline and workers are those config sections (default: OCR off, workers' defaults).
    """
    site = Site(root)
    for folder in (site.inbox, site.outbox, site.state):
        folder.mkdir(parents=True, exist_ok=True)
    config = {
        "inbox": str(site.inbox), "outbox": str(site.outbox), "state_dir": str(site.state),
        "broker_url": "embedded",
        "watcher": {"mode": mode, **watcher},
        "status_api": {"host": "127.0.0.1", "port": port},
        "pipeline": NO_OCR if pipeline is None else pipeline,
        **({"workers": workers} if workers else {}),
    }
    site.config.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML
    return site


def http_status(url: str) -> int:
    """Return the HTTP status of a GET, or 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _wait_healthy(proc: Started, port: int) -> None:
    url = f"http://127.0.0.1:{port}/healthz"

    def healthy() -> bool:
        proc.check_alive()
        return http_status(url) == 200

    try:
        wait_until(healthy, HEALTHY_TIMEOUT, f"{url} to answer 200", interval=0.2)
    except (BenchError, RuntimeError) as exc:
        raise BenchError(f"docproc up did not become healthy: {exc}\n{proc.log_tail()}") from None


@contextlib.contextmanager
def running_up(site: Site, port: int) -> Iterator[Started]:
    """Run `docproc up` until /healthz answers 200; stop it with SIGINT on leaving."""
    proc = start("docproc up", site.command("up"), site.root / "up.log", clean_env())
    try:
        _wait_healthy(proc, port)
        yield proc
    finally:
        stop(proc, signal.SIGINT, timeout=25)


@contextlib.contextmanager
def running(site: Site, command: str) -> Iterator[Started]:
    """Run one docproc component (`broker`, `watch`…); stop it with SIGTERM on leaving."""
    proc = start(f"docproc {command}", site.command(command), site.root / f"{command}.log",
                 clean_env())
    try:
        yield proc
    finally:
        stop(proc, signal.SIGTERM, timeout=15)


def ledger(site: Site) -> RedisLedger:
    """Return the ledger of the instance, on its embedded broker's unix socket."""
    client = redis.Redis(unix_socket_path=str(site.state / "valkey.sock"),
                         decode_responses=True, socket_timeout=10)
    return RedisLedger(client)


def wait_for_ledger(site: Site, broker: Started, timeout: float = 30.0) -> RedisLedger:
    """Wait until the embedded broker answers; return the ledger on it."""
    book = ledger(site)

    def answers() -> bool:
        broker.check_alive()
        try:
            return bool(book.redis.ping())
        except redis.RedisError:
            return False

    try:
        wait_until(answers, timeout, "the embedded broker to answer", interval=0.1)
    except RuntimeError as exc:
        raise BenchError(str(exc)) from None
    return book


def wait_for_log(proc: Started, text: str, timeout: float) -> None:
    """Wait until text appears in the process's log."""
    def logged() -> bool:
        proc.check_alive()
        return text in proc.log_path.read_text(errors="replace")

    try:
        wait_until(logged, timeout, f"{proc.name} to log {text!r}", interval=0.1)
    except (BenchError, RuntimeError) as exc:
        raise BenchError(f"{exc}\n{proc.log_tail()}") from None


def count_reports(outbox: Path) -> int:
    """Return how many document folders (each holding its report.json) the outbox has."""
    total = 0
    for section in SECTIONS:
        try:
            days = os.scandir(outbox / section)
        except FileNotFoundError:
            continue
        with days:
            for day in days:
                total += sum(1 for entry in os.scandir(day.path) if not entry.name.startswith("."))
    return total


def read_reports(outbox: Path) -> list[dict[str, Any]]:
    """Return every report.json in the outbox."""
    return [
        json.loads(path.read_text())
        for section in SECTIONS
        for path in sorted((outbox / section).glob("*/*/report.json"))
    ]


def count_files(folder: Path) -> int:
    """Return how many non-folder entries are below folder."""
    total, stack = 0, [str(folder)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    total += 1
    return total


# First match wins: the OCR worker program (#14) runs `docproc worker --queues docproc.ocr`.
PROGRAMS = (("valkey-server", "broker"), ("docproc broker", "broker"),
            ("docproc worker --queues docproc.ocr", "ocr"), ("docproc worker", "worker"),
            ("docproc watch", "watcher"), ("docproc beat", "beat"), ("docproc api", "api"))


def program_name(command: str) -> str:
    """Return the supervisord program a command line belongs to."""
    for marker, name in PROGRAMS:
        if marker in command:
            return name
    return command[:40] or "?"


def program_figures(supervisord: int) -> dict[str, dict[str, float | int | None]]:
    """Return CPU seconds, process count and peak RSS of each program under supervisord."""
    procs = all_processes()
    figures: dict[str, dict[str, float | int | None]] = {}
    for pid in descendants(supervisord, procs):
        if procs[pid].ppid != supervisord:
            continue
        tree = [pid, *descendants(pid, procs)]
        figures[program_name(cmdline(pid))] = {
            "pid": pid,
            "cpu_s": round(tree_cpu(pid, procs), 2),
            "processes": len(tree),
            "peak_rss_mb": _mb(sum(status_kb(p, "VmHWM") or 0 for p in tree)),
        }
    own = proc_info(supervisord)
    if own is not None:
        figures["supervisord"] = {"pid": supervisord, "cpu_s": round(own.own_cpu, 2),
                                  "processes": 1, "peak_rss_mb": _mb(status_kb(supervisord,
                                                                             "VmHWM"))}
    return figures


def _mb(kb: int | None) -> float | None:
    return None if kb is None else round(kb / 1024, 1)


def cpu_delta(
    before: dict[str, dict[str, float | int | None]],
    after: dict[str, dict[str, float | int | None]],
) -> dict[str, float]:
    """Return the CPU seconds each program spent between two program_figures snapshots."""
    delta = {}
    for name, figures in after.items():
        previous = before.get(name, {}).get("cpu_s") or 0.0
        delta[name] = round(float(figures["cpu_s"] or 0.0) - float(previous), 2)
    return delta


def elapsed_since(start: float) -> float:
    """Return seconds since a perf_counter() reading."""
    return time.perf_counter() - start
