"""The eval grid split across processes started by ``accelerate launch``: each process measures every
N-th method (on its own GPU: ``--device auto`` reads the launcher's LOCAL_RANK), the main process gathers
the rows in the order asked and writes the one results file, identical to a one-process run's. One process
(no launcher): nothing changes.

A process that finishes its methods first waits in the gather for the slowest, which may measure for hours (a
70B model at 128k): the process group is started with a timeout of a year, not torch's default ten minutes
after which the waiting process would die and the others' rows be lost. A process that fails ends the run
through the launcher, not through the timeout.
"""

from __future__ import annotations

import datetime
import os

GATHER_TIMEOUT = datetime.timedelta(days=365)


def _state():
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available(), timeout=GATHER_TIMEOUT)  # CPU processes: gloo


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
