"""Typed checks of the numbers ctxext reads from files (config.json, GGUF metadata, NeMo / Cerebras YAML, results
files): one line naming the value when it cannot be right."""

from __future__ import annotations

import math

from .errors import CtxextError


def is_whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_rate(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def positive_whole(value, what: str, at_most: int | None = None) -> int:
    """``value`` if it is a whole number in [1, at_most]; else one CtxextError naming ``what``."""
    if not (is_whole(value) and value > 0):
        raise CtxextError(f"{what} must be a positive whole number, not {value!r}")
    if at_most is not None and value > at_most:
        raise CtxextError(f"{what} must be at most {at_most}, not {value}")
    return value


def positive_rate(value, what: str) -> float:
    """``value`` if it is a finite number above 0; else one CtxextError naming ``what``."""
    if not (is_rate(value) and value > 0):
        raise CtxextError(f"{what} must be a positive finite number, not {value!r}")
    return value
