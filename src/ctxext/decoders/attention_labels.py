"""The names of the run-time attention methods and their labels ('self-extend+window2048+group8', 'string+yarn'),
apart from the attention code itself, so that what plans a saved file can refuse them by name."""

from __future__ import annotations

from typing import NamedTuple

from ..errors import CtxextError, did_you_mean
from ..methods.rope import ROPE_REGISTRY

LONG_ATTENTION = ("self-extend", "dca", "string")
OPTIONS = {"self-extend": ("window", "group"), "dca": ("chunk", "local"), "string": ("offset", "window")}


class AttentionLabel(NamedTuple):
    method: str
    params: dict
    scaling: str | None  # a RoPE scaling applied to the target first; the method then treats the target as trained


def is_attention_label(label: str) -> bool:
    return label.split("+")[0] in LONG_ATTENTION


def fixed_scalings() -> list[str]:
    """RoPE scalings an attention method can run on: those whose frequencies do not change with the input length
    (the remapped positions are rotated with frequencies taken once)."""
    return [name for name, method in ROPE_REGISTRY.items() if not method.length_dependent]


def parse_label(label: str) -> AttentionLabel:
    """'self-extend+window2048+group8' -> ('self-extend', {'window': 2048, 'group': 8}, None);
    'string+yarn' -> ('string', {}, 'yarn')."""
    method, *flags = label.split("+")
    if method not in LONG_ATTENTION:
        raise CtxextError(f"unknown attention method {method!r}{did_you_mean(method, LONG_ATTENTION)}")
    params, scalings = {}, []
    for flag in flags:
        if flag in ROPE_REGISTRY:
            if flag not in fixed_scalings():
                raise CtxextError(
                    f"{method} runs on RoPE frequencies that stay fixed; {flag!r} changes them with the input's "
                    f"length (choose from {', '.join(fixed_scalings())})"
                )
            scalings.append(flag)
            continue
        name = flag.rstrip("0123456789")
        if name not in OPTIONS[method] or name == flag:
            known = ", ".join(f"+{option}N" for option in OPTIONS[method])
            hint = did_you_mean(flag, fixed_scalings())
            raise CtxextError(
                f"unknown option '+{flag}' for {method}{hint} (known: {known}, or a RoPE scaling such as +yarn)"
            )
        params[name] = int(flag[len(name) :])
    if len(scalings) > 1:
        raise CtxextError(f"{label!r} names {len(scalings)} RoPE scalings ({', '.join(scalings)}); give at most one")
    return AttentionLabel(method, params, scalings[0] if scalings else None)
