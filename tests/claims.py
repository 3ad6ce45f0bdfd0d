"""Claimed files and settings for tests that drive intake and the reconciler by hand."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from docproc.inbox.spool import Claimed
from docproc.settings import Settings, load_settings


def settings_under(tmp_path: Path) -> Settings:
    """Return the settings of an instance whose state is under tmp_path."""
    config = tmp_path / "docproc.yaml"
    config.write_text(f"state_dir: {tmp_path / 'state'}\n")
    return load_settings(config, environ={})


def spooled_file(spool: Path, token: str, content: bytes = b"hello") -> Claimed:
    """Put a claimed file's data and claim record in the spool, as the watcher leaves them."""
    (spool / f"{token}.data").write_bytes(content)
    (spool / f"{token}.claim.json").write_text(json.dumps(
        {"name": "a.txt", "relpath": "dept/a.txt", "received_at": "2026-11-23T10:00:00Z"}))
    return Claimed(token, spool / f"{token}.data", "a.txt", "dept/a.txt", len(content),
                   hashlib.sha256(content).hexdigest(), "2026-11-23T10:00:00Z")
