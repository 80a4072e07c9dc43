"""The reference every runtime is held to: the summed log-loss of given tokens in plain transformers."""

from __future__ import annotations

from pathlib import Path

import torch

from ..placement import Placement


def score_transformers(model, tokens: list[int], score_from: int, place: Placement | None = None) -> dict:
    """Summed NLL of targets ``score_from..`` with plain transformers, loss in row chunks. ``model`` is a folder,
    loaded as ``place`` says (default float32 on the CPU, sdpa), or a model already loaded (a GGUF with a plan
    applied in memory)."""
    import time

    from transformers import AutoModelForCausalLM

    from ..windows import Window, window_nll

    started = time.perf_counter()
    if isinstance(model, str | Path):
        model = AutoModelForCausalLM.from_pretrained(str(model), **(place or Placement()).load_kwargs())
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
