"""GGUF files (llama.cpp): read RoPE facts from metadata, write a copy with new RoPE metadata.

Tensors are copied byte for byte (quantized blocks included); only metadata changes, plus a
``rope_freqs.weight`` tensor for llama3 scaling, which llama.cpp reads as per-pair divisors. Keys
(llama.cpp ``llama-model.cpp``): ``{arch}.context_length``, ``{arch}.rope.freq_base``,
``{arch}.rope.dimension_count``, ``{arch}.rope.scaling.type`` / ``.factor`` / ``.original_context_length``,
``{arch}.rope.scaling.attn_factor`` (multiplies cos and sin at every length: ``cparams.yarn_attn_factor *=``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import CtxextError
from ..values import positive_rate, positive_whole

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
UINT32_MAX = 2**32 - 1  # llama.cpp stores lengths as uint32


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
    for key, value in (("context_length", context), ("rope.dimension_count", rotary)):
        if value is not None:
            positive_whole(value, f"{path}: {arch}.{key}", UINT32_MAX)
    if not rotary:
        positive_whole(heads, f"{path}: {arch}.attention.head_count")
        positive_whole(width, f"{path}: {arch}.embedding_length")
    config = {
        "model_type": arch,
        "max_position_embeddings": int(context),
        "head_dim": int(rotary or width // heads),
        "rope_theta": float(positive_rate(_value(reader, f"{arch}.rope.freq_base", 10000.0), f"{path}: freq_base")),
    }
    scaling = _value(reader, f"{arch}.rope.scaling.type", "none")
    if scaling != "none":
        factor = positive_rate(_value(reader, f"{arch}.rope.scaling.factor"), f"{path}: {arch}.rope.scaling.factor")
        config["rope_scaling"] = {"rope_type": scaling, "factor": factor}
        original = _value(reader, f"{arch}.rope.scaling.original_context_length")
        if original:
            where = f"{path}: {arch}.rope.scaling.original_context_length"
            config["rope_scaling"]["original_max_position_embeddings"] = positive_whole(original, where, UINT32_MAX)
    if any(t.name == ROPE_FREQS for t in reader.tensors):
        raise CtxextError(
            f"{path} already carries per-pair {ROPE_FREQS} factors (llama3-style scaling); "
            "extend the unscaled original instead of compounding them"
        )
    return config


def rope_metadata(arch: str, plan) -> tuple[dict, np.ndarray | None]:
    """(metadata to set, optional rope_freqs tensor) for a RopePlan; ``None`` values remove a key.

    What the method means in llama.cpp comes from its spec (:mod:`ctxext.methods.rope`); key names from
    ``gguf.Keys``."""
    from gguf import GGUFValueType as T
    from gguf import Keys

    rope = plan.spec.gguf(plan)  # raises where llama.cpp cannot express the method
    key = {name: template.format(arch=arch) for name, template in _keys().items()}
    keys = {
        key["context"]: (plan.target, T.UINT32),
        key["base"]: (rope.freq_base or plan.facts.base, T.FLOAT32),
        key["type"]: (rope.scaling_type, T.STRING),
        key["factor"]: None,
        key["original"]: None,
        Keys.Rope.SCALING_ATTN_FACTOR.format(arch=arch): None,
    }
    if rope.attention_factor is not None:
        keys[Keys.Rope.SCALING_ATTN_FACTOR.format(arch=arch)] = (float(rope.attention_factor), T.FLOAT32)
    if rope.scaling_type != "none":
        keys[key["factor"]] = (float(rope.factor), T.FLOAT32)
        keys[key["original"]] = (int(rope.original), T.UINT32)
    divisors = None if rope.divisors is None else rope.divisors.numpy().astype(np.float32)
    return keys, divisors


def _keys() -> dict:
    from gguf import Keys

    return {
        "context": Keys.LLM.CONTEXT_LENGTH,
        "base": Keys.Rope.FREQ_BASE,
        "type": Keys.Rope.SCALING_TYPE,
        "factor": Keys.Rope.SCALING_FACTOR,
        "original": Keys.Rope.SCALING_ORIG_CTX_LEN,
    }


def write_gguf(source: str | Path, target: Path, metadata: dict, extra_tensor: np.ndarray | None = None) -> None:
    """Copy ``source`` to ``target`` with ``metadata`` applied ({key: (value, GGUFValueType)}; None removes a
    key) through gguf's GGUFReader and GGUFWriter: every other key and every tensor (quantized blocks included)
    in the source's order, changed keys in place, new keys after them, ``extra_tensor`` (rope_freqs) last.
    The source's ``general.alignment`` is kept, so every tensor stays aligned."""
    import gguf

    reader = _reader(Path(source))
    writer = gguf.GGUFWriter(
        str(target), arch=_value(reader, gguf.Keys.General.ARCHITECTURE), endianess=reader.endianess
    )
    writer.data_alignment = int(_value(reader, gguf.Keys.General.ALIGNMENT, gguf.GGUF_DEFAULT_ALIGNMENT))
    pending = dict(metadata)
    for name, field in reader.fields.items():
        if name == gguf.Keys.General.ARCHITECTURE or name.startswith("GGUF."):  # the writer writes these itself
            continue
        kind = field.types[0]
        sub_type = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        if name not in pending:
            writer.add_key_value(name, field.contents(), kind, sub_type=sub_type)
        elif (entry := pending.pop(name)) is not None:
            writer.add_key_value(name, *entry, sub_type=sub_type)
    for name, entry in pending.items():
        if entry is not None:
            writer.add_key_value(name, *entry)
    for tensor in reader.tensors:
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
    for tensor in reader.tensors:
        writer.write_tensor_data(tensor.data, tensor_endianess=reader.endianess)
    if extra_tensor is not None:
        writer.write_tensor_data(extra_tensor, tensor_endianess=reader.endianess)
    writer.close()


class GgufRopeWriter:
    """A GGUF copy with the plan's RoPE metadata (and rope_freqs for per-pair methods); tensors byte for byte.
    Read back: the written metadata, every tensor offset a multiple of ``general.alignment``."""

    folder = False

    def __init__(self, source: Path, plan):
        self.source, self.plan = Path(source), plan
        self.metadata, self.divisors = rope_metadata(plan.facts.family, plan)

    def write(self, staging: Path) -> None:
        write_gguf(self.source, staging, self.metadata, self.divisors)

    def read_back(self, staging: Path) -> dict:
        import gguf

        reader = _reader(staging)
        alignment = int(_value(reader, gguf.Keys.General.ALIGNMENT, gguf.GGUF_DEFAULT_ALIGNMENT))
        misaligned = [t.name for t in reader.tensors if (t.data_offset - reader.data_offset) % alignment]
        if misaligned or reader.data_offset % alignment:
            raise CtxextError(f"written GGUF has tensors off its {alignment}-byte alignment: {misaligned[:3]}")
        written = {name: _value(reader, name) for name in self.metadata}
        for name, value in self.metadata.items():
            expected = None if value is None else value[0]
            got = written[name]
            if not (got == expected or (isinstance(expected, float) and abs(got - expected) <= 1e-6 * abs(expected))):
                raise CtxextError(f"written GGUF reads {name} = {got!r}, not {expected!r}")
        readback = {
            "metadata": {k: v for k, v in written.items() if v is not None},
            "alignment": alignment,
            "rope_freqs": self.divisors is not None,
        }
        return readback

    def record(self, staging: Path, readback: dict | None) -> None:
        """A GGUF carries no side files; what was done is in its metadata."""


def read_metadata(path: str | Path, prefix: str = "") -> dict:
    """Every scalar or string metadata value whose key starts with ``prefix`` (arrays left out)."""
    import gguf

    reader = _reader(Path(path))
    values = {}
    for name, field in reader.fields.items():
        if name.startswith(prefix) and field.types and field.types[0] != gguf.GGUFValueType.ARRAY:
            values[name] = field.contents()
    return values
