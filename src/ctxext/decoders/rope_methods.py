"""One spec per RoPE scaling method: its math, what it writes for transformers and for llama.cpp (or why it
cannot be written there), and what each runtime computes from what is written.

Adding a method is one ``register(RopeMethod(...))`` here plus its frequencies in :mod:`ctxext.methods.rope`.
The runtime notes come from reading each runtime's rotary code (transformers ``modeling_rope_utils``, vLLM
``model_executor/layers/rotary_embedding``, llama.cpp ``llama-model.cpp``) and are held by the conformance
tests, which score the written files in each runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch

from ..errors import CtxextError
from ..methods.rope import default_inv_freq, ntk_base
from .rope_facts import RopeFacts

RUNTIMES = ("transformers", "vllm", "llama.cpp")


class RopePlan(Protocol):
    """What a method's writers read of a plan (:class:`ctxext.decoders.rope_plan.RopePlan` is the one there is)."""

    facts: RopeFacts
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


@dataclass(frozen=True)
class RopeMethod:
    name: str
    title: str
    hf_parameters: Callable[[RopePlan], dict]  # the rope_parameters entry, beside rope_type and rope_theta
    gguf: Callable[[RopePlan], GgufRope]  # raises CtxextError where llama.cpp cannot express the method
    runtimes: dict[str, str] = field(default_factory=dict)  # runtime -> what it computes from the file
    keeps_max_position: bool = False  # max_position_embeddings stays L (transformers' dynamic grows from it)
    new_base: Callable[[RopePlan], float] | None = None  # a method that only changes rope_theta

    def rope_type(self) -> str:
        return "default" if self.new_base else self.name


ROPE_REGISTRY: dict[str, RopeMethod] = {}


def register(method: RopeMethod) -> RopeMethod:
    if method.name in ROPE_REGISTRY:
        raise ValueError(f"a RoPE method named {method.name!r} is already registered")
    ROPE_REGISTRY[method.name] = method
    return method


def _refuse(reason: str) -> Callable[[RopePlan], GgufRope]:
    def refuse(plan: RopePlan) -> GgufRope:
        raise CtxextError(reason)

    return refuse


def _divisors(plan: RopePlan) -> torch.Tensor:
    scaled, _ = plan.inv_freq(plan.target)
    return default_inv_freq(plan.facts.dim, plan.facts.base) / scaled


register(
    RopeMethod(
        "linear",
        "Position Interpolation (Chen et al. 2023): theta'_k = theta_k / s",
        hf_parameters=lambda plan: {"factor": plan.factor},
        gguf=lambda plan: GgufRope("linear", plan.factor, plan.original),
        runtimes=dict.fromkeys(RUNTIMES, "positions / s at every length"),
    )
)
register(
    RopeMethod(
        "ntk",
        "NTK-aware (bloc97 2023): base b s^(d/(d-2))",
        hf_parameters=lambda plan: {},
        gguf=lambda plan: GgufRope(freq_base=plan.rope_theta),
        runtimes=dict.fromkeys(RUNTIMES, "plain RoPE with the larger base at every length"),
        new_base=lambda plan: ntk_base(plan.facts.dim, plan.facts.base, plan.factor),
    )
)
register(
    RopeMethod(
        "dynamic",
        "dynamic NTK (emozilla 2023): the base grows with the input beyond L",
        hf_parameters=lambda plan: {"factor": plan.factor},
        gguf=_refuse(
            "llama.cpp has no dynamic NTK scaling; choose yarn (the default), linear, ntk, llama3 or longrope "
            "for a GGUF output"
        ),
        runtimes={
            "transformers": "exact up to L; beyond, the NTK base recomputed from the input length",
            "vllm": "unscaled RoPE with a table of L positions: inputs beyond L give NaN (not for vLLM)",
            "llama.cpp": "not expressible (refused)",
        },
        keeps_max_position=True,
    )
)
register(
    RopeMethod(
        "yarn",
        "YaRN (Peng et al. 2023): NTK-by-parts ramp and attention factor 0.1 ln s + 1",
        hf_parameters=lambda plan: {
            "factor": plan.factor,
            "original_max_position_embeddings": plan.original,
            "beta_fast": 32.0,
            "beta_slow": 1.0,
            **plan.kept,
            "attention_factor": plan.attention_factor,
        },
        gguf=lambda plan: _yarn_gguf(plan),
        runtimes=dict.fromkeys(RUNTIMES, "the same YaRN frequencies and attention factor at every length"),
    )
)
register(
    RopeMethod(
        "llama3",
        "Llama 3.1 wavelength bands (low_freq_factor 1, high_freq_factor 4), no temperature",
        hf_parameters=lambda plan: {
            "factor": plan.factor,
            "original_max_position_embeddings": plan.original,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
        },
        gguf=lambda plan: GgufRope(divisors=_divisors(plan)),
        runtimes={
            "transformers": "the same per-pair factors at every length",
            "vllm": "the same per-pair factors at every length",
            "llama.cpp": "the same factors, read from the rope_freqs tensor",
        },
    )
)
register(
    RopeMethod(
        "longrope",
        "LongRoPE layout (Ding et al. 2024): short divisors 1, long divisors from YaRN's ramp, no temperature",
        hf_parameters=lambda plan: {
            "factor": plan.factor,
            "original_max_position_embeddings": plan.original,
            "short_factor": [1.0] * (plan.facts.dim // 2),
            "long_factor": plan.long_divisors().tolist(),
            "attention_factor": 1.0,  # transformers: one factor for both sets
            "short_mscale": 1.0,  # vLLM reads these two and ignores attention_factor
            "long_mscale": 1.0,
        },
        gguf=lambda plan: GgufRope(divisors=_divisors(plan)),
        runtimes={
            "transformers": "inputs up to L exactly as trained; longer ones with the long divisors",
            "vllm": "the long divisors at every length once max_model_len > L (inputs inside L change too)",
            "llama.cpp": "the long divisors at every length, read from the rope_freqs tensor",
        },
    )
)


def _yarn_gguf(plan: RopePlan) -> GgufRope:
    if plan.kept:
        raise CtxextError(
            f"llama.cpp's YaRN keys cannot carry {', '.join(sorted(plan.kept))}; extend to a Hugging Face folder"
        )
    return GgufRope("yarn", plan.factor, plan.original)


def rope_method(name: str) -> RopeMethod:
    return ROPE_REGISTRY[name]
