"""File names are data, never markup or control: how they are shown in logs and on terminals.

A name may hold any byte but "/" and NUL: newlines (a forged log line), ESC sequences (a
terminal's colours, title, cursor), bidirectional overrides (a name read backwards), and bytes
that are not UTF-8 (a str with surrogate escapes, which a strict UTF-8 stream refuses).
`escape` writes each of those as a Python escape: `\\n`, `\\x1b`, `\\u202e`, and a byte that
is not UTF-8 as `\\xe9`; letters of any script stay as they are.
"""

from __future__ import annotations

import logging


def escape(text: str) -> str:
    """Return text with every character that is not printable written as an escape."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escaped(char) for char in text)


def _escaped(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:
        # os.fsdecode's stand-in for a byte that is not UTF-8: show the byte.
        return f"\\x{code - 0xDC00:02x}"
    return ascii(char)[1:-1]


class EscapedLogRecord(logging.LogRecord):
    """A log record whose message has its control characters escaped (not its traceback).

    Installed as the record factory, it covers every handler and formatter of the process,
    Celery's own included, and the worker children it forks.
    """

    def getMessage(self) -> str:
        return escape(super().getMessage())


def escape_log_messages() -> None:
    """Make every log record of this process escape its message."""
    logging.setLogRecordFactory(EscapedLogRecord)
