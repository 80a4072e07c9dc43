"""One entry point for every kind of input: what a path holds decides which surgery runs.

* a folder whose family has a learned absolute table  -> :mod:`ctxext.encoders.extend`
* a folder of a RoPE model                               -> :mod:`ctxext.decoders.extend_folder`
* a ``.gguf`` file                                       -> GGUF out (or a HF folder with ``fmt="hf"``)
* a ``.yaml`` / ``.yml`` NeMo or Cerebras model config   -> the same config with PI settings
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import CtxextError
from .families import FAMILIES
from .formats.hf_folder import check_output, open_model_folder

DEFAULT_LEARNED_METHOD = "tile"  # chosen from BENCHMARKS.md (encoder levers)
DEFAULT_ROPE_METHOD = "yarn"  # chosen from BENCHMARKS.md (runtime conformance)
FORMATS = ("same", "hf", "gguf")


def default_rope_method(writes: str) -> str:
    """The RoPE method ``ctxext extend`` uses when none is given (BENCHMARKS.md, "Runtime conformance").

    YaRN for folders and GGUF at every factor: transformers, vLLM and llama.cpp compute it the same way at
    every length, and it had the best perplexity of the methods all three read, at 2x and at 4x. (Dynamic
    NTK, the earlier folder default, exists only in transformers: vLLM reads the folder as unscaled RoPE
    and llama.cpp cannot express it.) NeMo and Cerebras configs can only express ``linear``."""
    return "linear" if writes == "yaml" else DEFAULT_ROPE_METHOD


@dataclass
class Report:
    """What a command prints: key/value rows, then tables or notes."""

    rows: list[tuple[str, str]]
    notes: list[str] = field(default_factory=list)
    drift: dict | None = None
    pairs: list[dict] | None = None


def input_kind(path: str | Path) -> str:
    path = Path(path)
    if path.suffix.lower() == ".gguf":
        return "gguf"
    if path.suffix.lower() in (".yaml", ".yml"):
        return "yaml"
    folder = open_model_folder(path)
    family = FAMILIES.get(folder.config.get("model_type", ""))
    if family is not None and family.kind != "learned":
        return family.kind
    if family is None and ("rope_theta" in folder.config or "rope_parameters" in folder.config):
        return "rope"
    return "learned"


def extend(
    model,
    out,
    to,
    method: str | None = None,
    *,
    fmt: str = "same",
    dtype: str | None = None,
    runtimes: tuple = (),
    overwrite: bool = False,
    check: bool = True,
    texts=None,
    original=None,
    tune: dict | None = None,
    **table_options,
) -> Report:
    """Extend whatever ``model`` is and write ``out``; see the module docstring for the dispatch.

    ``table_options`` go to :func:`ctxext.encoders.table_plan.plan_table` for learned tables (table_path,
    offset, keep_cls, keep_first, from_window)."""
    if fmt not in FORMATS:
        raise CtxextError(f"unknown output format {fmt!r}; choose from {', '.join(FORMATS)}")
    kind = input_kind(model)
    if kind in ("relative", "alibi"):
        _refuse(model)
    if runtimes and not check:
        raise CtxextError("--check-runtime is part of the check; drop --no-check")
    if tune and kind not in ("rope", "gguf"):
        raise CtxextError("--tune searches RoPE divisors; it applies to RoPE decoders (folders and GGUF)")
    if tune:
        method = method or "longrope"
    if runtimes and kind not in ("rope", "gguf"):
        raise CtxextError("--check-runtime reads back RoPE decoders (folders in vllm, GGUF files in llama.cpp)")
    if kind == "learned":
        from .encoders.extend import extend_encoder

        if fmt == "gguf":
            raise CtxextError("a learned-table encoder is written as a folder; GGUF output is for RoPE decoders")
        plan, result = extend_encoder(
            model,
            out,
            to,
            method or DEFAULT_LEARNED_METHOD,
            overwrite=overwrite,
            check=check,
            texts=texts,
            **_given(table_options),
        )
        notes = []
        if result:
            notes.append(
                f"long input: a {result.long_input_tokens}-token text encodes "
                f"({'finite' if result.long_input_ok else 'NOT finite'} embedding)"
            )
        return Report(plan.describe(), notes, {plan.method: result.short_text_drift} if result else None)
    if kind == "rope":
        method = method or default_rope_method("folder")
        from .decoders.extend_folder import extend_decoder_folder

        if fmt == "gguf":
            raise CtxextError("writing GGUF from a Hugging Face folder is llama.cpp's convert_hf_to_gguf.py's job")
        if dtype:
            raise CtxextError("--dtype applies to a GGUF converted to a folder; a folder keeps its own dtype")
        plan, readback = extend_decoder_folder(
            model, out, to, method, original=original, overwrite=overwrite, check=check, runtimes=runtimes, tune=tune
        )
        return Report(plan.describe(), _search_notes(plan) + _readback_notes(readback) + _runtime_notes(plan, "folder"))
    if kind == "gguf":
        method = method or default_rope_method("folder" if fmt == "hf" else "gguf")
        return _extend_gguf(Path(model), Path(out), to, method, fmt, original, overwrite, check, dtype, runtimes, tune)
    return _extend_yaml(Path(model), Path(out), to, method or default_rope_method("yaml"), original, overwrite)


def _given(options: dict) -> dict:
    """Options the user actually set (None and False mean 'not given'; 0 is a value: --offset 0)."""
    return {key: value for key, value in options.items() if value is not None and value is not False}


def _refuse(model) -> None:
    from .families import family_of

    family = family_of(open_model_folder(model).config)
    raise CtxextError(f"{model} is a {family.name} model: {family.advice}")


def _search_notes(plan) -> list[str]:
    if not plan.search:
        return []
    search, seed = plan.search, plan.search["candidates"][0]
    return [
        f"searched {search['evaluations']} candidates at {search['tokens']} tokens of {search['text']}: "
        f"untuned longrope ({seed['name']}) perplexity {seed['ppl']:.4f}, "
        f"best {search['best']} {search['best_ppl']:.4f}"
    ]


def _readback_notes(readback: dict | None) -> list[str]:
    if not readback:
        return []
    return _runtime_readback_notes(readback) + [
        f"transformers reads back the same frequencies (max relative error {readback['max_relative_error']:.1e}) "
        f"and attention factor {readback['attention_factor']:.4f}"
    ]


def _runtime_readback_notes(readback: dict) -> list[str]:
    return [
        f"{runtime} reads it back: perplexity {r['perplexity']:.4f} on a probe past the original window, "
        f"{100 * r['difference']:+.2f}% from transformers"
        for runtime, r in readback.get("runtimes", {}).items()
    ]


def _runtime_notes(plan, writes: str) -> list[str]:
    runtimes = {k: v for k, v in plan.spec.runtimes.items() if (k == "llama.cpp") == (writes == "gguf")}
    return ["what each runtime computes from it:\n" + "\n".join(f"  {k}: {v}" for k, v in runtimes.items())]


def _extend_gguf(path: Path, out: Path, to, method, fmt, original, overwrite, check, dtype, runtimes=(), tune=None):
    from .decoders.extend_folder import tuned
    from .decoders.rope_plan import plan_rope
    from .formats.gguf_file import GgufRopeWriter, gguf_config
    from .pipeline import write_output

    config = gguf_config(path)
    plan = tuned(plan_rope(config, str(path), to, method, original), path, tune, out, overwrite)
    if fmt == "hf":
        from .decoders.extend_folder import HfRopeWriter

        writer = HfRopeWriter(path, plan, from_gguf=True, dtype=dtype or "float32", runtimes=runtimes)
        readback = write_output(writer, out, overwrite, check)
        notes = _search_notes(plan) + _readback_notes(readback) + _runtime_notes(plan, "folder")
        return Report(plan.describe(), notes + [f"wrote a Hugging Face folder ({dtype or 'float32'}) to {out}"])
    if dtype:
        raise CtxextError("--dtype applies when a GGUF is converted to a folder (--format hf); GGUF tensors are copied")
    if out.suffix.lower() != ".gguf":
        raise CtxextError(f"a GGUF output needs a .gguf name, not {out.name} (or pass --format hf for a folder)")
    writer = GgufRopeWriter(path, plan, runtimes)
    readback = write_output(writer, out, overwrite, check)
    notes = _search_notes(plan)
    if readback:
        shown = ", ".join(f"{k} = {v}" for k, v in readback["metadata"].items())
        notes.append(f"GGUF metadata read back ({readback['alignment']}-byte aligned tensors): {shown}")
        notes += _runtime_readback_notes(readback)
    if writer.divisors is not None:
        notes.append(f"added {len(writer.divisors)} per-pair divisors as rope_freqs.weight")
    return Report(plan.describe(), notes + _runtime_notes(plan, "gguf"))


def _extend_yaml(path: Path, out: Path, to, method, original, overwrite) -> Report:
    from .formats.yaml_config import FLAVOURS, YamlWriter, original_context, read_yaml_config, scaled_yaml
    from .pipeline import write_output

    check_output(out, overwrite)
    text, section, flavour = read_yaml_config(path)
    if method != "linear":
        raise CtxextError(f"{flavour} configs express Position Interpolation only; use --method linear, not {method!r}")
    base = int(original) if original else original_context(section, flavour)
    try:
        target = int(str(to))
    except ValueError:
        raise CtxextError(f"target length must be a whole number of tokens, not {to!r}") from None
    if target <= base:
        raise CtxextError(f"target {target} is not above the model's original context of {base}")
    factor = target / base
    write_output(YamlWriter(path, scaled_yaml(text, flavour, target, factor, path)), out, overwrite)
    keys = FLAVOURS[flavour]
    rows = [
        ("config", str(path)),
        ("flavour", flavour),
        ("original context", str(base)),
        ("target", f"{target}  (x{factor:.3g})"),
        ("method", "linear (Position Interpolation)"),
        ("written", ", ".join(f"{k} = {target}" for k in keys["lengths"]) + f", {keys['factor']} = {factor:g}"),
    ]
    return Report(rows)
