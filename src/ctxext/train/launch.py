"""What several processes need before ``ctxext train`` loads anything: a DeepSpeed config that exists and the
library that reads it, and a context-parallel size that divides the sequence and the processes and has the
GPUs it runs on; accelerate's ParallelismConfig for it."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from ..errors import CtxextError


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def check_launch(sequence: int, deepspeed: str | None, context_parallel: int | None) -> None:
    if deepspeed is not None:
        if not Path(deepspeed).is_file():
            raise CtxextError(f"--deepspeed {deepspeed}: no such file (a DeepSpeed JSON config)")
        if importlib.util.find_spec("deepspeed") is None:
            raise CtxextError("--deepspeed needs the deepspeed package (pip install deepspeed)")
    if context_parallel is None or context_parallel == 1:
        return
    processes = world_size()
    if sequence % context_parallel:
        raise CtxextError(f"--context-parallel {context_parallel} must divide the sequence length {sequence}")
    if processes % context_parallel:
        raise CtxextError(
            f"--context-parallel {context_parallel} must divide the number of processes ({processes}); launch with "
            f"accelerate launch --num_processes {context_parallel} (or a multiple)"
        )
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() != "true" or os.environ.get("FSDP_VERSION") != "2":
        raise CtxextError(
            "--context-parallel runs under FSDP2: launch with accelerate launch and a config with "
            "distributed_type: FSDP and fsdp_version: 2"
        )
    import torch

    if not torch.cuda.is_available():
        raise CtxextError(
            "--context-parallel splits each sequence over GPUs with torch's context_parallel on NCCL: "
            "this torch sees no CUDA device"
        )


def parallelism(context_parallel: int | None):
    """accelerate's ParallelismConfig splitting sequences over ``context_parallel`` GPUs (FSDP2 shards the rest),
    or None for plain data parallelism."""
    if context_parallel is None or context_parallel == 1:
        return None
    from accelerate import ParallelismConfig

    return ParallelismConfig(cp_size=context_parallel, dp_shard_size=world_size() // context_parallel)
