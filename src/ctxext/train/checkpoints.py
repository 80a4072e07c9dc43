"""Which training checkpoint ``--resume`` may trust. The Trainer writes a checkpoint's weights, optimizer and
RNG states first and ``trainer_state.json`` last, so a checkpoint is complete when that file parses and names
the checkpoint's own step; one that a kill cut short lacks it or holds half of it, and is removed.

A checkpoint also says how many processes wrote it (one RNG state each) and whether its weights are sharded: an
FSDP-sharded one (``pytorch_model_fsdp_*``, torch distributed checkpoints, which reshard on load) is read only
under FSDP, a DeepSpeed ZeRO one (``global_step*``, one optimizer shard per rank) only by as many processes."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from ..errors import CtxextError

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
        shutil.rmtree(checkpoint, ignore_errors=True)  # every process of a launch may be removing it
    return newest


def writers(checkpoint: Path) -> int:
    """How many processes wrote ``checkpoint``: the Trainer saves rng_state_<rank>.pth per process when there are
    several, rng_state.pth when there is one."""
    return len(list(checkpoint.glob("rng_state_*.pth"))) or 1


def check_resumable(checkpoint: Path, processes: int, fsdp: bool) -> None:
    """Refuse, in one line, a checkpoint this launch cannot read; warn when it can but the global batch changes."""
    wrote = writers(checkpoint)
    if any(checkpoint.glob("pytorch_model_fsdp*")) and not fsdp:
        raise CtxextError(
            f"{checkpoint} holds FSDP-sharded weights ({wrote} processes): resume under accelerate launch with an "
            "FSDP config"
        )
    zero = [p for p in checkpoint.glob("global_step*") if any(p.glob("*optim_states.pt"))]
    if zero and wrote != processes:
        raise CtxextError(
            f"{checkpoint} holds DeepSpeed ZeRO shards of {wrote} processes; this launch has {processes}: resume with "
            f"{wrote} processes (or convert it with DeepSpeed's ds_to_universal.py)"
        )
    if wrote != processes:
        log.warning(
            "%s was written by %d processes, this launch has %d: the run continues with a different global batch",
            checkpoint,
            wrote,
            processes,
        )
