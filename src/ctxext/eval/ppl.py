"""Token-weighted perplexity at several context lengths on the same scored tokens.

A window of C input tokens x[i-C:i] predicts the C tokens x[i-C+1:i+1]. For a stride S <= C and a
scored region [a, b) of target positions, blocks [q, q+S) are scored one after the other, each from a
window that ends just before its last target; so every target in [a, b) is scored exactly once per
length, with at least C - S tokens of context. ``a = max(C) + 1 - S`` lets the longest window fit, so
all lengths score the same targets (REFERENCE D7). Perplexity is exp of the mean NLL over tokens, not
over windows. The loss is computed from hidden states in chunks of rows, so the full-vocabulary logits
of a long window never exist at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from ..errors import CtxextError


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


def hub_dataset_text(name: str) -> str:
    """The 'text' column of a Hugging Face dataset, named explicitly as ``hf:org/name`` or ``hf:org/name:split``
    (any other missing path is an error, never a network request)."""
    if not name.startswith("hf:"):
        raise CtxextError(f"no such file or folder: {name} (a Hugging Face dataset is named hf:org/name)")
    name = name.removeprefix("hf:")
    try:
        import datasets
    except ImportError:
        raise CtxextError(f"no such file or folder: {name} (dataset names need `pip install datasets`)") from None
    dataset_name, _, split = name.partition(":")
    try:
        rows = datasets.load_dataset(dataset_name, split=split or "test")
    except Exception as exc:  # noqa: BLE001 - any hub or network failure is one line for the user
        raise CtxextError(f"no such file or folder, and no reachable dataset: {name} ({type(exc).__name__})") from None
    if "text" not in rows.column_names:
        raise CtxextError(f"dataset {name} has no 'text' column ({', '.join(rows.column_names)})")
    return "\n\n".join(rows["text"])


def read_corpus(paths: list[str | Path]) -> str:
    """Text of files and of the .txt / .md files inside folders, joined by blank lines."""
    texts = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix in (".txt", ".md"))
        elif path.is_file():
            files = [path]
        else:
            texts.append(hub_dataset_text(str(raw)))
            continue
        for file in files:
            try:
                texts.append(file.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError) as exc:
                raise CtxextError(f"cannot read {file}: {exc}") from None
    text = "\n\n".join(t for t in texts if t.strip())
    if not text.strip():
        raise CtxextError(f"no text in {', '.join(str(p) for p in paths)}")
    return text
