"""Errors that maskwatch raises on purpose: each names the input that caused it."""

from __future__ import annotations


def printable(text: str) -> str:
    """``text`` on one line: control characters (a newline in a file name) written as escapes."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class MaskwatchError(Exception):
    """Base class for every error maskwatch raises about its inputs or models."""


class ImageError(MaskwatchError):
    """An input could not be read as a picture (missing, not an image, too large, corrupt)."""

    def __init__(self, source: str, reason: str):
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


class ModelError(MaskwatchError):
    """A model name or file could not be loaded."""
