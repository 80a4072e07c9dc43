"""The one rule every registry of ctxext keeps (RoPE and table methods, output formats, eval tasks): a name is
registered once."""

from __future__ import annotations

from typing import TypeVar

Item = TypeVar("Item")


def add(registry: dict[str, Item], name: str, item: Item, what: str, reserved: tuple[str, ...] = ()) -> Item:
    """Put ``item`` under ``name``; a name already there (or reserved) raises ValueError."""
    if name in registry or name in reserved:
        raise ValueError(f"{what} named {name!r} is already registered")
    registry[name] = item
    return item
