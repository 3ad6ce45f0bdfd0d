"""A worker node's heartbeat names the documents it holds, so recovery leaves them alone."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from celery.worker import state as worker_state

from docproc.worker.heartbeat import held_keys


def test_held_keys_name_running_and_reserved_documents_and_skip_other_messages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    running = SimpleNamespace(args=[[{"key": "aaa"}, {"key": "bbb"}]])
    reserved = SimpleNamespace(args=[[{"key": "ccc"}]])
    reconcile = SimpleNamespace(args=[])  # a task without documents
    monkeypatch.setattr(worker_state, "active_requests", [running])
    monkeypatch.setattr(worker_state, "reserved_requests", [reserved, reconcile])
    assert sorted(held_keys()) == ["aaa", "bbb", "ccc"]
