"""YaRN, NTK-by-parts with temperature (Peng et al. 2023): a ramp over pair indices between
floor(c(beta_fast)) and ceil(c(beta_slow)), c(r) = d ln(L / (2 pi r)) / (2 ln b);
theta'_k = theta_k (g_k + (1 - g_k) / s), g = 1 - clamp((k - lo) / (hi - lo), 0, 1); attention factor 0.1 ln s + 1."""

from __future__ import annotations

import math

import torch

from ...errors import CtxextError
from .spec import RUNTIMES, GgufRope, RopeMethod, RopePlan, default_inv_freq, register


def yarn_correction_range(
    dim: int, base: float, original: int, beta_fast: float, beta_slow: float, truncate: bool = True
) -> tuple[float, float]:
    """Pair indices (lo, hi) between which YaRN's ramp runs (rounded outwards unless ``truncate`` is off)."""

    def pair_index(rotations: float) -> float:
        return dim * math.log(original / (rotations * 2 * math.pi)) / (2 * math.log(base))

    lo, hi = pair_index(beta_fast), pair_index(beta_slow)
    if truncate:
        lo, hi = math.floor(lo), math.ceil(hi)
    return max(lo, 0), min(hi, dim - 1)


def yarn_attention_factor(factor: float, mscale: float = 1.0) -> float:
    """m = 0.1 mscale ln s + 1 (1 when s <= 1)."""
    return 0.1 * mscale * math.log(factor) + 1.0 if factor > 1 else 1.0


def yarn_divisors(
    dim: int, base: float, original: int, factor: float, beta_fast=32.0, beta_slow=1.0, truncate=True
) -> torch.Tensor:
    """Per-pair divisors f_k = theta_k / theta'_k of NTK-by-parts: 1 for fast pairs, s for slow ones."""
    lo, hi = yarn_correction_range(dim, base, original, beta_fast, beta_slow, truncate)
    span = (hi - lo) or 0.001
    ramp = ((torch.arange(dim // 2, dtype=torch.float64) - lo) / span).clamp(0, 1)
    return 1.0 / ((1 - ramp) + ramp / factor)


def frequencies(
    dim: int,
    base: float,
    original: int,
    factor: float,
    beta_fast: float = 32.0,
    beta_slow: float = 1.0,
    truncate: bool = True,
    attention_factor: float | None = None,
    mscale: float | None = None,
    mscale_all_dim: float | None = None,
) -> tuple[torch.Tensor, float]:
    """NTK-by-parts frequencies; attention factor given, or DeepSeek's mscale ratio, or 0.1 ln s + 1."""
    theta = default_inv_freq(dim, base) / yarn_divisors(dim, base, original, factor, beta_fast, beta_slow, truncate)
    if attention_factor is None and mscale and mscale_all_dim:
        attention_factor = yarn_attention_factor(factor, mscale) / yarn_attention_factor(factor, mscale_all_dim)
    return theta, yarn_attention_factor(factor) if attention_factor is None else float(attention_factor)


def _gguf(plan: RopePlan) -> GgufRope:
    if plan.kept:
        raise CtxextError(
            f"llama.cpp's YaRN keys cannot carry {', '.join(sorted(plan.kept))}; extend to a Hugging Face folder"
        )
    return GgufRope("yarn", plan.factor, plan.original)


METHOD = register(
    RopeMethod(
        "yarn",
        "YaRN (Peng et al. 2023): NTK-by-parts ramp and attention factor 0.1 ln s + 1",
        frequencies,
        hf_parameters=lambda plan: {
            "factor": plan.factor,
            "original_max_position_embeddings": plan.original,
            "beta_fast": 32.0,
            "beta_slow": 1.0,
            **plan.kept,
            "attention_factor": plan.attention_factor,
        },
        gguf=_gguf,
        runtimes=dict.fromkeys(RUNTIMES, "the same YaRN frequencies and attention factor at every length"),
        plan_options=lambda plan: dict(plan.kept),
    )
)
