"""Fixtures of the status tests: a flushed embedded broker to point settings at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis


@pytest.fixture
def embedded(valkey_socket: Path) -> dict[str, Any]:
    """Return config overrides for the embedded broker, emptied first."""
    redis.Redis(unix_socket_path=str(valkey_socket)).flushdb()
    return {"broker_url": f"redis+socket://{valkey_socket}", "result_backend": None}
