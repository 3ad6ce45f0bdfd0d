"""Times the status shows and the `since` a caller gives."""

from __future__ import annotations

import pytest

from docproc.status.timestamps import iso, parse_since


def test_iso_shows_utc_to_the_second_and_nothing_for_no_time() -> None:
    assert iso(1_764_000_000.9) == "2025-11-24T16:00:00Z"
    assert iso("1764000000") == "2025-11-24T16:00:00Z"
    assert iso(None) is None and iso(0) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("1764000000", 1_764_000_000.0),
    ("1764000000.25", 1_764_000_000.25),
    ("2025-11-24T16:00:00Z", 1_764_000_000.0),
    ("2025-11-24T17:00:00+01:00", 1_764_000_000.0),
    ("2025-11-24T16:00:00", 1_764_000_000.0),  # no zone given: UTC
    ("2025-11-24", 1_763_942_400.0),
])
def test_since_is_epoch_seconds_or_an_iso_date_or_time(text: str, expected: float) -> None:
    assert parse_since(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "nan", "inf", "-inf", ""])
def test_since_that_is_no_time_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_since(text)
