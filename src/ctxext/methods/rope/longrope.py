"""LongRoPE's layout (Ding et al. 2024; Phi-3): theta'_k = theta_k / f_k with a short set of divisors for
l <= L and a long set beyond, and cos and sin multiplied by an attention factor m. ctxext writes short divisors 1
(inputs inside L computed as trained) and long divisors from YaRN's ramp, 1 / (g_k + (1 - g_k) / s), with m = 1,
or divisors and m searched for the model on a calibration text (``ctxext extend --tune``,
:mod:`ctxext.decoders.rope_search`). Every runtime applies m at every length, inside L too: transformers reads one
``attention_factor`` for both sets, vLLM ``short_mscale`` and ``long_mscale`` (written equal), llama.cpp
``rope.scaling.attn_factor``."""

from __future__ import annotations

import torch

from .spec import RopeMethod, default_inv_freq, per_pair_divisors, register
from .yarn import yarn_divisors


def frequencies(
    dim: int,
    base: float,
    original: int,
    factor: float,
    seq_len: int | None = None,
    long_factor: torch.Tensor | None = None,
    attention_factor: float | None = None,
) -> tuple[torch.Tensor, float]:
    """Short divisors 1 up to L; beyond, ``long_factor`` (searched) or YaRN's by-parts divisors; m at every
    length (1 unless searched)."""
    theta = default_inv_freq(dim, base)
    attention = 1.0 if attention_factor is None else float(attention_factor)
    if seq_len is not None and seq_len <= original:
        return theta, attention
    divisors = yarn_divisors(dim, base, original, factor) if long_factor is None else long_factor.double()
    return theta / divisors, attention


METHOD = register(
    RopeMethod(
        "longrope",
        "LongRoPE layout (Ding et al. 2024): short divisors 1, long divisors from YaRN's ramp, no temperature",
        frequencies,
        hf_parameters=lambda plan: {
            "factor": plan.factor,
            "original_max_position_embeddings": plan.original,
            "short_factor": [1.0] * (plan.facts.dim // 2),
            "long_factor": plan.long_divisors().tolist(),
            "attention_factor": plan.attention_factor,  # transformers: one factor for both sets
            "short_mscale": plan.attention_factor,  # vLLM reads these two and ignores attention_factor
            "long_mscale": plan.attention_factor,
        },
        gguf=per_pair_divisors,
        runtimes={
            "transformers": "inputs up to L exactly as trained (but for a searched attention factor); longer ones "
            "with the long divisors",
            "vllm": "the long divisors at every length once max_model_len > L (inputs inside L change too)",
            "llama.cpp": "the long divisors at every length, read from the rope_freqs tensor",
        },
        length_dependent=True,
        plan_options=lambda plan: {"long_factor": plan.long_divisors(), "attention_factor": plan.searched_attention},
    )
)
