"""Token-weighted perplexity at several context lengths on the same scored tokens.

A window of C input tokens x[i-C:i] predicts the C tokens x[i-C+1:i+1]. For a stride S <= C and a
scored region [a, b) of target positions, blocks [q, q+S) are scored one after the other, each from a
window that ends just before its last target; so every target in [a, b) is scored exactly once per
length, with at least C - S tokens of context. ``a = max(C) + 1 - S`` lets the longest window fit, so
all lengths score the same targets (REFERENCE D7). Perplexity is exp of the mean NLL over tokens, not
over windows.
"""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from ...windows import scored_region, window_nll, windows
from ..registry import Task, TaskInput, register


def perplexity(
    model,
    ids: torch.Tensor,
    lengths: list[int],
    stride: int | None = None,
    bucket: int | None = None,
    progress=None,
    nll=None,
) -> dict[int, dict]:
    """results[length] = {ppl, nll, tokens, windows, buckets: [{from, to, ppl, tokens}]} on the same targets.
    ``nll(window)`` gives the per-target losses another way (another runtime); default: ``model`` here."""
    lengths = sorted(set(int(x) for x in lengths))
    stride = stride or min(lengths)
    first, last = scored_region(len(ids), lengths, stride)
    bucket = bucket or max(min(lengths) // 4, 1)
    results = {}
    for length in lengths:
        total, count, by_bucket = 0.0, 0, {}
        plan = windows(length, stride, first, last)
        for window in plan:
            losses = nll(window) if nll else window_nll(model, ids, window)
            total += losses.sum().item()
            count += len(losses)
            context = torch.arange(window.score_from, window.end + 1) - 1 - window.start  # position in window
            for key in (context // bucket).unique().tolist():
                mask = context // bucket == key
                s, c = by_bucket.get(key, (0.0, 0))
                by_bucket[key] = (s + losses[mask].sum().item(), c + int(mask.sum()))
            if progress:
                progress(length, len(losses))
        results[length] = {
            "ppl": math.exp(total / count),
            "nll": total / count,
            "tokens": count,
            "windows": len(plan),
            "scored": [first, last],
            "stride": stride,
            "buckets": [
                {"from": k * bucket, "to": (k + 1) * bucket, "ppl": math.exp(s / c), "tokens": c}
                for k, (s, c) in sorted(by_bucket.items())
            ],
        }
    return results


def _run(inp: TaskInput, label: str, mode: str) -> dict:
    stride = inp.options.get("stride") or min(inp.lengths)
    first, last = scored_region(len(inp.ids), inp.lengths, stride)
    total = sum(len(windows(length, stride, first, last)) for length in inp.lengths)
    with tqdm(total=total, desc=f"ppl {label}", unit="window") as bar:
        return perplexity(
            inp.loaded.model,
            inp.ids,
            inp.lengths,
            stride=stride,
            bucket=max(inp.loaded.context // 4, 1),
            progress=lambda length, tokens: bar.update(),
        )


register(Task("ppl", "decoder", _run, backends=("transformers", "vllm"), needs_data=True, main_metric="ppl"))
