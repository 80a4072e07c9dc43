"""LongRoPE's layout (Ding et al. 2024; Phi-3): theta'_k = theta_k / f_k with a short set of divisors for
l <= L and a long set beyond. ctxext writes short divisors 1 (inputs inside L computed as trained) and long
divisors from YaRN's ramp, 1 / (g_k + (1 - g_k) / s), with no temperature, or divisors searched for the model
on a calibration text (``ctxext extend --tune``, :mod:`ctxext.decoders.rope_search`)."""

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
) -> tuple[torch.Tensor, float]:
    """Short divisors 1 up to L; beyond, ``long_factor`` (searched) or YaRN's by-parts divisors."""
    theta = default_inv_freq(dim, base)
    if seq_len is not None and seq_len <= original:
        return theta, 1.0
    divisors = yarn_divisors(dim, base, original, factor) if long_factor is None else long_factor.double()
    return theta / divisors, 1.0


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
            "attention_factor": 1.0,  # transformers: one factor for both sets
            "short_mscale": 1.0,  # vLLM reads these two and ignores attention_factor
            "long_mscale": 1.0,
        },
        gguf=per_pair_divisors,
        runtimes={
            "transformers": "inputs up to L exactly as trained; longer ones with the long divisors",
            "vllm": "the long divisors at every length once max_model_len > L (inputs inside L change too)",
            "llama.cpp": "the long divisors at every length, read from the rope_freqs tensor",
        },
        length_dependent=True,
        plan_options=lambda plan: {"long_factor": plan.long_divisors()},
    )
)
