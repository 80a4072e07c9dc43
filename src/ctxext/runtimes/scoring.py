"""The reference every runtime is held to: the summed log-loss of given tokens in plain transformers."""

from __future__ import annotations

from pathlib import Path

import torch


def score_transformers(model, tokens: list[int], score_from: int) -> dict:
    """Summed NLL of targets ``score_from..`` with plain transformers (float32, sdpa), loss in row chunks.
    ``model`` is a folder, or a model already loaded (a GGUF with a plan applied in memory)."""
    import time

    from transformers import AutoModelForCausalLM

    from ..windows import Window, window_nll

    started = time.perf_counter()
    if isinstance(model, str | Path):
        model = AutoModelForCausalLM.from_pretrained(str(model), dtype=torch.float32, attn_implementation="sdpa")
    ids = torch.tensor(tokens)
    nll = window_nll(model.eval(), ids, Window(start=0, end=len(tokens) - 1, score_from=score_from))
    total = float(nll.sum())
    finite = bool(torch.isfinite(nll).all())
    return {
        "nll": total if finite else None,
        "count": len(nll),
        "finite": finite,
        "seconds": time.perf_counter() - started,
    }
