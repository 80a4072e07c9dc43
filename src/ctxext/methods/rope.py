"""RoPE frequency scaling: inverse frequencies and attention factor per method.

Notation (RoFormer, Su et al. 2021): rotary dimension d (head_dim x partial rotary factor), base b,
pair k = 0..d/2-1, theta_k = b^(-2k/d), wavelength lambda_k = 2 pi / theta_k, original context L,
target N, factor s = N / L. Each function returns (theta', attention factor) in float64; the
attention factor multiplies cos and sin (so the attention logits by its square).

* linear, Position Interpolation (Chen et al. 2023; kaiokendev's SuperHOT): theta'_k = theta_k / s.
* ntk, NTK-aware (bloc97 2023): b' = b s^(d/(d-2)); the highest frequency is kept, the lowest divided by s.
* dynamic NTK (emozilla 2023), as transformers computes it at length l > L:
  b' = b (s l / L - (s - 1))^(d/(d-2)); nothing changes for l <= L.
* yarn, NTK-by-parts + temperature (Peng et al. 2023): ramp over pair indices between
  floor(c(beta_fast)) and ceil(c(beta_slow)), c(r) = d ln(L / (2 pi r)) / (2 ln b);
  theta'_k = theta_k (g_k + (1 - g_k) / s), g = 1 - clamp((k - lo) / (hi - lo), 0, 1); factor 0.1 ln s + 1.
* llama3 (Llama 3.1): wavelength bands with low_freq_factor 1, high_freq_factor 4: kept when
  lambda < L / 4, divided by s when lambda > L, blended smoothly between.
* longrope (LongRoPE, Ding et al. 2024; Phi-3): theta'_k = theta_k / f_k with a short set of divisors for
  l <= L and a long set beyond. ctxext writes short divisors 1 (inputs inside L computed as trained) and
  long divisors from YaRN's ramp, 1 / (g_k + (1 - g_k) / s), with no temperature, or divisors searched for
  the model on a calibration text (``ctxext extend --tune``, :mod:`ctxext.decoders.rope_search`).
"""

from __future__ import annotations

import math

import torch

ROPE_METHODS = ("linear", "ntk", "dynamic", "yarn", "llama3", "longrope")


def default_inv_freq(dim: int, base: float) -> torch.Tensor:
    """theta_k = b^(-2k/d) for k = 0..d/2-1."""
    return 1.0 / base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)


def ntk_base(dim: int, base: float, factor: float) -> float:
    return base * factor ** (dim / (dim - 2))


def linear(dim: int, base: float, original: int, factor: float) -> tuple[torch.Tensor, float]:
    return default_inv_freq(dim, base) / factor, 1.0


def ntk(dim: int, base: float, original: int, factor: float) -> tuple[torch.Tensor, float]:
    return default_inv_freq(dim, ntk_base(dim, base, factor)), 1.0


def dynamic(
    dim: int, base: float, original: int, factor: float, seq_len: int | None = None
) -> tuple[torch.Tensor, float]:
    length = max(seq_len or original, original)
    scaled = base * (factor * length / original - (factor - 1)) ** (dim / (dim - 2))
    return default_inv_freq(dim, scaled), 1.0


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


def yarn(
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


def longrope(
    dim: int,
    base: float,
    original: int,
    factor: float,
    seq_len: int | None = None,
    long_factor: torch.Tensor | None = None,
) -> tuple[torch.Tensor, float]:
    """Short divisors 1 up to L; beyond, ``long_factor`` (searched by ctxext.decoders.rope_search) or YaRN's by-parts
    divisors; no temperature."""
    theta = default_inv_freq(dim, base)
    if seq_len is not None and seq_len <= original:
        return theta, 1.0
    divisors = yarn_divisors(dim, base, original, factor) if long_factor is None else long_factor.double()
    return theta / divisors, 1.0


def llama3(
    dim: int, base: float, original: int, factor: float, low_freq_factor: float = 1.0, high_freq_factor: float = 4.0
) -> tuple[torch.Tensor, float]:
    theta = default_inv_freq(dim, base)
    wavelength = 2 * math.pi / theta
    smooth = ((original / wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor)).clamp(0, 1)
    return (1 - smooth) * theta / factor + smooth * theta, 1.0


def scaled_inv_freq(
    method: str, dim: int, base: float, original: int, factor: float, **options
) -> tuple[torch.Tensor, float]:
    """Dispatch by method name (the names that land on disk, plus ``ntk``)."""
    functions = {"linear": linear, "ntk": ntk, "dynamic": dynamic, "yarn": yarn, "llama3": llama3, "longrope": longrope}
    if method not in functions:
        raise ValueError(f"unknown RoPE method {method!r}; expected one of {', '.join(ROPE_METHODS)}")
    return functions[method](dim, base, original, factor, **options)


def classify_pairs(theta: torch.Tensor, scaled: torch.Tensor, factor: float, tolerance: float = 1e-9) -> list[str]:
    """Per pair: 'kept' (theta' = theta), 'interpolated' (theta' = theta / s) or 'blended' (anything else)."""
    ratio = scaled / theta
    labels = []
    for value in ratio.tolist():
        if abs(value - 1) < tolerance:
            labels.append("kept")
        elif abs(value - 1 / factor) < tolerance:
            labels.append("interpolated")
        else:
            labels.append("blended")
    return labels
