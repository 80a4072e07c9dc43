"""The names of the run-time attention methods and their labels ('self-extend+window2048+group8'), apart from
the attention code itself, so that what plans a saved file can refuse them by name."""

from __future__ import annotations

from ..errors import CtxextError, did_you_mean

LONG_ATTENTION = ("self-extend", "dca", "string")
OPTIONS = {"self-extend": ("window", "group"), "dca": ("chunk", "local"), "string": ("offset", "window")}


def is_attention_label(label: str) -> bool:
    return label.split("+")[0] in LONG_ATTENTION


def parse_label(label: str) -> tuple[str, dict]:
    """'self-extend+window2048+group8' -> ('self-extend', {'window': 2048, 'group': 8})."""
    method, *flags = label.split("+")
    if method not in LONG_ATTENTION:
        raise CtxextError(f"unknown attention method {method!r}{did_you_mean(method, LONG_ATTENTION)}")
    params = {}
    for flag in flags:
        name = flag.rstrip("0123456789")
        if name not in OPTIONS[method] or name == flag:
            known = ", ".join(f"+{option}N" for option in OPTIONS[method])
            raise CtxextError(f"unknown option '+{flag}' for {method} (known: {known})")
        params[name] = int(flag[len(name) :])
    return method, params
