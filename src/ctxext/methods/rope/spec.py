"""What a RoPE scaling method is to ctxext: its frequencies, what it writes for transformers and for llama.cpp
(or why it cannot be written there), and what each runtime computes from what is written.

Notation (RoFormer, Su et al. 2021): rotary dimension d (head_dim x partial rotary factor), base b,
pair k = 0..d/2-1, theta_k = b^(-2k/d), wavelength lambda_k = 2 pi / theta_k, original context L,
target N, factor s = N / L. ``frequencies`` returns (theta', attention factor) in float64; the attention
factor multiplies cos and sin (so the attention logits by its square).

The runtime notes come from reading each runtime's rotary code (transformers ``modeling_rope_utils``, vLLM
``model_executor/layers/rotary_embedding``, llama.cpp ``llama-model.cpp``) and are held by the conformance
tests, which score the written files in each runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch

from ...errors import CtxextError
from ...registries import add

RUNTIMES = ("transformers", "vllm", "llama.cpp")


class RopePlan(Protocol):
    """What a method reads of a plan (:class:`ctxext.decoders.rope_plan.RopePlan` is the one there is)."""

    facts: object  # .dim, .base
    original: int
    target: int
    kept: dict

    @property
    def factor(self) -> float: ...

    def inv_freq(self, seq_len: int | None = None) -> tuple[torch.Tensor, float]: ...

    def long_divisors(self) -> torch.Tensor: ...

    @property
    def attention_factor(self) -> float: ...

    @property
    def rope_theta(self) -> float: ...


@dataclass(frozen=True)
class GgufRope:
    """What a GGUF must say: ``{arch}.rope.scaling.*``, a new ``freq_base``, or per-pair divisors."""

    scaling_type: str = "none"  # none, linear, yarn (the names llama.cpp reads)
    factor: float | None = None
    original: int | None = None
    freq_base: float | None = None
    divisors: torch.Tensor | None = None  # written as rope_freqs.weight: theta'_k = theta_k / divisor_k
    attention_factor: float | None = None  # {arch}.rope.scaling.attn_factor: cos and sin x it, at every length


Frequencies = Callable[..., tuple[torch.Tensor, float]]  # (dim, base, original, factor, **options)


@dataclass(frozen=True)
class RopeMethod:
    name: str
    title: str
    frequencies: Frequencies
    hf_parameters: Callable[[RopePlan], dict]  # the rope_parameters entry, beside rope_type and rope_theta
    gguf: Callable[[RopePlan], GgufRope]  # raises CtxextError where llama.cpp cannot express the method
    runtimes: dict[str, str] = field(default_factory=dict)  # runtime -> what it computes from the file
    length_dependent: bool = False  # frequencies depend on the input's length (``seq_len``)
    plan_options: Callable[[RopePlan], dict] | None = None  # options of ``frequencies`` a plan supplies
    keeps_max_position: bool = False  # max_position_embeddings stays L (transformers' dynamic grows from it)
    new_base: Callable[[RopePlan], float] | None = None  # a method that only changes rope_theta
    card_note: Callable[[RopePlan], str] | None = None  # a line for the written folder's model card
    served_by_vllm: bool = True  # False: vLLM reads what is written as something else

    def rope_type(self) -> str:
        return "default" if self.new_base else self.name


ROPE_REGISTRY: dict[str, RopeMethod] = {}


def register(method: RopeMethod) -> RopeMethod:
    return add(ROPE_REGISTRY, method.name, method, "a RoPE method")


def rope_method(name: str) -> RopeMethod:
    return ROPE_REGISTRY[name]


def default_inv_freq(dim: int, base: float) -> torch.Tensor:
    """theta_k = b^(-2k/d) for k = 0..d/2-1."""
    return 1.0 / base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)


def scaled_inv_freq(
    method: str, dim: int, base: float, original: int, factor: float, **options
) -> tuple[torch.Tensor, float]:
    """theta' and the attention factor of a registered method."""
    if method not in ROPE_REGISTRY:
        raise ValueError(f"unknown RoPE method {method!r}; expected one of {', '.join(ROPE_REGISTRY)}")
    return ROPE_REGISTRY[method].frequencies(dim, base, original, factor, **options)


def refuse_gguf(reason: str) -> Callable[[RopePlan], GgufRope]:
    def refuse(plan: RopePlan) -> GgufRope:
        raise CtxextError(reason)

    return refuse


def per_pair_divisors(plan: RopePlan) -> GgufRope:
    """The plan's frequencies at the target as llama.cpp's rope_freqs divisors, and its attention factor."""
    scaled, attention = plan.inv_freq(plan.target)
    divisors = default_inv_freq(plan.facts.dim, plan.facts.base) / scaled
    return GgufRope(divisors=divisors, attention_factor=None if attention == 1.0 else attention)


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
