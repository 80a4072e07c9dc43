"""GGUF files (llama.cpp): read RoPE facts from metadata, write a copy with new RoPE metadata.

Tensors are copied byte for byte (quantized blocks included); only metadata changes, plus a
``rope_freqs.weight`` tensor for llama3 scaling, which llama.cpp reads as per-pair divisors. Keys
(llama.cpp ``llama-model.cpp``): ``{arch}.context_length``, ``{arch}.rope.freq_base``,
``{arch}.rope.dimension_count``, ``{arch}.rope.scaling.type`` / ``.factor`` / ``.original_context_length``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import CtxextError

# Architectures whose llama.cpp graph applies plain (NeoX or normal) RoPE with the scaling keys above.
GGUF_ARCHITECTURES = (
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "phi3",
    "granite",
    "olmo",
    "olmo2",
    "stablelm",
    "starcoder2",
    "internlm2",
    "deepseek",
    "exaone",
    "smollm3",
)
PER_LAYER_ROPE = ("gemma2", "gemma3", "gemma3n", "cohere2")
ROPE_FREQS = "rope_freqs.weight"


def _reader(path: Path):
    import gguf

    try:
        return gguf.GGUFReader(str(path))
    except (ValueError, KeyError, IndexError, OSError, EOFError, TypeError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CtxextError(f"unreadable or truncated GGUF file {path}: {message}") from None


def _value(reader, key: str, default=None):
    field = reader.fields.get(key)
    if field is None:
        return default
    value = field.contents()
    return value if value is not None else default


def gguf_config(path: str | Path) -> dict:
    """A config.json-like dict of the facts ctxext needs, read from GGUF metadata."""
    path = Path(path)
    if not path.is_file():
        raise CtxextError(f"no such file: {path}")
    reader = _reader(path)
    arch = _value(reader, "general.architecture")
    if arch is None:
        raise CtxextError(f"{path} has no general.architecture key")
    if arch in PER_LAYER_ROPE:
        raise CtxextError(
            f"GGUF architecture {arch!r} has sliding-window layers with their own rope base beside the "
            "full-attention layers, and llama.cpp's scaling keys do not say which layers they apply to; "
            "extend the Hugging Face version of the model, where only the full-attention layers are "
            "scaled"
        )
    if arch not in GGUF_ARCHITECTURES:
        raise CtxextError(
            f"GGUF architecture {arch!r} is not one ctxext knows how to rescale "
            f"(known: {', '.join(GGUF_ARCHITECTURES)})"
        )
    context = _value(reader, f"{arch}.context_length")
    rotary = _value(reader, f"{arch}.rope.dimension_count")
    heads = _value(reader, f"{arch}.attention.head_count")
    width = _value(reader, f"{arch}.embedding_length")
    if context is None or not (rotary or (heads and width)):
        raise CtxextError(f"{path} lacks {arch}.context_length or the rotary dimension")
    config = {
        "model_type": arch,
        "max_position_embeddings": int(context),
        "head_dim": int(rotary or width // heads),
        "rope_theta": float(_value(reader, f"{arch}.rope.freq_base", 10000.0)),
    }
    scaling = _value(reader, f"{arch}.rope.scaling.type", "none")
    if scaling != "none":
        config["rope_scaling"] = {"rope_type": scaling, "factor": _value(reader, f"{arch}.rope.scaling.factor")}
        original = _value(reader, f"{arch}.rope.scaling.original_context_length")
        if original:
            config["rope_scaling"]["original_max_position_embeddings"] = int(original)
    if any(t.name == ROPE_FREQS for t in reader.tensors):
        raise CtxextError(
            f"{path} already carries per-pair {ROPE_FREQS} factors (llama3-style scaling); "
            "extend the unscaled original instead of compounding them"
        )
    return config


def rope_metadata(arch: str, plan) -> tuple[dict, np.ndarray | None]:
    """(metadata to set, optional rope_freqs tensor) for a RopePlan; ``None`` values remove a key."""
    from gguf import GGUFValueType as T

    keys = {
        f"{arch}.context_length": (plan.target, T.UINT32),
        f"{arch}.rope.freq_base": (plan.rope_theta, T.FLOAT32),
        f"{arch}.rope.scaling.type": ("none", T.STRING),
        f"{arch}.rope.scaling.factor": None,
        f"{arch}.rope.scaling.original_context_length": None,
        f"{arch}.rope.scaling.attn_factor": None,
    }
    freqs = None
    if plan.method in ("linear", "yarn"):
        keys[f"{arch}.rope.scaling.type"] = (plan.method, T.STRING)
        keys[f"{arch}.rope.scaling.factor"] = (plan.factor, T.FLOAT32)
        keys[f"{arch}.rope.scaling.original_context_length"] = (plan.original, T.UINT32)
    elif plan.method == "llama3":
        scaled, _ = plan.inv_freq()
        from ..methods.rope import default_inv_freq

        freqs = (default_inv_freq(plan.facts.dim, plan.facts.base) / scaled).numpy().astype(np.float32)
    elif plan.method == "dynamic":
        raise CtxextError("llama.cpp has no dynamic NTK scaling; choose linear, ntk, yarn or llama3 for a GGUF output")
    return keys, freqs


def write_gguf(source: str | Path, target: Path, metadata: dict, extra_tensor: np.ndarray | None = None) -> None:
    """Copy ``source`` to ``target`` with ``metadata`` applied (value None removes a key)."""
    import gguf

    reader = _reader(Path(source))
    arch = _value(reader, "general.architecture")
    writer = gguf.GGUFWriter(str(target), arch=arch, endianess=reader.endianess)
    pending = dict(metadata)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue
        if field.name in pending:
            replacement = pending.pop(field.name)
            if replacement is not None:
                writer.add_key_value(field.name, replacement[0], replacement[1])
            continue
        kind = field.types[0]
        sub_type = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub_type)
    for name, replacement in pending.items():
        if replacement is not None:
            writer.add_key_value(name, replacement[0], replacement[1])
    tensors = list(reader.tensors)
    for tensor in tensors:
        writer.add_tensor_info(
            tensor.name, tensor.data.shape, tensor.data.dtype, tensor.data.nbytes, tensor.tensor_type
        )
    if extra_tensor is not None:
        writer.add_tensor_info(
            ROPE_FREQS, extra_tensor.shape, extra_tensor.dtype, extra_tensor.nbytes, gguf.GGMLQuantizationType.F32
        )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for tensor in tensors:
        writer.write_tensor_data(tensor.data, tensor_endianess=reader.endianess)
    if extra_tensor is not None:
        writer.write_tensor_data(extra_tensor)
    writer.close()


def read_metadata(path: str | Path, prefix: str = "") -> dict:
    """Every scalar or string metadata value whose key starts with ``prefix`` (arrays left out)."""
    import gguf

    reader = _reader(Path(path))
    values = {}
    for name, field in reader.fields.items():
        if name.startswith(prefix) and field.types and field.types[0] != gguf.GGUFValueType.ARRAY:
            values[name] = field.contents()
    return values
