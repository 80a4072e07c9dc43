"""Scoring windows: which input tokens predict which targets, and the targets' loss computed in chunks of rows.

A window of C input tokens x[i-C:i] predicts x[i-C+1:i+1]; :func:`windows` lays windows of one length over a
scored region so that every target in it is scored exactly once, and :func:`window_nll` computes their loss
from hidden states a chunk of rows at a time, so the full-vocabulary logits of a long window never exist at
once (:mod:`ctxext.eval.tasks.ppl` explains the scoring rule).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from .errors import CtxextError


@dataclass(frozen=True)
class Window:
    start: int  # first input token
    end: int  # one past the last input token
    score_from: int  # first scored target position (targets run to ``end`` inclusive)

    @property
    def targets(self) -> range:
        return range(self.score_from, self.end + 1)


def windows(length: int, stride: int, first: int, last: int) -> list[Window]:
    """Windows of ``length`` input tokens scoring every target in [first, last) exactly once."""
    if not 0 < stride <= length:
        raise CtxextError(f"stride {stride} must be between 1 and the window length {length}")
    if first - 1 < length - stride:
        raise CtxextError(f"the first scored token ({first}) leaves too little room for a {length}-token window")
    planned = []
    for q in range(first, last, stride):
        r = min(q + stride, last)  # targets [q, r)
        planned.append(Window(start=r - 1 - length, end=r - 1, score_from=q))
    return planned


def scored_region(n_tokens: int, lengths: list[int], stride: int) -> tuple[int, int]:
    first = max(lengths) + 1 - stride
    if first >= n_tokens:
        raise CtxextError(
            f"the text has {n_tokens} tokens; {max(lengths) + 1} are needed for a {max(lengths)}-token window"
        )
    return first, n_tokens


@torch.inference_mode()
def window_nll(model, ids: torch.Tensor, window: Window, chunk_rows: int = 1024) -> torch.Tensor:
    """Per-target negative log-likelihood (float64) of the window's scored targets."""
    inputs = ids[window.start : window.end].unsqueeze(0).to(model.device)
    hidden = model.base_model(input_ids=inputs).last_hidden_state[0]
    offset = window.score_from - 1 - window.start  # row of the hidden state that predicts score_from
    targets = ids[window.score_from : window.end + 1].to(model.device)
    losses = []
    head = model.get_output_embeddings()
    for start in range(0, len(targets), chunk_rows):
        rows = hidden[offset + start : offset + start + chunk_rows]
        logits = head(rows).float()
        if getattr(model.config, "final_logit_softcapping", None):
            cap = model.config.final_logit_softcapping
            logits = torch.tanh(logits / cap) * cap
        losses.append(F.cross_entropy(logits, targets[start : start + len(rows)], reduction="none").double())
    return torch.cat(losses).cpu()
