"""Passkey retrieval for decoders (Mohtashami & Jaggi 2023, used by the PI paper, Chen et al. 2023).

The prompt: an instruction, the filler "The grass is green. The sky is blue. The sun is yellow. Here we
go. There and back again." repeated, the key sentence "The pass key is K. Remember it. K is the pass
key." placed at a relative depth, more filler, then "What is the pass key? The pass key is". Greedy
decoding; a trial passes when the generated text starts with the key. The prompt is cut to the target
length in tokens, so each cell of the length x depth grid is measured at the length it names.
"""

from __future__ import annotations

import random

import torch
from tqdm.auto import tqdm

from ...errors import CtxextError
from ...memory import prompt_batch
from ...windows import input_device
from ..intervals import wilson_interval
from ..registry import Task, TaskInput, register

INSTRUCTION = (
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. "
    "I will quiz you about the important information there.\n"
)
FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
QUESTION = "\nWhat is the pass key? The pass key is"


def key_sentence(key: int) -> str:
    return f"The pass key is {key}. Remember it. {key} is the pass key. "


def passkey_prompt(tokenizer, length: int, depth: float, key: int) -> torch.Tensor:
    """Token ids of a prompt of exactly ``length`` tokens with the key at relative ``depth`` of the filler."""
    head = tokenizer(INSTRUCTION, add_special_tokens=True)["input_ids"]
    needle = tokenizer(key_sentence(key), add_special_tokens=False)["input_ids"]
    tail = tokenizer(QUESTION, add_special_tokens=False)["input_ids"]
    filler_ids = tokenizer(FILLER, add_special_tokens=False)["input_ids"]
    room = length - len(head) - len(needle) - len(tail)
    if room < 0:
        raise CtxextError(f"{length} tokens cannot hold the passkey prompt ({length - room} needed without filler)")
    filler = (filler_ids * (room // len(filler_ids) + 1))[:room]
    cut = int(round(depth * room))
    return torch.tensor(head + filler[:cut] + needle + filler[cut:] + tail)


def passkey_answers(model, tokenizer, prompts: torch.Tensor, keys: list[int], new_tokens: int = 8) -> list[bool]:
    """True where the greedy continuation of a prompt starts with its key."""
    answers = continuations(model, tokenizer, prompts, new_tokens)
    return [answer.strip().startswith(str(key)) for answer, key in zip(answers, keys, strict=True)]


@torch.inference_mode()
def continuations(model, tokenizer, prompts: torch.Tensor, new_tokens: int = 8) -> list[str]:
    """Greedy continuations of equally long prompts, decoded as one batch (no padding needed)."""
    ids = prompts.to(input_device(model))
    out = model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=new_tokens,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
    )
    return tokenizer.batch_decode(out[:, ids.shape[1] :], skip_special_tokens=True)


def passkey_cells(lengths: list[int], depths: list[float], trials: int, seed: int = 0) -> list[tuple]:
    """(length, depth, key) for every trial, keys drawn in one fixed order so every backend asks the same."""
    rng = random.Random(seed)
    return [(n, depth, rng.randint(10000, 99999)) for n in lengths for depth in depths for _ in range(trials)]


def grid_rows(cells: list[tuple], passed: list[bool], depths: list[float], trials: int) -> dict[int, dict]:
    """results[length] = {accuracy, trials, depths: {depth: accuracy}} from one pass/fail per cell."""
    outcome: dict[tuple, list[bool]] = {}
    for (length, depth, _), ok in zip(cells, passed, strict=True):
        outcome.setdefault((length, depth), []).append(ok)
    results = {}
    for length in dict.fromkeys(length for length, _, _ in cells):
        by_depth = {f"{depth:g}": sum(outcome[length, depth]) / trials for depth in depths}
        passed = sum(sum(outcome[length, depth]) for depth in depths)
        results[length] = {
            "accuracy": sum(by_depth.values()) / len(by_depth),
            "ci95": wilson_interval(passed, trials * len(depths)),
            "trials": trials * len(depths),
            "depths": by_depth,
        }
    return results


def passkey_grid(
    model, tokenizer, lengths: list[int], depths: list[float], trials: int, seed: int = 0, progress=None, batch=1
) -> dict[int, dict]:
    """The length x depth grid with fixed random 5-digit keys; prompts of one length (all exactly that long)
    are decoded at most ``batch`` at a time, fewer where the device's free memory holds fewer."""
    cells = passkey_cells(lengths, depths, trials, seed)
    passed = []
    for length in lengths:
        mine = [cell for cell in cells if cell[0] == length]
        together = prompt_batch(model, length + 8, batch)
        for start in range(0, len(mine), together):
            part = mine[start : start + together]
            prompts = torch.stack([passkey_prompt(tokenizer, length, depth, key) for _, depth, key in part])
            passed += passkey_answers(model, tokenizer, prompts, [key for _, _, key in part])
            if progress:
                progress(len(part))
    return grid_rows(cells, passed, depths, trials)


def _run(inp: TaskInput, label: str, mode: str) -> dict:
    depths, trials = inp.options["depths"], inp.options["trials"]
    with tqdm(total=len(inp.lengths) * len(depths) * trials, desc=f"passkey {label}", unit="trial") as bar:
        return passkey_grid(
            inp.loaded.model,
            inp.loaded.tokenizer,
            inp.lengths,
            depths,
            trials,
            progress=bar.update,
            batch=inp.options["batch"],
        )


register(Task("passkey", "decoder", _run, backends=("transformers", "vllm"), main_metric="accuracy"))
