"""What an extension does to short inputs.

Encoders: cosine between the original and the extended embedding of the same short text.
Decoders: on short windows, the perplexity before and after and the mean per-token KL divergence
KL(p_original || p_extended) of the next-token distributions.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from ...windows import head_logits, last_hidden
from ..registry import Task, TaskInput, register

CHUNK_ROWS = 1024  # next-token distributions held at once: never a window's full-vocabulary log-probabilities


def decoder_windows(ids: torch.Tensor, window: int, count: int) -> list[torch.Tensor]:
    usable = len(ids) // window
    step = max(usable // count, 1)
    return [ids[i * window : (i + 1) * window] for i in range(0, usable, step)][:count]


def drift_sums(p: torch.Tensor, q: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """[summed KL(p || q), NLL under p, NLL under q] of rows of log-probabilities predicting ``targets``."""
    targets = targets.to(p.device).unsqueeze(-1)
    kl = (p.exp() * (p - q)).sum(-1).sum()
    return torch.stack([kl, -p.gather(-1, targets).sum(), -q.gather(-1, targets).sum()]).cpu().double()


def drift_row(sums: torch.Tensor, tokens: int) -> dict:
    kl, nll_before, nll_after = sums.tolist()
    return {
        "kl": kl / tokens,
        "ppl_before": math.exp(nll_before / tokens),
        "ppl_after": math.exp(nll_after / tokens),
        "tokens": tokens,
    }


def decoder_drift(before: list[torch.Tensor], after: list[torch.Tensor], windows: list[torch.Tensor]) -> dict:
    """Per-token mean KL and both perplexities from log-probabilities computed on the same windows."""
    sums = sum(drift_sums(p[:-1], q[:-1], ids[1:]) for p, q, ids in zip(before, after, windows, strict=True))
    return drift_row(sums, sum(len(ids) - 1 for ids in windows))


@torch.inference_mode()
def chunked_drift(model, before: list[torch.Tensor], windows: list[torch.Tensor]) -> dict:
    """:func:`decoder_drift` from the final hidden states before (held on the CPU) and the model as it is now,
    ``CHUNK_ROWS`` next-token distributions at a time."""
    sums, tokens = torch.zeros(3, dtype=torch.float64), 0
    for hidden_before, ids in zip(before, windows, strict=True):
        hidden_after = last_hidden(model, ids)
        for start in range(0, len(ids) - 1, CHUNK_ROWS):
            rows = slice(start, min(start + CHUNK_ROWS, len(ids) - 1))
            after = head_logits(model, hidden_after[rows])
            p = F.log_softmax(head_logits(model, hidden_before[rows].to(after.device)), dim=-1)
            sums += drift_sums(p, F.log_softmax(after, dim=-1), ids[rows.start + 1 : rows.stop + 1])
        tokens += len(ids) - 1
    return drift_row(sums, tokens)


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
        "hidden": {length: [last_hidden(loaded.model, w).cpu() for w in ws] for length, ws in windows.items()},
    }


def _drift(loaded, baseline, lengths, text) -> dict:
    if loaded.kind == "encoder":
        from ...encoders.embed import drift

        return {"short": drift(baseline["embeddings"], loaded.embedder.encode(_drift_texts(loaded, text)))}
    rows = {}
    for length in lengths:
        rows[length] = chunked_drift(loaded.model, baseline["hidden"][length], baseline["windows"][length])
    return rows


def _prepare(inp: TaskInput) -> dict:
    return drift_baseline(inp.loaded, inp.lengths, inp.text, inp.ids)


def _run(inp: TaskInput, label: str, mode: str) -> dict:
    return _drift(inp.loaded, inp.baseline, inp.lengths, inp.text)


register(Task("drift", "any", _run, needs_data=True, prepare=_prepare))
