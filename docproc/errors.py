"""docproc's exceptions, under one root: a document's, the configuration's and the outbox's."""

from __future__ import annotations

from typing import Literal

ErrorType = Literal[
    "encrypted", "corrupt", "truncated", "unsupported_type", "too_large", "timeout", "empty",
    "internal",
]


class DocprocError(Exception):
    """Anything docproc itself raises to say what went wrong and what to do about it."""


class DocumentError(DocprocError):
    """A document that cannot be processed; the message tells a person what to do about it."""

    def __init__(self, type: ErrorType, message: str) -> None:
        super().__init__(message)
        self.type: ErrorType = type
        self.message = message

    def __repr__(self) -> str:
        return f"DocumentError({self.type!r}, {self.message!r})"


class ConfigError(DocprocError):
    """A configuration that cannot run; the message names the key and the file."""


class OutboxError(DocprocError, OSError):
    """The outbox cannot be written: full, read-only, missing, or without permission."""

    def __str__(self) -> str:
        return str(self.strerror)
