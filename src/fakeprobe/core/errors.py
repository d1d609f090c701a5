"""Errors that end the scan of one input; each has a stable ``kind`` for JSON records."""
from __future__ import annotations


class FakeprobeError(Exception):
    """Base error: ``kind`` is a short machine-readable tag, the message a human sentence."""

    kind = "error"

    def __init__(self, message: str, kind: str | None = None):
        super().__init__(message)
        if kind is not None:
            self.kind = kind


class InputError(FakeprobeError):
    """The input file cannot be analysed (missing, unreadable, not media, broken)."""

    kind = "input"


class ResourceLimitError(FakeprobeError):
    """The input exceeds a configured safety cap (pixels, time)."""

    kind = "limit"


class ModelError(FakeprobeError):
    """Weights are missing, untrusted or malformed."""

    kind = "model"


class NoModelError(ModelError):
    kind = "no_model"
