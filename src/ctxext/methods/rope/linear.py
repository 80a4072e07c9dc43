"""Position Interpolation (Chen et al. 2023; kaiokendev's SuperHOT): theta'_k = theta_k / s."""

from __future__ import annotations

import torch

from .spec import RUNTIMES, GgufRope, RopeMethod, default_inv_freq, register


def frequencies(dim: int, base: float, original: int, factor: float) -> tuple[torch.Tensor, float]:
    return default_inv_freq(dim, base) / factor, 1.0


METHOD = register(
    RopeMethod(
        "linear",
        "Position Interpolation (Chen et al. 2023): theta'_k = theta_k / s",
        frequencies,
        hf_parameters=lambda plan: {"factor": plan.factor},
        gguf=lambda plan: GgufRope("linear", plan.factor, plan.original),
        runtimes=dict.fromkeys(RUNTIMES, "positions / s at every length"),
    )
)
