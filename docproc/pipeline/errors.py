"""The one exception the pipeline raises for documents it cannot process."""

from __future__ import annotations

from typing import Literal

ErrorType = Literal[
    "encrypted", "corrupt", "truncated", "unsupported_type", "too_large", "timeout", "empty",
    "internal",
]


class DocumentError(Exception):
    """A document that cannot be processed; the message tells a person what to do about it."""

    def __init__(self, type: ErrorType, message: str) -> None:
        super().__init__(message)
        self.type: ErrorType = type
        self.message = message

    def __repr__(self) -> str:
        return f"DocumentError({self.type!r}, {self.message!r})"
