"""argparse types for numbers, shared by every ``lokiserve`` command: a bad
value stops at parse time (exit 2, the flag named) before any work. Standard
library only, so building a parser never loads torch."""

from __future__ import annotations

import argparse
import math


def number(kind, low: float, high: float | None = None, low_open: bool = False):
    """argparse type: a finite ``kind`` in [low, high] (or (low, high] with
    ``low_open``), so a bad value stops with a clear message before any work."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        bad = not math.isfinite(value) or (value <= low if low_open else value < low) or (
            high is not None and value > high)
        if bad:
            lo = f"> {low:g}" if low_open else f">= {low:g}"
            raise argparse.ArgumentTypeError(f"{text} must be {lo}" + (f" and <= {high:g}" if high is not None else ""))
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


POSITIVE_INT = number(int, 1)
POSITIVE = number(float, 0.0, low_open=True)
WEIGHT = number(float, 0.0)
FRACTION = number(float, 0.0, 1.0)


__all__ = ["number", "POSITIVE_INT", "POSITIVE", "WEIGHT", "FRACTION"]
