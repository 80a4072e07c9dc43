"""Which training checkpoint ``--resume`` may trust. The Trainer writes a checkpoint's weights, optimizer and
RNG states first and ``trainer_state.json`` last, so a checkpoint is complete when that file parses and names
the checkpoint's own step; one that a kill cut short lacks it or holds half of it, and is removed."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)
STATE = "trainer_state.json"


def _step(checkpoint: Path) -> int:
    return int(checkpoint.name.split("-")[-1])


def is_complete(checkpoint: Path) -> bool:
    try:
        state = json.loads((checkpoint / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and state.get("global_step") == _step(checkpoint)


def resumable(folder: Path) -> Path | None:
    """The newest complete checkpoint in ``folder``; incomplete ones newer than it are removed, and said so."""
    found = [p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    newest = None
    for checkpoint in sorted(found, key=_step, reverse=True):
        if is_complete(checkpoint):
            newest = checkpoint
            break
        log.warning("removing %s: a run was cut off while writing it", checkpoint)
        shutil.rmtree(checkpoint)
    return newest
