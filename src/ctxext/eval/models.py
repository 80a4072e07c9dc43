"""Models under evaluation: load once, then yield one variant per method, extended in memory.

A variant label is ``native`` (the model as loaded), ``truncate``, ``chunk`` and ``maxsim`` (encoder
baselines that change how inputs are fed, not the model), or a method name applied in memory with ctxext's
plan and restored afterwards, so several methods compare in one run without writing a folder for each.
Decoders also take ``self-extend`` and ``dca`` (attention switched at run time, options after ``+``).
Encoder labels take options after ``+`` (``cubic+keep``, ``tile+logn``); ``+late`` embeds documents by late
chunking, ``late`` alone is ``tile+late``, and ``native+late`` late-chunks with the model as loaded.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import CtxextError
from ..formats.hf_folder import open_model_folder
from ..loading import load_causal_lm
from ..placement import Placement

ENCODER_BASELINES = ("truncate", "chunk", "maxsim")
LATE_DEFAULT = "tile"  # the extension `late` alone uses


@dataclass
class LoadedModel:
    path: str
    kind: str  # "decoder" or "encoder"
    model: torch.nn.Module
    tokenizer: object
    config: dict  # config.json-like facts for planning
    folder: object = None  # ModelFolder for encoders
    embedder: object = None
    hooks: object = None  # xPos hooks, kept alive with the model

    @property
    def context(self) -> int:
        if self.kind == "encoder":
            return self.plan_table(None, "cubic").positions
        from ..decoders.rope_facts import rope_facts, trained_context

        return trained_context(rope_facts(self.config))

    @property
    def window(self) -> int:
        """The longest input the model takes as it is: for a decoder that already carries RoPE scaling
        (e.g. written by ``ctxext extend``), its original context times the recorded factor."""
        if self.kind == "encoder":
            return self.context
        from ..decoders.rope_facts import rope_facts

        facts = rope_facts(self.config)
        factor = float(facts.existing.get("factor", 1.0) or 1.0)
        return max(facts.context, int(round(self.context * factor)))

    @property
    def chunk_window(self) -> int:
        """The window an encoder's chunking baselines cut documents to: the one it was trained at before
        ctxext extended it (from its ``ctxext.json``), else its table's length."""
        import json

        record = Path(self.path) / "ctxext.json"
        if self.kind == "encoder" and record.is_file():
            try:
                plan = json.loads(record.read_text(encoding="utf-8"))["plan"]
                return int(plan["rows"]) - int(plan["offset"])  # the table before extension
            except (ValueError, KeyError, TypeError):
                pass
        return self.context

    def plan_table(self, to, method, **options):
        from ..encoders.table_plan import plan_table

        return plan_table(self.folder, to, method, allow_same=to is None, **options)


def load_model(path: str | Path, place: Placement | None = None) -> LoadedModel:
    """A decoder (HF folder or GGUF, dequantized in memory) or an encoder folder, placed as ``place`` says
    (default: fp32 on the CPU)."""
    from ..inputs import input_kind, refuse_unextended

    place = place or Placement()

    path = Path(path)
    kind = input_kind(path)
    if kind == "yaml":
        raise CtxextError("a YAML config has no weights to evaluate")
    refuse_unextended(path, kind)
    folder = None if kind == "gguf" else open_model_folder(path)
    if folder is not None:
        folder.check_weights()
    if kind == "learned":
        from ..encoders.embed import Embedder

        if folder.config.get("model_type") == "gpt2":
            raise CtxextError(
                "GPT-2-style decoders with learned tables are not evaluated yet; extend them and use your own harness"
            )
        embedder = Embedder(path, device=place.device, dtype=place.dtype)
        return LoadedModel(str(path), "encoder", embedder.model, embedder.tokenizer, folder.config, folder, embedder)
    if kind != "gguf" and _is_xpos(path):
        from transformers import AutoTokenizer

        from ..decoders.xpos import load_xpos_model

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path))
            model, hooks = load_xpos_model(path, place.dtype)
        except (OSError, ValueError) as exc:
            raise CtxextError(f"transformers cannot load {path}: {str(exc).splitlines()[0]}") from None
        model.to(place.device)
        return LoadedModel(str(path), "decoder", model, tokenizer, model.config.to_dict(), hooks=hooks)
    model, tokenizer = load_causal_lm(path, place)
    return LoadedModel(str(path), "decoder", model, tokenizer, model.config.to_dict())


def _is_xpos(path: Path) -> bool:
    from ..decoders.xpos import XPOS_MODEL_TYPE

    config = path / "config.json"
    return config.is_file() and XPOS_MODEL_TYPE in config.read_text(encoding="utf-8")


@contextmanager
def rope_variant(loaded: LoadedModel, method: str, to: int) -> Iterator[object]:
    """The decoder with ``method`` applied for the block; config and rotary modules restored after."""
    from ..decoders.rope_in_memory import apply_rope_in_memory, restored_rope
    from ..decoders.rope_plan import plan_rope

    plan = plan_rope(loaded.config, loaded.path, to, method)
    with restored_rope(loaded.model):
        apply_rope_in_memory(loaded.model, plan)
        yield plan


@contextmanager
def table_variant(loaded: LoadedModel, method: str, to: int, **options) -> Iterator[object]:
    from ..encoders.table_apply import extended_in_memory
    from ..encoders.table_plan import plan_table

    plan = plan_table(loaded.folder, to, method, **options)
    with extended_in_memory(loaded.model, plan):
        yield plan


@contextmanager
def variant(loaded: LoadedModel, label: str, to: int | None) -> Iterator[str]:
    """Yield the mode of feeding inputs: 'native', a baseline's name, 'extended' or 'late'."""
    if label in ("native", "none") or (label in ENCODER_BASELINES and loaded.kind == "encoder"):
        yield label
        return
    if label == "native+late" and loaded.kind == "encoder":  # a model already long enough, e.g. trained
        yield "late"
        return
    if to is None:
        raise CtxextError(f"method {label!r} needs a target length")
    if loaded.kind == "decoder":
        from ..decoders.long_attention import is_attention_label, long_attention

        attention = is_attention_label(label)
        with long_attention(loaded.model, label, to) if attention else rope_variant(loaded, label, to):
            yield "extended"
        return
    method, *flags = (LATE_DEFAULT + "+" + label if label == "late" else label).split("+")
    logn, late = "logn" in flags, "late" in flags
    flags = [flag for flag in flags if flag not in ("logn", "late")]
    with table_variant(loaded, method, to, **variant_options(flags)), log_n_scaling(loaded, logn):
        yield "late" if late else "extended"


def check_label(kind: str, label: str) -> None:
    """Refuse, before anything is measured, a method label that :func:`variant` would refuse when its turn came."""
    if label in ("native", "none") or (kind == "encoder" and label in (*ENCODER_BASELINES, "native+late", "late")):
        return
    if kind == "decoder":
        from ..decoders.attention_labels import is_attention_label, parse_label
        from ..decoders.rope_plan import check_rope_method

        if is_attention_label(label):
            parse_label(label)
        else:
            check_rope_method(label)
        return
    from ..encoders.table_plan import check_table_method

    method, *flags = label.split("+")
    check_table_method(method)
    variant_options([flag for flag in flags if flag not in ("logn", "late")])


QUERY_NAMES = (".query", ".q_lin", ".q")


@contextmanager
def log_n_scaling(loaded: LoadedModel, enabled: bool = True) -> Iterator[None]:
    """LongEmbed's attention scaling (Zhu et al. 2024): queries x max(1, ln n / ln L), n the input length and
    L the original window. A runtime change: no config key of transformers can express it, so it exists
    only here, for measuring; a saved model cannot carry it."""
    if not enabled:
        yield
        return
    window = loaded.context
    handles = []

    def scale(module, inputs, output):
        return output * max(1.0, math.log(output.shape[1]) / math.log(window))

    for name, module in loaded.model.named_modules():
        if isinstance(module, torch.nn.Linear) and name.endswith(QUERY_NAMES):
            handles.append(module.register_forward_hook(scale))
    if not handles:
        raise CtxextError("found no attention query projections for log-n scaling")
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def variant_options(flags: list[str]) -> dict:
    """'keep' / 'keepK' -> keep_first auto / K; 'trained' / 'fromW' -> from_window auto / W."""
    options = {}
    for flag in flags:
        if flag.startswith("keep"):
            options["keep_first"] = flag[4:] or "auto"
        elif flag == "trained":
            options["from_window"] = "auto"
        elif flag.startswith("from"):
            options["from_window"] = flag[4:]
        else:
            raise CtxextError(
                f"unknown option '+{flag}' in a method label (known: +keep, +keepK, +trained, +fromW, +logn, +late)"
            )
    return options
