"""What an extension does to short inputs.

Encoders: cosine between the original and the extended embedding of the same short text.
Decoders: on short windows, the perplexity before and after and the mean per-token KL divergence
KL(p_original || p_extended) of the next-token distributions.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from ..registry import Task, TaskInput, register


@torch.inference_mode()
def next_token_logprobs(model, ids: torch.Tensor) -> torch.Tensor:
    return F.log_softmax(model(input_ids=ids.unsqueeze(0).to(model.device)).logits[0].float(), dim=-1).cpu()


def decoder_windows(ids: torch.Tensor, window: int, count: int) -> list[torch.Tensor]:
    usable = len(ids) // window
    step = max(usable // count, 1)
    return [ids[i * window : (i + 1) * window] for i in range(0, usable, step)][:count]


def decoder_drift(before: list[torch.Tensor], after: list[torch.Tensor], windows: list[torch.Tensor]) -> dict:
    """Per-token mean KL and both perplexities from log-probabilities computed on the same windows."""
    kl, nll_before, nll_after, tokens = 0.0, 0.0, 0.0, 0
    for p, q, ids in zip(before, after, windows, strict=True):
        kl += (p.exp() * (p - q)).sum(-1)[:-1].sum().item()
        targets = ids[1:]
        nll_before -= p[:-1].gather(-1, targets.unsqueeze(-1)).sum().item()
        nll_after -= q[:-1].gather(-1, targets.unsqueeze(-1)).sum().item()
        tokens += len(targets)
    return {
        "kl": kl / tokens,
        "ppl_before": math.exp(nll_before / tokens),
        "ppl_after": math.exp(nll_after / tokens),
        "tokens": tokens,
    }


def _drift_texts(loaded, text) -> list[str]:
    from ...texts import default_short_texts

    return default_short_texts() if not text else [t for t in text.split("\n\n") if t.strip()][:64]


def drift_baseline(loaded, lengths, text, ids) -> dict:
    """What the unextended model gives on the short inputs, computed before any method is applied."""
    if loaded.kind == "encoder":
        return {"embeddings": loaded.embedder.encode(_drift_texts(loaded, text))}
    windows = {length: decoder_windows(ids, length, 8) for length in lengths}
    return {
        "windows": windows,
        "logprobs": {length: [next_token_logprobs(loaded.model, w) for w in ws] for length, ws in windows.items()},
    }


def _drift(loaded, baseline, lengths, text) -> dict:
    if loaded.kind == "encoder":
        from ...encoders.embed import drift

        return {"short": drift(baseline["embeddings"], loaded.embedder.encode(_drift_texts(loaded, text)))}
    rows = {}
    for length in lengths:
        windows = baseline["windows"][length]
        after = [next_token_logprobs(loaded.model, w) for w in windows]
        rows[length] = decoder_drift(baseline["logprobs"][length], after, windows)
    return rows


def _prepare(inp: TaskInput) -> dict:
    return drift_baseline(inp.loaded, inp.lengths, inp.text, inp.ids)


def _run(inp: TaskInput, label: str, mode: str) -> dict:
    return _drift(inp.loaded, inp.baseline, inp.lengths, inp.text)


register(Task("drift", "any", _run, needs_data=True, prepare=_prepare))
