"""Doubling (the seed's ``extend-context-linear``): row 2i is E_i, row 2i+1 is (E_i + E_{i+1}) / 2 and the last
row is repeated; linear Position Interpolation at s = 2 (Chen et al. 2023, x -> x / s)."""

from __future__ import annotations

import torch

from .spec import ApeMethod, register

DOUBLING = "double"


def double_rows(rows: torch.Tensor) -> torch.Tensor:
    """Double a (L', d) block: originals on even rows, neighbour means on odd rows, last row repeated."""
    wide = rows.to(torch.float64)
    doubled = torch.empty((2 * rows.shape[0], rows.shape[1]), dtype=torch.float64, device=rows.device)
    doubled[0::2] = wide
    doubled[1:-1:2] = (wide[:-1] + wide[1:]) / 2
    doubled[-1] = wide[-1]
    out = doubled.to(rows.dtype)
    out[0::2] = rows
    return out


register(
    ApeMethod(
        DOUBLING,
        "doubling: originals on even rows, neighbour means between (2x only)",
        lambda rows, new_rows, keep_first: double_rows(rows),
        doubles=True,
    )
)
