"""Runtime conformance: each method's written output, in each format, scored on the same tokens in every
runtime that reads that format (transformers and vLLM read folders, llama.cpp reads GGUF).

The reference is transformers on the written folder. A method conforms when every runtime's perplexity on
the scored tokens is finite and close to the reference; GGUF tensors may be quantized, so llama.cpp is
compared with a looser tolerance than vLLM, which reads the same float32 folder.
"""

from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path

from .errors import CtxextError, did_you_mean
from .runtimes import RUNTIMES, Serving, score_external
from .runtimes.scoring import score_transformers

log = logging.getLogger(__name__)


def check_runtimes(runtimes: list[str] | None) -> list[str]:
    runtimes = runtimes or list(RUNTIMES)
    unknown = [name for name in runtimes if name not in RUNTIMES]
    if unknown:
        raise CtxextError(
            f"unknown runtime {unknown[0]!r}{did_you_mean(unknown[0], RUNTIMES)}; choose from {', '.join(RUNTIMES)}"
        )
    return runtimes


def _row(method: str, runtime: str, written: Path, result: dict) -> dict:
    row = {"method": method, "runtime": runtime, "file": written.name, **result}
    if result.get("nll") is not None and result.get("count"):
        row["ppl"] = math.exp(result["nll"] / result["count"])
    return row


def _write(source: Path, out: Path, to: int, method: str, fmt: str = "same", link: bool = False) -> str | None:
    """Write one method's output (``link``: a folder's weight files linked to the source's); the refusal, if any."""
    from . import api

    try:
        api.extend(source, out, to, method, fmt=fmt, link_weights=link)
    except CtxextError as exc:
        return f"refused: {exc}"
    return None


def conform(
    model: str | Path,
    to: int,
    methods: list[str],
    tokens: list[int],
    score_from: int,
    runtimes: list[str] | None = None,
    workdir: str | Path | None = None,
    kv_cache_gib: int = 4,
    serving: Serving | None = None,
) -> list[dict]:
    """Rows of {method, runtime, file, ppl, nll, count, finite, seconds, vs_transformers | error}; ``serving``
    places transformers' reference and sets vLLM's engine (default fp32 on the CPU)."""
    from .decoders.rope_plan import check_rope_method
    from .inputs import input_kind

    runtimes = check_runtimes(runtimes)
    if not methods:
        raise CtxextError("give at least one method to score")
    for method in methods:
        if method != "none":
            check_rope_method(method)
    if workdir is not None and Path(workdir).is_dir() and any(Path(workdir).iterdir()):
        raise CtxextError(f"{workdir} already holds files; --keep needs a new or empty folder")
    if not 0 < score_from < len(tokens):
        raise CtxextError(f"the first scored token ({score_from}) must lie inside the {len(tokens)} tokens")
    model = Path(model)
    kind = input_kind(model)
    if kind not in ("rope", "gguf"):
        raise CtxextError("conformance runs on RoPE decoders (a model folder or a .gguf file)")
    temp = tempfile.TemporaryDirectory(prefix="ctxext-conform-") if workdir is None else None
    work = Path(temp.name if temp else workdir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        folder_source = model
        if kind == "gguf" and any(RUNTIMES[r].reads == "folder" for r in runtimes):
            from .formats.gguf_to_hf import gguf_to_hf_folder

            folder_source = work / "source"
            if not folder_source.exists():
                folder_source.mkdir()
                gguf_to_hf_folder(model, folder_source)
        rows, serving = [], serving or Serving()
        for method in methods:
            written = _write_method(model, kind, folder_source, work, to, method, runtimes, linked=temp is not None)
            rows += _score_method(method, written, tokens, score_from, runtimes, kv_cache_gib, serving)
        return rows
    finally:
        if temp:
            temp.cleanup()


def _write_method(model, kind, folder_source, work, to, method, runtimes, linked) -> dict:
    """{"folder" / "gguf": (written path, refusal or None)} for the forms the runtimes read; ``none`` is the
    unchanged model (the gap between runtimes that no scaling explains: quantization). ``linked``: folders link
    to the source's weights (a temporary work folder; --keep copies them)."""
    outputs = {}
    if any(RUNTIMES[r].reads == "folder" for r in runtimes):
        target = work / method
        outputs["folder"] = (
            (folder_source, None)
            if method == "none"
            else (target, _write(folder_source, target, to, method, link=linked))
        )
    if kind == "gguf" and any(RUNTIMES[r].reads == "gguf" for r in runtimes):
        target = work / f"{method}.gguf"
        outputs["gguf"] = (model, None) if method == "none" else (target, _write(model, target, to, method))
    return outputs


def _score_method(method, outputs, tokens, score_from, runtimes, kv_cache_gib, serving) -> list[dict]:
    rows = []
    for runtime in runtimes:
        reads = RUNTIMES[runtime].reads
        if reads not in outputs:
            continue
        written, refused = outputs[reads]
        if refused:
            rows.append(_row(method, runtime, written, {"error": refused}))
            continue
        log.info("scoring %s in %s", written.name, runtime)
        if runtime == "transformers":
            result = score_transformers(written, tokens, score_from, serving.place)
        else:
            engine = serving.engine() if runtime == "vllm" else {}
            result = score_external(runtime, written, tokens, score_from, kv_cache_gib=kv_cache_gib, **engine)
        rows.append(_row(method, runtime, written, result))
    reference = next((r.get("ppl") for r in rows if r["runtime"] == "transformers"), None)
    for row in rows:
        if reference and row.get("ppl"):
            row["vs_transformers"] = row["ppl"] / reference - 1
    return rows


def tokens_from_text(model: str | Path, data: list[str], count: int) -> list[int]:
    """The first ``count`` token ids of the texts, with the model's own tokenizer (a folder's, or a GGUF's)."""
    from transformers import AutoTokenizer

    from .inputs import input_kind
    from .texts import read_corpus

    model = Path(model)
    where, extra = (str(model.parent), {"gguf_file": model.name}) if input_kind(model) == "gguf" else (str(model), {})
    tokenizer = AutoTokenizer.from_pretrained(where, **extra)
    ids = tokenizer(read_corpus(data), add_special_tokens=False)["input_ids"]
    if len(ids) < count:
        raise CtxextError(f"the texts hold {len(ids)} tokens; {count} are needed")
    return ids[:count]


def conform_text(
    model, to: int, methods, data, count=None, score_from=None, runtimes=None, workdir=None, serving=None
) -> dict:
    """``conform`` on the first tokens of text files: by default a window of ``to`` - 1 tokens (vLLM counts
    the one token it must generate against the window) scored from its middle. Returns the results record."""
    from .formats.provenance import versions

    count = count or to - 1
    tokens = tokens_from_text(model, data, count)
    score_from = count // 2 if score_from is None else score_from
    rows = conform(model, to, methods, tokens, score_from, runtimes, workdir, serving=serving)
    return {
        "model": str(model),
        "to": to,
        "tokens": count,
        "score_from": score_from,
        "versions": versions(),
        "rows": rows,
    }


def conformance_table(rows: list[dict]) -> str:
    lines = ["| method | runtime | file | perplexity | vs transformers | seconds |", "|---|---|---|---|---|---|"]
    for row in rows:
        if "error" in row:
            cells = [row["method"], row["runtime"], row.get("file", "-"), row["error"][:120], "-", "-"]
        else:
            ppl = f"{row['ppl']:.4f}" if row.get("ppl") else "NaN"
            diff = f"{100 * row['vs_transformers']:+.2f}%" if "vs_transformers" in row else "-"
            cells = [row["method"], row["runtime"], row.get("file", "-"), ppl, diff, f"{row.get('seconds', 0):.0f}"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)
