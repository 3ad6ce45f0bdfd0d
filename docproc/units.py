"""Figures for people."""

from __future__ import annotations


def human_bytes(count: float) -> str:
    """Return a byte count for people, in SI units: 512 B, 4.7 MB."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1000
    return f"{count:,.1f} TB"
