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


def input_device(model) -> torch.device:
    """Where the model's input ids belong: its input embedding's device (under a device map, ``model.device`` is
    only the first parameter's)."""
    return model.get_input_embeddings().weight.device


@torch.inference_mode()
def last_hidden(model, inputs: torch.Tensor) -> torch.Tensor:
    """The final hidden states (n, hidden) of one sequence, with no KV cache (a scoring forward never reuses one)."""
    return model.base_model(input_ids=inputs.unsqueeze(0).to(input_device(model)), use_cache=False).last_hidden_state[0]


def head_logits(model, rows: torch.Tensor) -> torch.Tensor:
    """fp32 next-token logits of some hidden-state rows, softcapped where the model's config says so."""
    logits = model.get_output_embeddings()(rows).float()
    if getattr(model.config, "final_logit_softcapping", None):
        cap = model.config.final_logit_softcapping
        logits = torch.tanh(logits / cap) * cap
    return logits


@torch.inference_mode()
def window_nll(model, ids: torch.Tensor, window: Window, chunk_rows: int = 1024) -> torch.Tensor:
    """Per-target negative log-likelihood (float64) of the window's scored targets; targets meet the logits on
    the device the output head put them on."""
    hidden = last_hidden(model, ids[window.start : window.end])
    offset = window.score_from - 1 - window.start  # row of the hidden state that predicts score_from
    targets = ids[window.score_from : window.end + 1]
    losses = []
    for start in range(0, len(targets), chunk_rows):
        logits = head_logits(model, hidden[offset + start : offset + start + chunk_rows])
        wanted = targets[start : start + len(logits)].to(logits.device)
        losses.append(F.cross_entropy(logits, wanted, reduction="none").cpu().double())
    return torch.cat(losses)
