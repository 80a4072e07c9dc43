"""Search LongRoPE's long divisors for the model at hand on a calibration text (Ding et al. 2024, section 3.2).

LongRoPE rescales pair k's frequency beyond the trained window L as theta'_k = theta_k / lambda_k and finds the
lambda_k by evolutionary search, scoring each candidate by the perplexity of the model at the target length;
lambda_k never decreases with k (a longer wavelength is interpolated at least as much) and stays within
[1, 1.25 s]. Here the population is seeded with three known answers, YaRN's ramp (ctxext's longrope default),
Position Interpolation (every lambda_k = s) and NTK-aware scaling (lambda_k = s^(2k/(d-2))); each further
candidate is one of the two best so far, multiplied pair by pair by exp(N(0, sigma^2)), bounded and sorted into a
monotone sequence again. Candidates are ranked as LongRoPE2 (Shang et al. 2025) ranks them, by what they retrieve
as well as by plain perplexity: each is scored by log perplexity of the calibration text plus the mean negative
log-likelihood of the answer tokens of ``needles`` passkey prompts of ``target`` tokens (the text with a passkey
sentence at depths spread over the window, closed by the question and its answer): the log of the product of the
two perplexities. A candidate costs 1 + ``needles`` forward passes of ``target`` tokens.
The attention factor m (cos and sin x m, so logits x m^2) is searched after the divisors, on the best divisors
and by the same score: first the three known answers, 1 (ctxext's default), LongRoPE's sqrt(1 + ln s / ln L)
and YaRN's 0.1 ln s + 1, then the midpoints between the best so far and its nearest tried neighbours. Every
runtime applies m at every length, inside L too (see :mod:`ctxext.methods.rope.longrope`), so m = 1 is kept
unless another factor scores lower.
The paper's un-interpolated first tokens are not searched: no runtime's config can express them. The result
is written as ``rope_type: longrope`` (transformers, vLLM) and as ``rope_freqs.weight`` (llama.cpp).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..errors import CtxextError
from .rope_plan import RopePlan

SIGMA = 0.15  # mutation scale in log-divisor space
CEILING = 1.25  # lambda_k <= CEILING * s, the paper's search range


def seeds(plan: RopePlan) -> dict[str, torch.Tensor]:
    half, s = plan.facts.dim // 2, plan.factor
    k = torch.arange(half, dtype=torch.float64)
    return {
        "yarn ramp": dataclasses.replace(plan, searched=None).long_divisors(),
        "linear": torch.full((half,), s, dtype=torch.float64),
        "ntk": s ** (2 * k / (plan.facts.dim - 2)),
    }


def constrain(divisors: torch.Tensor, factor: float) -> torch.Tensor:
    """Non-decreasing in k and within [1, CEILING * s]. Sorting keeps the mutated values; a running maximum
    would raise every divisor after a large draw, so mutants would drift towards more interpolation."""
    return torch.sort(divisors.clamp(1.0, CEILING * factor)).values


def mutate(parent: torch.Tensor, factor: float, generator: torch.Generator) -> torch.Tensor:
    noise = torch.randn(parent.shape, generator=generator, dtype=torch.float64) * SIGMA
    return constrain(parent * noise.exp(), factor)


def calibration_ids(tokenizer, text_path: str | Path, target: int) -> torch.Tensor:
    from ..texts import read_corpus

    ids = torch.tensor(tokenizer(read_corpus([str(text_path)]), verbose=False)["input_ids"][: target + 1])
    if len(ids) < target + 1:
        raise CtxextError(f"{text_path} has {len(ids)} tokens; tuning at {target} needs at least {target + 1}")
    return ids


def needle_prompts(tokenizer, ids: torch.Tensor, target: int, count: int, seed: int = 0) -> list[tuple]:
    """``count`` prompts of ``target`` + 1 tokens cut from ``ids``: a passkey sentence at depth (i + 0.5) / count,
    the question at the end, then the answer; with the position where the answer's tokens start."""
    import random

    draw, prompts = random.Random(seed), []
    for index in range(count):
        key = draw.randint(10000, 99999)
        needle, question, answer = (
            tokenizer(text, add_special_tokens=False)["input_ids"]
            for text in (
                f" The pass key is {key}. Remember it. {key} is the pass key.",
                " What is the pass key? The pass key is",
                f" {key}.",
            )
        )
        room = target + 1 - len(needle) - len(question) - len(answer)
        if room < 1:
            raise CtxextError(f"--tune at {target} tokens leaves no room for a needle prompt")
        haystack = ids[:room].tolist()
        cut = int((index + 0.5) / count * room)
        prompt = haystack[:cut] + needle + haystack[cut:] + question + answer
        prompts.append((torch.tensor(prompt), target + 1 - len(answer)))
    return prompts


def candidate_score(model, ids: torch.Tensor, target: int, needles: list[tuple]) -> dict:
    """Perplexity of the calibration text, perplexity of the needles' answer tokens, and the score to minimise:
    the log of their product (the text's alone without needles)."""
    from ..windows import Window, window_nll

    text_nll = window_nll(model, ids, Window(start=0, end=target, score_from=1)).mean().item()
    row = {"ppl": math.exp(text_nll), "score": text_nll}
    if needles:
        answer_nll = [window_nll(model, p, Window(0, target, start)).mean().item() for p, start in needles]
        row["needle_ppl"] = math.exp(sum(answer_nll) / len(answer_nll))
        row["score"] = text_nll + sum(answer_nll) / len(answer_nll)
    return row


def attention_seeds(plan: RopePlan) -> dict[str, float]:
    s = plan.factor
    return {
        "none": 1.0,
        "longrope": math.sqrt(1 + math.log(s) / math.log(plan.original)),
        "yarn": 0.1 * math.log(s) + 1.0,
    }


def next_attention(tried: list[tuple[dict, float]]) -> float | None:
    """The midpoint between the best factor and the nearer of its tried neighbours not yet halved to, or None."""
    factors = sorted({m for _, m in tried})
    best = min(tried, key=lambda row: row[0]["score"])[1]
    at = factors.index(best)
    gaps = [(abs(best - n), (best + n) / 2) for n in factors[max(0, at - 1) : at + 2] if n != best]
    for _, middle in sorted(gaps):
        if all(abs(middle - m) > 1e-6 for m in factors):
            return middle
    return None


def check_search(plan: RopePlan, evaluations: int, needles: int = 0, attention: int = 0) -> None:
    if needles < 0:
        raise CtxextError(f"--tune-needles is a number of prompts, 0 or more, not {needles}")
    if attention < 0:
        raise CtxextError(f"--tune-attention is a number of attention factors, 0 or more, not {attention}")
    if plan.method != "longrope":
        raise CtxextError(f"--tune searches LongRoPE's divisors; use --method longrope, not {plan.method!r}")
    if evaluations < len(seeds(plan)):
        raise CtxextError(f"--tune-evals must be at least {len(seeds(plan))} (the seeds: {', '.join(seeds(plan))})")


def search_long_divisors(
    model, ids: torch.Tensor, plan: RopePlan, evaluations: int = 8, seed: int = 0, needles: list[tuple] = ()
) -> RopePlan:
    """The plan with the best divisors found (``searched``) and the search record (``search``); the model's
    rotary modules and config are as they were afterwards. ``needles``: prompts from :func:`needle_prompts`."""
    from .rope_in_memory import apply_rope_in_memory, restored_rope

    check_search(plan, evaluations)
    starts = seeds(plan)
    generator = torch.Generator().manual_seed(seed)
    tried: list[tuple[dict, torch.Tensor, str]] = []
    with restored_rope(model), tqdm(total=evaluations, desc="tune longrope", unit="candidate") as bar:
        for index in range(evaluations):
            if index < len(starts):
                source, divisors = list(starts.items())[index]
            else:
                ranked = sorted(tried, key=lambda row: row[0]["score"])
                parent = ranked[index % 2 if len(ranked) > 1 else 0]
                source, divisors = f"mutant of {parent[2]}", mutate(parent[1], plan.factor, generator)
            candidate = dataclasses.replace(plan, searched=tuple(divisors.tolist()))
            apply_rope_in_memory(model, candidate)
            tried.append((candidate_score(model, ids, plan.target, list(needles)), divisors, f"#{index} {source}"))
            bar.update()
            bar.set_postfix(best=f"{min(row[0]['score'] for row in tried):.3f}")
    best = min(tried, key=lambda row: row[0]["score"])
    record = {
        "tokens": plan.target,
        "evaluations": evaluations,
        "seed": seed,
        "needles": len(needles),
        "candidates": [{"name": name, **scores, "divisors": d.tolist()} for scores, d, name in tried],
        "best": best[2],
        "best_ppl": best[0]["ppl"],
    }
    if needles:
        record["best_needle_ppl"] = best[0]["needle_ppl"]
    return dataclasses.replace(plan, searched=tuple(best[1].tolist()), search=record)


def search_attention_factor(model, ids: torch.Tensor, plan: RopePlan, evaluations: int, needles=()) -> RopePlan:
    """The plan (divisors already chosen) with the attention factor that scores lowest among ``evaluations``
    tried; the record joins the plan's search record. 0 evaluations: the plan as it is (m = 1)."""
    from .rope_in_memory import restored_rope

    if evaluations == 0:
        return plan
    tried: list[tuple[dict, float]] = []
    names = {}
    with restored_rope(model), tqdm(total=evaluations, desc="tune attention factor", unit="candidate") as bar:
        for name, factor in list(attention_seeds(plan).items())[:evaluations]:
            names[factor] = name
            tried.append((_scored(model, ids, plan, factor, needles), factor))
            bar.update()
        while len(tried) < evaluations and (factor := next_attention(tried)) is not None:
            names[factor] = "midpoint"
            tried.append((_scored(model, ids, plan, factor, needles), factor))
            bar.update()
    best = min(tried, key=lambda row: row[0]["score"])
    record = {
        "attention_candidates": [{"name": names[m], "attention_factor": m, **scores} for scores, m in tried],
        "best_attention_factor": best[1],
        "best_attention_ppl": best[0]["ppl"],
        **({"best_attention_needle_ppl": best[0]["needle_ppl"]} if needles else {}),
    }
    return dataclasses.replace(plan, searched_attention=best[1], search={**(plan.search or {}), **record})


def _scored(model, ids, plan: RopePlan, factor: float, needles) -> dict:
    from .rope_in_memory import apply_rope_in_memory

    apply_rope_in_memory(model, dataclasses.replace(plan, searched_attention=factor))
    return candidate_score(model, ids, plan.target, list(needles))


def tune_plan(
    plan: RopePlan,
    model_path: str | Path,
    text: str | Path,
    evaluations: int = 8,
    place=None,
    needles: int = 2,
    attention: int = 5,
) -> RopePlan:
    """Load the model (folder or GGUF) placed by ``place`` (default float32 on the CPU) and search the plan's long
    divisors, then its attention factor (``attention`` candidates), scored with ``needles`` passkey prompts
    besides the text; the settings and the text are checked before the load."""
    from ..loading import load_causal_lm

    check_search(plan, evaluations, needles, attention)
    if not Path(text).is_file():
        raise CtxextError(f"calibration text {text} not found")
    model, tokenizer = load_causal_lm(model_path, place)
    ids = calibration_ids(tokenizer, text, plan.target)
    prompts = needle_prompts(tokenizer, ids, plan.target, needles)
    tuned = search_long_divisors(model, ids, plan, evaluations, needles=prompts)
    tuned = search_attention_factor(model, ids, tuned, attention, needles=prompts)
    return dataclasses.replace(tuned, search={**tuned.search, "text": str(text)})
