"""Which inbox names the watcher leaves alone: the built-in patterns and the configured ones."""

from __future__ import annotations

import pytest

from docproc.inbox.ignore import is_ignored
from docproc.settings import WatcherSettings


@pytest.mark.parametrize(("relpath", "ignored"), [
    ("scan.pdf", False),
    ("dept-a/scan.pdf", False),
    ("report.final.docx", False),
    ("THUMBS.DB", False),  # fnmatch is case-sensitive here
    (".hidden", True),
    ("dept-a/.git/config", True),
    ("x.part", True),
    ("x.tmp", True),
    ("~$doc.docx", True),
    ("a/Thumbs.db", True),
    ("desktop.ini", True),
    ("backup~", True),
    ("._x", True),
    (".syncthing.doc.pdf.tmp", True),
    ("big.iso.filepart", True),
    ("file.download", True),
    ("notes.swp", True),
    ("__MACOSX/x", True),
    ("a/$RECYCLE.BIN/y.pdf", True),
])
def test_is_ignored_with_default_patterns(relpath: str, ignored: bool) -> None:
    assert is_ignored(relpath, WatcherSettings().ignore) is ignored


def test_is_ignored_keeps_builtins_with_custom_patterns() -> None:
    assert is_ignored("drafts/x.pdf", ["drafts"])
    assert not is_ignored(".hidden", [])
    assert is_ignored("._resource", [])
    assert is_ignored("__MACOSX/a.pdf", [])
