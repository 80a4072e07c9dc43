"""Curves through the old rows, evaluated at new coordinates: the rows L' are d one-dimensional signals on the
knots 0..L'-1 and are evaluated at N' new coordinates (scipy, vectorised over all d columns at once).

* seed convention (context-extension, Danylenko 2025): new row j sits at j (L'-1) / (N'-1), so the first and
  last rows are kept and everything in between moves;
* keep-first K ("by-parts"): rows j < K are the original rows, bit for bit, and rows K..N'-1 sit at
  K + (j - K)(L'-1-K) / (N'-1-K), so only positions beyond K are compressed.

``linear``, ``quadratic`` and ``cubic`` are interpolating B-splines of degree 1, 2, 3 with not-a-knot ends, as
``interp1d(kind=...)``; ``pchip`` (Fritsch-Carlson) and ``akima`` / ``makima`` are piecewise cubics that never
overshoot between two knots.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
from scipy.interpolate import Akima1DInterpolator, PchipInterpolator, make_interp_spline

from .spec import ApeMethod, register

SPLINE_DEGREE = {"linear": 1, "quadratic": 2, "cubic": 3}
MONOTONE = ("pchip", "akima", "makima")
INTERPOLANTS = (*SPLINE_DEGREE, *MONOTONE)


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


def _resample(kind: str, rows: torch.Tensor, new_rows: int, keep_first: int) -> torch.Tensor:
    return interpolate_rows(rows, new_rows, kind, keep_first)


TITLES = {
    "linear": "piecewise-linear interpolation (B-spline of degree 1)",
    "quadratic": "interpolating quadratic B-spline, not-a-knot ends",
    "cubic": "interpolating cubic B-spline, not-a-knot ends (the seed package's spline)",
    "pchip": "PCHIP (Fritsch-Carlson): monotone piecewise cubic, no overshoot between knots",
    "akima": "Akima's piecewise cubic: no overshoot between knots",
    "makima": "modified Akima: no overshoot between knots, flat runs kept flat",
}
for _kind in INTERPOLANTS:
    register(ApeMethod(_kind, TITLES[_kind], partial(_resample, _kind)))
