"""``ctxext eval --backend vllm``: perplexity, passkey and RULER measured in the engine users deploy.

The same windows and prompts as the transformers backend, built by the same code: perplexity from vLLM's
prompt log-probabilities of every scored target (one engine start per method, all windows batched),
passkey and RULER by batched greedy generation (every RULER prompt of a method in one engine start, each
continuation cut to its subtask's token budget: greedy decoding's first N tokens do not depend on how many
follow). vLLM reads folders, so each method is first written by ``ctxext
extend`` to a temporary folder, exactly the file a user would serve; ``native`` / ``none`` is the folder as
given. vLLM runs in its own environment (``scripts/setup-runtimes.sh``; ``CTXEXT_VLLM_PYTHON``).
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path

import torch

from ..errors import CtxextError
from ..runtimes import generate_external, score_windows_external


@contextmanager
def served_folder(model: Path, label: str, to: int):
    """The folder vLLM serves for ``label``: the model itself, or its extension written to a temporary folder
    whose weight files link to the model's (only the config differs)."""
    if label in ("native", "none"):
        yield model
        return
    from .. import api

    with tempfile.TemporaryDirectory(prefix="ctxext-vllm-") as work:
        api.extend(model, Path(work) / label, to, label, fmt="hf", link_weights=True)
        yield Path(work) / label


def vllm_perplexity(folder: Path, ids: torch.Tensor, lengths, stride, bucket: int, engine: dict) -> dict:
    from ..windows import scored_region, windows
    from .tasks.ppl import perplexity

    first, last = scored_region(len(ids), lengths, stride)
    plan = [w for length in sorted(lengths) for w in windows(length, stride, first, last)]
    request = [{"tokens": ids[w.start : w.end + 1].tolist(), "score_from": w.score_from - w.start} for w in plan]
    answer = score_windows_external("vllm", folder, request, max_model_len=max(lengths) + 2, **engine)
    if "error" in answer:
        raise CtxextError(f"vLLM could not score {folder.name}: {answer['error']}")
    nll = {w: -torch.tensor(lp, dtype=torch.float64) for w, lp in zip(plan, answer["logprobs"], strict=True)}
    results = perplexity(None, ids, lengths, stride=stride, bucket=bucket, nll=nll.__getitem__)
    for row in results.values():
        row["seconds"] = answer["seconds"]
    return results


def vllm_passkey(folder: Path, tokenizer, lengths, depths, trials: int, engine: dict) -> dict:
    from .tasks.passkey import grid_rows, passkey_cells, passkey_prompt

    cells = passkey_cells(lengths, depths, trials)
    prompts = [passkey_prompt(tokenizer, length, depth, key).tolist() for length, depth, key in cells]
    answer = generate_external("vllm", folder, prompts, max_tokens=8, max_model_len=max(lengths) + 8, **engine)
    if "error" in answer:
        raise CtxextError(f"vLLM could not generate with {folder.name}: {answer['error']}")
    texts = [tokenizer.decode(generated, skip_special_tokens=True) for generated in answer["generated"]]
    passed = [text.strip().startswith(str(key)) for text, (_, _, key) in zip(texts, cells, strict=True)]
    return grid_rows(cells, passed, depths, trials)


def vllm_ruler(folder: Path, tokenizer, lengths, text, options: dict, engine: dict) -> dict:
    from .tasks.ruler import SUBTASKS, builder_for, cell_of, ruler_rows

    builder, names = builder_for(tokenizer, text, options)
    samples, seed = options.get("samples") or 8, options.get("seed", 0)
    cases = [
        (length, name, builder.sample(name, length, index, seed))
        for length in lengths
        for name in names
        for index in range(samples)
    ]
    longest = max(SUBTASKS[name].new_tokens for name in names)
    prompts = [case.ids for _, _, case in cases]
    answer = generate_external(
        "vllm", folder, prompts, max_tokens=longest, max_model_len=max(lengths) + longest, **engine
    )
    if "error" in answer:
        raise CtxextError(f"vLLM could not generate with {folder.name}: {answer['error']}")
    by_cell: dict = {}  # (length, subtask) -> (continuations, their samples)
    for (length, name, case), generated in zip(cases, answer["generated"], strict=True):
        texts, samples_asked = by_cell.setdefault((length, name), ([], []))
        texts.append(tokenizer.decode(generated[: SUBTASKS[name].new_tokens], skip_special_tokens=True))
        samples_asked.append(case)
    share = answer.get("seconds", 0.0) / len(by_cell)  # one engine run for every cell: its time split evenly
    cells = {key: cell_of(key[1], *asked, share) for key, asked in by_cell.items()}
    return ruler_rows(cells, samples)


def check_backend_input(model: Path, task: str) -> None:
    from .registry import TASKS

    if "vllm" not in TASKS[task].backends:
        measured = " and ".join(name for name, spec in TASKS.items() if "vllm" in spec.backends)
        raise CtxextError(f"--backend vllm measures {measured}; {task!r} runs in transformers")
    if model.suffix.lower() == ".gguf" or not (model / "config.json").is_file():
        raise CtxextError(
            f"--backend vllm reads model folders; {model} is not one (ctxext extend MODEL --format hf writes one)"
        )


def vllm_measure(model: Path, task: str, lengths, to, text, options: dict, engine: dict):
    """A function label -> results[length] measuring ``task`` in vLLM, and the model's original context."""
    import json

    from transformers import AutoTokenizer

    from ..decoders.rope_facts import rope_facts, trained_context

    tokenizer = AutoTokenizer.from_pretrained(str(model))
    context = trained_context(rope_facts(json.loads((model / "config.json").read_text(encoding="utf-8"))))
    ids = torch.tensor(tokenizer(text, verbose=False)["input_ids"][: options["max_tokens"]]) if text else None

    def measure(label: str, earlier=None, report=None) -> dict:  # vLLM runs every cell in one engine call
        with served_folder(model, label, to) as folder:
            if task == "ppl":
                stride = options["stride"] or min(lengths)
                return vllm_perplexity(folder, ids, lengths, stride, max(context // 4, 1), engine)
            if task == "ruler":
                return vllm_ruler(folder, tokenizer, lengths, text, options, engine)
            return vllm_passkey(folder, tokenizer, lengths, options["depths"], options["trials"], engine)

    return measure, context
