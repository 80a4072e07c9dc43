"""NTK-aware scaling (bloc97 2023): b' = b s^(d/(d-2)); the highest frequency is kept, the lowest divided by s."""

from __future__ import annotations

import torch

from .spec import RUNTIMES, GgufRope, RopeMethod, default_inv_freq, register


def ntk_base(dim: int, base: float, factor: float) -> float:
    return base * factor ** (dim / (dim - 2))


def frequencies(dim: int, base: float, original: int, factor: float) -> tuple[torch.Tensor, float]:
    return default_inv_freq(dim, ntk_base(dim, base, factor)), 1.0


METHOD = register(
    RopeMethod(
        "ntk",
        "NTK-aware (bloc97 2023): base b s^(d/(d-2))",
        frequencies,
        hf_parameters=lambda plan: {},
        gguf=lambda plan: GgufRope(freq_base=plan.rope_theta),
        runtimes=dict.fromkeys(RUNTIMES, "plain RoPE with the larger base at every length"),
        new_base=lambda plan: ntk_base(plan.facts.dim, plan.facts.base, plan.factor),
    )
)
