"""Read a written output back in the runtime that will serve it (``ctxext extend --check-runtime``).

A probe of real text reaching past the original window is scored by the runtime and by transformers; the
output passes when the runtime's perplexity is finite and within 0.5% of what ctxext meant. For a GGUF the
meaning is transformers on the source GGUF with the plan applied in memory, and both sides are first scored
unscaled, so that what quantization alone changes is not counted against the scaling.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import CtxextError
from . import RUNTIMES, Serving, score_external
from .scoring import score_transformers

TOLERANCE = 5e-3
PROBE_BEYOND = 512  # probe tokens past the original window


def probe(tokenizer, plan) -> tuple[list[int], int]:
    """Token ids of the shipped short texts, repeated past the original window; the last 1024 are scored."""
    from ..texts import default_short_texts

    text = " ".join(default_short_texts())
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    length = min(plan.target - 1, plan.original + PROBE_BEYOND)
    tokens = (ids * (length // len(ids) + 1))[:length]
    return tokens, max(1, length - 1024)


def _ppl(result: dict, runtime: str) -> float:
    if "error" in result:
        raise CtxextError(f"{runtime} cannot run the written output: {result['error']}")
    if not result.get("finite"):
        raise CtxextError(f"{runtime} computes non-finite log-probabilities from the written output")
    return math.exp(result["nll"] / result["count"])


def _compare(runtime: str, got: float, meant: float) -> dict:
    difference = got / meant - 1
    if abs(difference) > TOLERANCE:
        raise CtxextError(
            f"{runtime} computes a different model from the written output: perplexity {got:.4f} where "
            f"transformers gives {meant:.4f} ({100 * difference:+.2f}%) on a probe past the original window"
        )
    return {"perplexity": got, "transformers": meant, "difference": difference}


def check_folder(staging: Path, plan, runtime: str, serving: Serving | None = None) -> dict:
    from transformers import AutoTokenizer

    if RUNTIMES[runtime].reads != "folder":
        raise CtxextError(f"{runtime} reads GGUF files, not folders")
    serving = serving or Serving()
    tokens, score_from = probe(AutoTokenizer.from_pretrained(str(staging)), plan)
    meant = _ppl(score_transformers(staging, tokens, score_from, serving.place), "transformers")
    got = score_external(runtime, staging, tokens, score_from, **serving.engine())
    return _compare(runtime, _ppl(got, runtime), meant)


def check_gguf(source: Path, staging: Path, plan, runtime: str, serving: Serving | None = None) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..decoders.rope_in_memory import apply_rope_in_memory

    if RUNTIMES[runtime].reads != "gguf":
        raise CtxextError(f"{runtime} reads folders, not GGUF files")
    where, name = str(source.parent), source.name
    tokens, score_from = probe(AutoTokenizer.from_pretrained(where, gguf_file=name), plan)
    place = (serving or Serving()).place
    model = AutoModelForCausalLM.from_pretrained(where, gguf_file=name, **place.load_kwargs()).eval()
    unscaled = _ppl(score_transformers(model, tokens, score_from), "transformers")
    quantization = _ppl(score_external(runtime, source, tokens, score_from), runtime) / unscaled
    meant = _ppl(score_transformers(apply_rope_in_memory(model, plan), tokens, score_from), "transformers")
    got = _ppl(score_external(runtime, staging, tokens, score_from), runtime)
    return {**_compare(runtime, got / quantization, meant), "quantization_gap": quantization - 1}
