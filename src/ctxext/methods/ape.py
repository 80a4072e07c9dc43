"""Resampling of learned absolute position tables (BERT-, RoBERTa-, GPT-2-style).

A table E has rows 0..L-1. Rows [0, pinned) are not positions on the curve (RoBERTa's two reserved
rows, optionally BERT's [CLS] row) and are copied. The remaining L' = L - pinned rows are treated as
d one-dimensional signals on the knots 0..L'-1 and evaluated at N' new coordinates:

* seed convention (context-extension, Danylenko 2025): new row j sits at j (L'-1) / (N'-1), so the
  first and last rows are kept and everything in between moves;
* keep-first K ("by-parts"): rows j < K are the original rows, bit for bit, and rows K..N'-1 sit at
  K + (j - K)(L'-1-K) / (N'-1-K), so only positions beyond K are compressed;
* doubling (the seed's ``extend-context-linear``): row 2i is E_i, row 2i+1 is (E_i + E_{i+1}) / 2 and
  the last row is repeated; linear Position Interpolation at s = 2 (Chen et al. 2023, x -> x / s).

Index maps that need no interpolation (LongEmbed, Zhu et al. 2024, written as plain tables so that
any loader reproduces them): ``group`` (grouped positions, row j = E_floor(j L' / N')) and ``tile``
(recurrent positions, row j = E_(j mod L'), as Longformer initialises its table; the first L' rows are
the original ones, so inputs within the window are unchanged).

Interpolants (scipy, vectorised over all d columns at once): ``linear``, ``quadratic`` and ``cubic``
are interpolating B-splines of degree 1, 2, 3 with not-a-knot ends, as ``interp1d(kind=...)``;
``pchip`` (Fritsch-Carlson) and ``akima`` / ``makima`` are piecewise cubics that never overshoot
between two knots.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.interpolate import Akima1DInterpolator, PchipInterpolator, make_interp_spline

SPLINE_DEGREE = {"linear": 1, "quadratic": 2, "cubic": 3}
MONOTONE = ("pchip", "akima", "makima")
INTERPOLANTS = (*SPLINE_DEGREE, *MONOTONE)
DOUBLING = "double"
INDEX_MAPS = ("group", "tile")
APE_METHODS = (*INTERPOLANTS, DOUBLING, *INDEX_MAPS)


def sample_coordinates(old_rows: int, new_rows: int, keep_first: int = 0) -> np.ndarray:
    """Old-table coordinates (float64) at which the ``new_rows`` new rows are evaluated."""
    if keep_first <= 0 or new_rows <= 1:
        return np.linspace(0.0, old_rows - 1, new_rows)
    head = np.arange(keep_first, dtype=np.float64)
    tail = np.linspace(keep_first, old_rows - 1, new_rows - keep_first)
    return np.concatenate([head, tail])


def _interpolant(kind: str, knots: np.ndarray, values: np.ndarray):
    if kind in SPLINE_DEGREE:
        return make_interp_spline(knots, values, k=SPLINE_DEGREE[kind], axis=0)
    if kind == "pchip":
        return PchipInterpolator(knots, values, axis=0)
    if kind in ("akima", "makima"):
        return Akima1DInterpolator(knots, values, axis=0, method=kind)
    raise ValueError(f"unknown interpolant {kind!r}; expected one of {', '.join(INTERPOLANTS)}")


def interpolate_rows(rows: torch.Tensor, new_rows: int, kind: str = "cubic", keep_first: int = 0) -> torch.Tensor:
    """Resample a (L', d) block of position rows to (N', d) with one vectorised scipy call.

    Computed in float64 and cast back to the input's dtype and device. The first ``keep_first`` rows
    are copied from the input so that they are bit-identical, not merely close.
    """
    old_rows = rows.shape[0]
    if new_rows == old_rows and keep_first in (0, old_rows):
        return rows.clone()
    if not 0 <= keep_first < min(old_rows, new_rows):
        raise ValueError(f"keep_first={keep_first} must be below both {old_rows} and {new_rows}")
    values = rows.detach().to("cpu", torch.float64).numpy()
    curve = _interpolant(kind, np.arange(old_rows, dtype=np.float64), values)
    resampled = torch.from_numpy(curve(sample_coordinates(old_rows, new_rows, keep_first)))
    resampled = resampled.to(rows.dtype).to(rows.device)
    resampled[:keep_first] = rows[:keep_first]
    return resampled


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


def index_map_rows(rows: torch.Tensor, new_rows: int, kind: str) -> torch.Tensor:
    """Rows picked by index: ``group`` repeats each row N'/L' times, ``tile`` repeats the whole block."""
    old_rows = rows.shape[0]
    positions = torch.arange(new_rows, device=rows.device)
    index = positions * old_rows // new_rows if kind == "group" else positions % old_rows
    return rows[index].clone()


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
    head, body = table[:pinned], table[pinned:]
    if source_rows is not None:
        body = body[:source_rows]
    if method == DOUBLING:
        if new_rows - pinned != 2 * body.shape[0]:
            raise ValueError(f"doubling gives {pinned + 2 * body.shape[0]} rows, not {new_rows}")
        new_body = double_rows(body)
    elif method in INDEX_MAPS:
        new_body = index_map_rows(body, new_rows - pinned, method)
    else:
        new_body = interpolate_rows(body, new_rows - pinned, method, keep_first)
    return torch.cat([head, new_body], dim=0)
