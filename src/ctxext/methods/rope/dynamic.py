"""Dynamic NTK (emozilla 2023), as transformers computes it at input length l > L:
b' = b (s l / L - (s - 1))^(d/(d-2)); nothing changes for l <= L."""

from __future__ import annotations

import torch

from .spec import RopeMethod, default_inv_freq, refuse_gguf, register


def frequencies(
    dim: int, base: float, original: int, factor: float, seq_len: int | None = None
) -> tuple[torch.Tensor, float]:
    length = max(seq_len or original, original)
    scaled = base * (factor * length / original - (factor - 1)) ** (dim / (dim - 2))
    return default_inv_freq(dim, scaled), 1.0


METHOD = register(
    RopeMethod(
        "dynamic",
        "dynamic NTK (emozilla 2023): the base grows with the input beyond L",
        frequencies,
        hf_parameters=lambda plan: {"factor": plan.factor},
        gguf=refuse_gguf(
            "llama.cpp has no dynamic NTK scaling; choose yarn (the default), linear, ntk, llama3 or longrope "
            "for a GGUF output"
        ),
        runtimes={
            "transformers": "exact up to L; beyond, the NTK base recomputed from the input length",
            "vllm": "unscaled RoPE with a table of L positions: inputs beyond L give NaN (not for vLLM)",
            "llama.cpp": "not expressible (refused)",
        },
        length_dependent=True,
        keeps_max_position=True,
        served_by_vllm=False,
        card_note=lambda plan: (
            "Dynamic scaling recomputes frequencies from the current length; `max_position_embeddings` stays "
            f"at {plan.original} because transformers measures growth from it. Keys cached before the "
            "frequencies change are not re-rotated."
        ),
    )
)
