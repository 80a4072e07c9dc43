"""The critical base of the scaling law of RoPE extrapolation (Liu et al. 2023, "Scaling Laws of RoPE-based
Extrapolation", Theorem 2): pairs whose wavelength exceeds the training length L never saw a full period; their
count sets the critical dimension d_c = 2 ceil((d / 2) log_b(L / 2 pi)), and a model whose base is raised to
beta extrapolates up to T = 2 pi beta^(d_c / d). For a target N the base is therefore
beta = (N / 2 pi)^(d / d_c), kept at least b. Like NTK it changes only the base; the paper pairs it with a short
fine-tune at the new base (``ctxext train``), and it is written for every runtime as a larger ``rope_theta``."""

from __future__ import annotations

import math

import torch

from .spec import RUNTIMES, GgufRope, RopeMethod, default_inv_freq, register


def critical_dimension(dim: int, base: float, original: int) -> int:
    """d_c = 2 ceil((d / 2) log_b(L / 2 pi)): the rotary dimensions whose pairs completed a period within L."""
    pairs = math.ceil(dim / 2 * math.log(original / (2 * math.pi)) / math.log(base))
    return 2 * min(max(pairs, 1), dim // 2)


def critical_base(dim: int, base: float, original: int, target: int) -> float:
    """beta = (N / 2 pi)^(d / d_c), never below the model's own base."""
    return max(base, (target / (2 * math.pi)) ** (dim / critical_dimension(dim, base, original)))


def frequencies(dim: int, base: float, original: int, factor: float) -> tuple[torch.Tensor, float]:
    return default_inv_freq(dim, critical_base(dim, base, original, original * factor)), 1.0


METHOD = register(
    RopeMethod(
        "critical-base",
        "critical base (Liu et al. 2023): base (N / 2 pi)^(d / d_c), d_c the critical dimension at L",
        frequencies,
        hf_parameters=lambda plan: {},
        gguf=lambda plan: GgufRope(freq_base=plan.rope_theta),
        runtimes=dict.fromkeys(RUNTIMES, "plain RoPE with the larger base at every length"),
        new_base=lambda plan: critical_base(plan.facts.dim, plan.facts.base, plan.original, plan.target),
    )
)
