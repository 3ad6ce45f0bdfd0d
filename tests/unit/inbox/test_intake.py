"""Intake's batching: one document a task when few come, larger batches when many."""

from __future__ import annotations

from docproc.inbox.intake import batch_sizes


def test_batches_are_single_when_few_and_larger_when_many() -> None:
    assert batch_sizes(1) == [1]
    assert batch_sizes(3) == [1, 1, 1]
    assert batch_sizes(8) == [4, 4]
    assert batch_sizes(40) == [16, 16, 8]
    assert batch_sizes(100, max_per_task=8) == [8] * 12 + [4]
