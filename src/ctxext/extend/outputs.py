"""Output formats: which input kinds each writes, and the pipeline that does it.

An input's kind (:func:`ctxext.inputs.input_kind`: learned, rope, gguf, yaml) and ``--format`` choose one
pipeline; ``same`` is the format that is native to the input's kind. Adding a format is one file in this
package that ends in ``register(OutputFormat(...))``, imported once in :mod:`ctxext.api`; the command line's
help, its did-you-mean and every refusal read this registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CtxextError, did_you_mean
from ..registries import add
from .summary import Report

SAME = "same"
DEFAULT_LEARNED_METHOD = "tile"  # chosen from BENCHMARKS.md (encoder levers)
DEFAULT_ROPE_METHOD = "yarn"  # chosen from BENCHMARKS.md (runtime conformance)
KIND_WORDS = {
    "learned": "an encoder with a learned position table",
    "rope": "a RoPE model folder",
    "gguf": "a GGUF file",
    "yaml": "a NeMo / Cerebras YAML config",
}


@dataclass(frozen=True)
class Request:
    """Everything ``ctxext extend`` was asked, as :func:`ctxext.api.extend` takes it."""

    model: str | Path
    out: Path
    to: object
    method: str | None
    dtype: str | None = None
    runtimes: tuple = ()
    overwrite: bool = False
    check: bool = True
    texts: list | None = None
    original: int | None = None
    tune: dict | None = None
    rederive: bool = False
    serving: object = None
    link_weights: bool = False
    dropped: tuple = ()
    table_options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OutputFormat:
    name: str
    title: str
    pipelines: dict[str, Callable[[Request], Report]]  # input kind -> pipeline
    native: tuple[str, ...] = ()  # input kinds for which --format same means this format
    refusals: dict[str, str] = field(default_factory=dict)  # input kind -> why this format cannot take it
    runtimes: tuple[str, ...] = ()  # what reads the output


OUTPUT_FORMATS: dict[str, OutputFormat] = {}


def register(output: OutputFormat) -> OutputFormat:
    return add(OUTPUT_FORMATS, output.name, output, "an output format", reserved=(SAME,))


def choose(name: str, kind: str) -> OutputFormat:
    """The format ``--format name`` means for an input of ``kind``; one line where it cannot take it."""
    if name == SAME:
        native = [output for output in OUTPUT_FORMATS.values() if kind in output.native]
        if not native:
            raise CtxextError(f"no output format writes {KIND_WORDS.get(kind, kind)}")
        return native[0]
    if name not in OUTPUT_FORMATS:
        names = [SAME, *OUTPUT_FORMATS]
        raise CtxextError(f"unknown output format {name!r}{did_you_mean(name, names)}; choose from {', '.join(names)}")
    output = OUTPUT_FORMATS[name]
    if kind not in output.pipelines:
        takes = " or ".join(KIND_WORDS[k] for k in output.pipelines)
        raise CtxextError(output.refusals.get(kind) or f"{name} output is written from {takes}, not {KIND_WORDS[kind]}")
    return output


def default_rope_method(writes: str) -> str:
    """The RoPE method ``ctxext extend`` uses when none is given (BENCHMARKS.md, "Runtime conformance").

    YaRN for folders and GGUF at every factor: transformers, vLLM and llama.cpp compute it the same way at
    every length, and it had the best perplexity of the methods all three read, at 2x and at 4x. (Dynamic
    NTK, the earlier folder default, exists only in transformers: vLLM reads the folder as unscaled RoPE
    and llama.cpp cannot express it.) NeMo and Cerebras configs can only express ``linear``."""
    return "linear" if writes == "yaml" else DEFAULT_ROPE_METHOD
