"""Helpers every benchmark part uses: the error type, waiting, statistics, environment."""

from __future__ import annotations

import math
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent


DOCPROC = Path(sys.executable).parent / "docproc"


class BenchError(Exception):
    """A measurement that cannot be made; the message says what went wrong."""


def wait_until(
    condition: Callable[[], T], timeout: float, what: str, interval: float = 0.05
) -> T:
    """Poll condition until it returns something truthy; raise BenchError after timeout s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Return the q-th percentile (0-100) of values, interpolating between ranks."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """Return count, p50, p95, max, mean and sum of values."""
    count = len(values)
    return {
        "n": count,
        "p50": _round(percentile(values, 50)),
        "p95": _round(percentile(values, 95)),
        "max": _round(max(values)) if count else None,
        "mean": _round(sum(values) / count) if count else None,
        "sum": _round(sum(values)),
    }


def clean_env() -> dict[str, str]:
    """Return this environment without DOCPROC_* variables and with this checkout's docproc."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("DOCPROC")}
    env["PYTHONUNBUFFERED"] = "1"
    # The docproc of this checkout, not the venv's editable install: a worktree of an older
    # commit measures its own code (the console script and `-m docproc` children alike).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), env.get("PYTHONPATH"))))
    return env


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def progress(message: str) -> None:
    """Print a progress line to stderr, so stdout keeps only the final table."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
