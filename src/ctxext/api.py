"""One entry point for every kind of input: what a path holds and ``fmt`` decide which pipeline runs.

* a folder whose family has a learned absolute table -> a folder with the table resampled (:mod:`.extend.hf`)
* a folder of a RoPE model                              -> a folder with RoPE scaling in its config (same)
* a ``.gguf`` file                                      -> GGUF out (:mod:`.extend.gguf`); a folder with ``fmt="hf"``
* a ``.yaml`` / ``.yml`` NeMo or Cerebras model config  -> the same config with PI settings (:mod:`.extend.yaml`)

The output formats and the input kinds each takes are :data:`ctxext.extend.outputs.OUTPUT_FORMATS`.
"""

from __future__ import annotations

from pathlib import Path

from .errors import CtxextError
from .extend import gguf, hf, vllm_overrides, yaml  # noqa: F401  (each registers its output format)
from .extend.outputs import (  # noqa: F401  (the defaults: part of the API)
    DEFAULT_LEARNED_METHOD,
    DEFAULT_ROPE_METHOD,
    OUTPUT_FORMATS,
    Request,
    choose,
    default_rope_method,
)
from .extend.summary import Report
from .formats.hf_folder import open_model_folder, remote_code
from .inputs import given_options, input_kind, refuse_unextended  # noqa: F401  (input_kind: part of the API)


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
    kind = input_kind(model, base_class)
    refuse_unextended(model, kind)
    output = choose(fmt, kind)
    if base_class and kind not in ("learned", "rope"):
        raise CtxextError("--base-class applies to model folders that map to code of their own")
    dropped = tuple(remote_code(open_model_folder(model))) if base_class else ()
    if rederive and kind not in ("rope", "gguf"):
        raise CtxextError("--rederive applies to RoPE decoders that already carry scaling")
    if runtimes and not check:
        raise CtxextError("--check-runtime is part of the check; drop --no-check")
    if tune and kind not in ("rope", "gguf"):
        raise CtxextError("--tune searches RoPE divisors; it applies to RoPE decoders (folders and GGUF)")
    if tune:
        method = method or "longrope"
        tune = {"place": serving.place if serving else None, **tune}
    if runtimes and kind not in ("rope", "gguf"):
        raise CtxextError("--check-runtime reads back RoPE decoders (folders in vllm, GGUF files in llama.cpp)")
    request = Request(
        model,
        Path(out),
        to,
        method,
        dtype=dtype,
        runtimes=runtimes,
        overwrite=overwrite,
        check=check,
        texts=texts,
        original=original,
        tune=tune,
        rederive=rederive,
        serving=serving,
        link_weights=link_weights,
        dropped=dropped,
        table_options=given_options(table_options),
    )
    return output.pipelines[kind](request)
