"""The ``hf`` output format: a Hugging Face folder that plain transformers and sentence-transformers load, from an
encoder with a learned table (table resampled), a RoPE model folder (config rewritten) or a GGUF (dequantized)."""

from __future__ import annotations

from ..errors import CtxextError
from .decoder_folder import extend_decoder_folder
from .encoder_folder import extend_encoder
from .gguf import gguf_to_folder
from .outputs import DEFAULT_LEARNED_METHOD, OutputFormat, Request, default_rope_method, register
from .summary import Report, readback_notes, runtime_notes, search_notes


def encoder_folder(request: Request) -> Report:
    if request.dtype:
        raise CtxextError("--dtype applies to a GGUF converted to a folder; an encoder keeps its own dtype")
    if request.original:
        raise CtxextError("--original is a RoPE decoder's trained context; an encoder's is its table's length")
    plan, result = extend_encoder(
        request.model,
        request.out,
        request.to,
        request.method or DEFAULT_LEARNED_METHOD,
        overwrite=request.overwrite,
        check=request.check,
        texts=request.texts,
        dropped=request.dropped,
        **request.table_options,
    )
    notes = []
    if result:
        notes.append(
            f"long input: a {result.long_input_tokens}-token text encodes "
            f"({'finite' if result.long_input_ok else 'NOT finite'} embedding)"
        )
    return Report(plan.describe(), notes, {plan.method: result.short_text_drift} if result else None)


def rope_folder(request: Request) -> Report:
    if request.dtype and not (request.tune or request.runtimes):
        raise CtxextError(
            "--dtype applies to a GGUF converted to a folder or to what --tune and --check-runtime compute; "
            "a folder keeps its own dtype"
        )
    plan, readback = extend_decoder_folder(
        request.model,
        request.out,
        request.to,
        request.method or default_rope_method("folder"),
        original=request.original,
        overwrite=request.overwrite,
        check=request.check,
        runtimes=request.runtimes,
        tune=request.tune,
        dropped=request.dropped,
        rederive=request.rederive,
        serving=request.serving,
        link_weights=request.link_weights,
    )
    return Report(plan.describe(), search_notes(plan) + readback_notes(readback) + runtime_notes(plan, "folder"))


register(
    OutputFormat(
        "hf",
        "a Hugging Face folder (config.json, safetensors, tokenizer, sentence-transformers modules)",
        {"learned": encoder_folder, "rope": rope_folder, "gguf": gguf_to_folder},
        native=("learned", "rope"),
        refusals={"yaml": "a NeMo / Cerebras config has no weights to put in a folder; it is written as YAML"},
        runtimes=("transformers", "sentence-transformers", "vllm"),
    )
)
