"""The eval grid split across processes started by ``accelerate launch``: each process measures every
N-th method (on its own GPU: ``--device auto`` reads the launcher's LOCAL_RANK), the main process gathers
the rows in the order asked and writes the one results file, identical to a one-process run's. One process
(no launcher): nothing changes.
"""

from __future__ import annotations

import os


def _state():
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())  # CPU processes talk over gloo


def is_main() -> bool:
    state = _state()
    return state is None or state.is_main_process


def my_share(methods: list[str]) -> list[str]:
    state = _state()
    return methods if state is None else methods[state.process_index :: state.num_processes]


def gathered(rows: dict, methods: list[str]) -> dict:
    """Every process's rows, merged on all of them, in the order of ``methods``."""
    state = _state()
    if state is None:
        return rows
    from accelerate.utils import gather_object

    merged: dict = {}
    for part in gather_object([rows]):
        merged.update(part)
    return {label: merged[label] for label in methods if label in merged}
