"""Run evaluation tasks over methods and lengths; one results dict, rows keyed by task, method, length.

Tasks: ``ppl`` and ``passkey`` (decoders), ``retrieval`` (encoders), ``drift`` (both).
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import replace
from pathlib import Path

import torch

from ..decoders.long_attention import parameters_of
from ..errors import CtxextError, did_you_mean
from ..formats.provenance import versions
from ..memory import cost
from ..placement import Placement
from .models import LoadedModel, check_label, load_model, variant
from .processes import gathered, is_main, my_share
from .registry import TASKS, TaskInput
from .results_file import resumable, write_results  # noqa: F401  (write_results: part of this module's API)
from .tasks import drift, passkey, ppl, retrieval, ruler  # noqa: F401  (each file registers its task)

log = logging.getLogger(__name__)


def _check(task: str, loaded: LoadedModel) -> None:
    wanted = TASKS[task].kind
    if wanted != "any" and wanted != loaded.kind:
        raise CtxextError(
            f"task {task!r} is for {wanted}s; {loaded.path} is an {loaded.kind}"
            if loaded.kind == "encoder"
            else f"task {task!r} is for {wanted}s; {loaded.path} is a {loaded.kind}"
        )


def _check_lengths(loaded: LoadedModel, lengths: list[int], methods: list[str]) -> None:
    if not lengths or any(length <= 0 for length in lengths):
        raise CtxextError("give positive --lengths")
    if loaded.kind == "decoder" and "native" in methods and max(lengths) > loaded.window:
        raise CtxextError(
            f"length {max(lengths)} is above the {loaded.window} tokens the model takes without "
            "extension; add a method (--methods yarn,...) or 'none' to measure it unextended anyway"
        )


def evaluate(
    model_path: str,
    task: str,
    lengths: list[int],
    data: list[str] | None = None,
    methods: list[str] | None = None,
    to: int | None = None,
    *,
    stride: int | None = None,
    max_tokens: int | None = None,
    depths: list[float] | None = None,
    trials: int = 2,
    subtasks: list[str] | None = None,
    jsonl: str | None = None,
    count: int = 16,
    place: Placement | None = None,
    backend: str = "transformers",
    engine: dict | None = None,
    resume: dict | None = None,
    save=None,
    **task_options,
) -> dict:
    """Run ``task`` for each method at each length; ``backend`` "vllm" measures ppl / passkey in vLLM
    (``engine``: its ``tensor_parallel``, ``batch``, ``gpu_memory_utilization``, and ``dtype``, by default
    ``place``'s), else transformers runs it here, placed by ``place``.
    ``save(record)`` is called after each method, and after each cell of a task that measures in cells (RULER's
    subtask at one length), so a cut-off run keeps what it finished; ``resume`` (an earlier results file of the
    same settings) supplies the methods it finished and the cells of the one it was cut off in."""
    if task not in TASKS:
        raise CtxextError(f"unknown task {task!r}{did_you_mean(task, TASKS)}; choose from {', '.join(TASKS)}")
    if backend not in ("transformers", "vllm"):
        raise CtxextError(f"unknown backend {backend!r}{did_you_mean(backend, ['transformers', 'vllm'])}")
    place = place or Placement()
    engine = {"dtype": str(place.dtype).removeprefix("torch."), **(engine or {})}  # vLLM computes as --dtype says
    lengths = sorted(set(int(x) for x in lengths))
    options = {"stride": stride, "max_tokens": max_tokens, "depths": depths or [0.1, 0.5, 0.9], "trials": trials}
    options["batch"] = engine.get("batch", 1)
    options.update(task_options, subtasks=subtasks, jsonl=jsonl)
    if TASKS[task].check:
        TASKS[task].check(options, bool(data))
    if backend == "vllm":
        from ..texts import read_corpus
        from .backend_vllm import check_backend_input, vllm_measure

        check_backend_input(Path(model_path), task)
        if task == "ppl" and not data:
            raise CtxextError("task 'ppl' needs text: pass --data FILE [FILE ...]")
        methods, to = methods or ["native"], to or max(lengths)
        for label in methods:
            check_label("decoder", label)
        text = read_corpus(data) if data else None
        measure, context = vllm_measure(Path(model_path), task, lengths, to, text, options, engine)
        kind = "decoder"
    else:
        loaded = load_model(model_path, place)
        _check(task, loaded)
        methods = methods or (["native"] if loaded.kind == "decoder" else ["truncate", "chunk"])
        for label in methods:
            check_label(loaded.kind, label)
        _check_lengths(loaded, lengths, methods)
        to = to or max(lengths)
        measure = _measure_here(task, loaded, lengths, to, data, options, subtasks, jsonl, count)
        kind, context = loaded.kind, loaded.context
    record = {
        "config": {
            "task": task,
            "lengths": lengths,
            "methods": methods,
            "to": to,
            "stride": stride,
            "max_tokens": max_tokens,
            "depths": depths,
            "trials": trials,
            "data": data,
            "subtasks": subtasks,
            "jsonl": jsonl,
            "backend": backend,
            "engine": engine,
            "attention": parameters_of(methods, context, to) if kind == "decoder" else {},
            **task_options,
        },
        "model": model_path,
        "placement": place.describe() if backend == "transformers" else None,
        "kind": kind,
        "original_context": context,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "versions": versions(),
        "results": {task: {}},
    }
    done, unfinished = resumable(resume, record) if resume else ({}, {})
    rows, costs, finished = record["results"][task], record.setdefault("costs", {}), []

    def keep(partial: bool) -> None:
        if save and is_main():
            save({**record, "finished": list(finished), "complete": not partial and len(finished) == len(methods)})

    for label in my_share(methods):
        if label in done:
            log.info("%s: kept from the results file", label)
            rows[label], costs[label] = done[label], (resume.get("costs") or {}).get(label)
        else:

            def report(so_far: dict, label: str = label) -> None:
                rows[label] = so_far
                keep(partial=True)

            with cost() as costs[label]:  # seconds and peak GPU memory of this method, every length together
                rows[label] = measure(label, unfinished.get(label), report)
        finished.append(label)
        keep(partial=False)
    record["results"][task], record["costs"] = gathered(rows, methods), gathered(costs, methods)
    if TASKS[task].summarize:
        record["summary"] = TASKS[task].summarize(record["results"][task], record)
    return record


def _measure_here(task, loaded, lengths, to, data, options, subtasks, jsonl, count):
    text = _data_text(data, task, loaded)
    ids = None
    if text and loaded.kind == "decoder":
        ids = torch.tensor(loaded.tokenizer(text, verbose=False)["input_ids"][: options["max_tokens"]])
    spec = TASKS[task]
    inp = TaskInput(loaded, lengths, to, text, ids, {**options, "jsonl": jsonl, "count": count})
    inp.baseline = spec.prepare(inp) if spec.prepare else None

    def measure(label: str, earlier: dict | None = None, report=None) -> dict:
        with variant(loaded, label, to) as mode:
            return spec.run(replace(inp, earlier=earlier, report=report), label, mode)

    return measure


def _data_text(data, task, loaded) -> str | None:
    from ..texts import read_corpus

    if data:
        return read_corpus(data)
    if TASKS[task].needs_data and loaded.kind == "decoder":
        raise CtxextError(f"task {task!r} needs text: pass --data FILE [FILE ...]")
    return None
