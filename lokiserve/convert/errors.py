"""The one exception conversion raises for bad input, so callers (the CLI)
can tell "your input is wrong" from a bug."""

from __future__ import annotations


class ConvertError(ValueError):
    """A source, option or output folder conversion refuses; the message names the problem."""


__all__ = ["ConvertError"]
