"""What a resampling method of a learned absolute position table (BERT-, RoBERTa-, GPT-2-style) is to ctxext.

A table E has rows 0..L-1. Rows [0, pinned) are not positions on the curve (RoBERTa's two reserved rows,
optionally BERT's [CLS] row) and are copied. The remaining L' = L - pinned rows are resampled to N' rows by
the method's ``resample(rows, new_rows, keep_first)``: rows j < keep_first are the original rows, bit for bit,
for the methods that take ``keep_first``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ...registries import add

Resample = Callable[[torch.Tensor, int, int], torch.Tensor]  # (rows L' x d, new rows N', keep_first) -> N' x d


@dataclass(frozen=True)
class ApeMethod:
    name: str
    title: str
    resample: Resample
    doubles: bool = False  # N' must be 2 L' (the seed's extend-context-linear)


APE_REGISTRY: dict[str, ApeMethod] = {}


def register(method: ApeMethod) -> ApeMethod:
    return add(APE_REGISTRY, method.name, method, "a table method")


def resample_table(
    table: torch.Tensor,
    new_rows: int,
    method: str = "cubic",
    pinned: int = 0,
    keep_first: int = 0,
    source_rows: int | None = None,
) -> torch.Tensor:
    """Resample a whole (L, d) table to ``new_rows`` rows; rows [0, pinned) are copied unchanged.

    ``source_rows`` limits the curve to the first rows after the pinned ones (the part of the table that
    training actually reached). Returns ``table`` itself when nothing would change.
    """
    if new_rows == table.shape[0] and source_rows is None:
        return table
    if method not in APE_REGISTRY:
        raise ValueError(f"unknown table method {method!r}; expected one of {', '.join(APE_REGISTRY)}")
    spec = APE_REGISTRY[method]
    head, body = table[:pinned], table[pinned:]
    if source_rows is not None:
        body = body[:source_rows]
    if spec.doubles and new_rows - pinned != 2 * body.shape[0]:
        raise ValueError(f"doubling gives {pinned + 2 * body.shape[0]} rows, not {new_rows}")
    return torch.cat([head, spec.resample(body, new_rows - pinned, keep_first)], dim=0)
