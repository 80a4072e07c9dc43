"""One entry point for every kind of input: what a path holds decides which surgery runs.

* a folder whose family has a learned absolute table  -> :mod:`ctxext.extend.encoder_folder`
* a folder of a RoPE model                               -> :mod:`ctxext.extend.decoder_folder`
* a ``.gguf`` file                                       -> GGUF out (or a HF folder with ``fmt="hf"``)
* a ``.yaml`` / ``.yml`` NeMo or Cerebras model config   -> the same config with PI settings
"""

from __future__ import annotations

from pathlib import Path

from .errors import CtxextError
from .extend.gguf import extend_gguf
from .extend.summary import Report, readback_notes, runtime_notes, search_notes
from .extend.yaml import extend_yaml
from .formats.hf_folder import open_model_folder, remote_code
from .inputs import given_options, input_kind, refuse_unextended  # noqa: F401  (input_kind: part of the API)

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
    base_class: bool = False,
    rederive: bool = False,
    serving=None,
    link_weights: bool = False,
    **table_options,
) -> Report:
    """Extend whatever ``model`` is and write ``out``; see the module docstring for the dispatch.

    ``serving`` (:class:`ctxext.runtimes.Serving`) places what ``tune`` and the read-back in ``runtimes``
    compute: device, dtype, device map, and vLLM's tensor parallelism and memory share (default fp32 on the CPU).
    ``link_weights``: a RoPE folder's weight files are linked to the source's, not copied (an output that lives
    no longer than its source, such as a temporary folder a runtime reads).

    ``table_options`` go to :func:`ctxext.encoders.table_plan.plan_table` for learned tables (table_path,
    offset, keep_cls, keep_first, from_window)."""
    if fmt not in FORMATS:
        raise CtxextError(f"unknown output format {fmt!r}; choose from {', '.join(FORMATS)}")
    kind = input_kind(model, base_class)
    if base_class and kind not in ("learned", "rope"):
        raise CtxextError("--base-class applies to model folders that map to code of their own")
    dropped = tuple(remote_code(open_model_folder(model))) if base_class else ()
    if rederive and kind not in ("rope", "gguf"):
        raise CtxextError("--rederive applies to RoPE decoders that already carry scaling")
    refuse_unextended(model, kind)
    if runtimes and not check:
        raise CtxextError("--check-runtime is part of the check; drop --no-check")
    if tune and kind not in ("rope", "gguf"):
        raise CtxextError("--tune searches RoPE divisors; it applies to RoPE decoders (folders and GGUF)")
    if tune:
        method = method or "longrope"
        tune = {"place": serving.place if serving else None, **tune}
    if runtimes and kind not in ("rope", "gguf"):
        raise CtxextError("--check-runtime reads back RoPE decoders (folders in vllm, GGUF files in llama.cpp)")
    if kind == "learned":
        from .extend.encoder_folder import extend_encoder

        if fmt == "gguf":
            raise CtxextError("a learned-table encoder is written as a folder; GGUF output is for RoPE decoders")
        if dtype:
            raise CtxextError("--dtype applies to a GGUF converted to a folder; an encoder keeps its own dtype")
        if original:
            raise CtxextError("--original is a RoPE decoder's trained context; an encoder's is its table's length")
        plan, result = extend_encoder(
            model,
            out,
            to,
            method or DEFAULT_LEARNED_METHOD,
            overwrite=overwrite,
            check=check,
            texts=texts,
            dropped=dropped,
            **given_options(table_options),
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
        from .extend.decoder_folder import extend_decoder_folder

        if fmt == "gguf":
            raise CtxextError("writing GGUF from a Hugging Face folder is llama.cpp's convert_hf_to_gguf.py's job")
        if dtype and not (tune or runtimes):
            raise CtxextError(
                "--dtype applies to a GGUF converted to a folder or to what --tune and --check-runtime compute; "
                "a folder keeps its own dtype"
            )
        plan, readback = extend_decoder_folder(
            model,
            out,
            to,
            method,
            original=original,
            overwrite=overwrite,
            check=check,
            runtimes=runtimes,
            tune=tune,
            dropped=dropped,
            rederive=rederive,
            serving=serving,
            link_weights=link_weights,
        )
        return Report(plan.describe(), search_notes(plan) + readback_notes(readback) + runtime_notes(plan, "folder"))
    if kind == "gguf":
        method = method or default_rope_method("folder" if fmt == "hf" else "gguf")
        return extend_gguf(
            Path(model),
            Path(out),
            to,
            method,
            fmt,
            original,
            overwrite,
            check,
            dtype,
            runtimes,
            tune,
            rederive,
            serving,
        )
    return extend_yaml(Path(model), Path(out), to, method or default_rope_method("yaml"), original, overwrite)
