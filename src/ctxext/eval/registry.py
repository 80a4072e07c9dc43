"""The evaluation tasks, one entry each: which models a task takes, which backends run it, whether it reads
``--data``, its main metric, and the function that measures one method at every length. A task registers itself
in its own file under :mod:`ctxext.eval.tasks` (as lm-evaluation-harness registers its tasks); ``ctxext eval``'s
choices and the dispatch come from here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..registries import add


@dataclass
class TaskInput:
    """What a task measures on: the loaded model, the lengths, the text and its tokens, and the task options
    (stride, depths, trials, batch, subtasks, jsonl, count, samples, seed, chat). A task that measures in cells
    may keep the rows an earlier cut-off run of this method finished (``earlier``, by length) and pass its rows
    so far to ``report`` after each cell, which saves them."""

    loaded: object
    lengths: list[int]
    to: int
    text: str | None
    ids: object
    options: dict = field(default_factory=dict)
    baseline: dict | None = None
    earlier: dict | None = None
    report: Callable[[dict], None] | None = None


@dataclass(frozen=True)
class Task:
    name: str
    kind: str  # "decoder", "encoder" or "any"
    run: Callable[[TaskInput, str, str], dict]  # (input, method label, mode) -> rows by length
    backends: tuple[str, ...] = ("transformers",)
    needs_data: bool = False
    main_metric: str | None = None
    prepare: Callable[[TaskInput], dict] | None = None  # before any method: what the unextended model gives
    summarize: Callable[[dict, dict], dict] | None = None  # (rows by method, the results record) -> summary
    check: Callable[[dict, bool], None] | None = None  # (options, whether --data was given): refuse before work


TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    return add(TASKS, task.name, task, "an eval task")
