"""Llama 3.1's wavelength bands (low_freq_factor 1, high_freq_factor 4): pairs kept when lambda < L / 4,
divided by s when lambda > L, blended smoothly between; no temperature."""

from __future__ import annotations

import math

import torch

from .spec import RopeMethod, default_inv_freq, per_pair_divisors, register


def frequencies(
    dim: int, base: float, original: int, factor: float, low_freq_factor: float = 1.0, high_freq_factor: float = 4.0
) -> tuple[torch.Tensor, float]:
    theta = default_inv_freq(dim, base)
    wavelength = 2 * math.pi / theta
    smooth = ((original / wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor)).clamp(0, 1)
    return (1 - smooth) * theta / factor + smooth * theta, 1.0


METHOD = register(
    RopeMethod(
        "llama3",
        "Llama 3.1 wavelength bands (low_freq_factor 1, high_freq_factor 4), no temperature",
        frequencies,
        hf_parameters=lambda plan: {
            "factor": plan.factor,
            "original_max_position_embeddings": plan.original,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
        },
        gguf=per_pair_divisors,
        runtimes={
            "transformers": "the same per-pair factors at every length",
            "vllm": "the same per-pair factors at every length",
            "llama.cpp": "the same factors, read from the rope_freqs tensor",
        },
    )
)
