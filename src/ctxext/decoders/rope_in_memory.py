"""RoPE scaling applied to a model already in memory (eval variants, training): its config gets the plan
and its rotary modules are rebuilt from it, exactly as transformers would build them from the written file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

from ..errors import CtxextError
from .rope_plan import RopePlan, rope_config


def rotary_modules(model: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """(parent, attribute name, module) of every rotary embedding module of a transformers model."""
    found = []
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child).__name__.endswith("RotaryEmbedding") and hasattr(child, "rope_type"):
                found.append((parent, name, child))
    return found


@contextmanager
def restored_rope(model) -> Iterator[None]:
    """The model's rotary modules and RoPE config as they were, after the block."""
    saved_modules = [(parent, name, module) for parent, name, module in rotary_modules(model)]
    saved_config = {k: getattr(model.config, k) for k in ("rope_parameters", "max_position_embeddings")}
    try:
        yield
    finally:
        for parent, name, module in saved_modules:
            setattr(parent, name, module)
        for key, value in saved_config.items():
            setattr(model.config, key, value)


def apply_rope_in_memory(model: nn.Module, plan: RopePlan) -> nn.Module:
    """Give a loaded model the plan's config and rebuild its rotary modules from it (no weight changes)."""
    updated = rope_config(model.config.to_dict(), plan)
    config_class = type(model.config)
    new_config = config_class.from_dict(updated)
    for key in ("rope_parameters", "max_position_embeddings"):
        setattr(model.config, key, getattr(new_config, key))
    modules = rotary_modules(model)
    if not modules:
        raise CtxextError("the loaded model has no rotary embedding module")
    for parent, name, module in modules:
        device = next(iter(module.buffers())).device
        setattr(parent, name, type(module)(config=model.config).to(device))
    return model
