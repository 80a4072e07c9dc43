"""Index maps that need no interpolation (LongEmbed, Zhu et al. 2024), written as plain tables so that any loader
reproduces them: ``group`` (grouped positions, row j = E_floor(j L' / N')) and ``tile`` (recurrent positions,
row j = E_(j mod L'), as Longformer initialises its table; the first L' rows are the original ones, so inputs
within the window are unchanged)."""

from __future__ import annotations

import torch

from .spec import ApeMethod, register

INDEX_MAPS = ("group", "tile")


def index_map_rows(rows: torch.Tensor, new_rows: int, kind: str) -> torch.Tensor:
    """Rows picked by index: ``group`` repeats each row N'/L' times, ``tile`` repeats the whole block."""
    old_rows = rows.shape[0]
    positions = torch.arange(new_rows, device=rows.device)
    index = positions * old_rows // new_rows if kind == "group" else positions % old_rows
    return rows[index].clone()


register(
    ApeMethod(
        "group",
        "grouped positions: each old row repeated N'/L' times",
        lambda rows, new_rows, keep_first: index_map_rows(rows, new_rows, "group"),
    )
)
register(
    ApeMethod(
        "tile",
        "recurrent positions: the whole table repeated (inputs within the window unchanged)",
        lambda rows, new_rows, keep_first: index_map_rows(rows, new_rows, "tile"),
    )
)
