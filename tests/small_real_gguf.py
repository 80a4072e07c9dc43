"""A small float32 GGUF cut from the real SmolLM2-135M: its first layers, its tokenizer, a short context.

Real weights make attention depend on position, so a runtime that reads RoPE scaling wrongly scores the same
tokens differently; float32 tensors (dequantized from Q4_1) make transformers, vLLM and llama.cpp compute
the same numbers up to kernel rounding; a short context puts "beyond the window" a few hundred tokens away.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_small_gguf(source: Path, target: Path, layers: int = 2, context: int = 256, alignment: int = 32) -> Path:
    import gguf
    from gguf.quants import dequantize

    reader = gguf.GGUFReader(str(source))
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    writer = gguf.GGUFWriter(str(target), arch=arch)
    if alignment != gguf.GGUF_DEFAULT_ALIGNMENT:
        writer.add_custom_alignment(alignment)
    replaced = {
        gguf.Keys.LLM.BLOCK_COUNT.format(arch=arch): layers,
        gguf.Keys.LLM.CONTEXT_LENGTH.format(arch=arch): context,
        gguf.Keys.General.FILE_TYPE: 0,  # all F32
    }
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in (
            gguf.Keys.General.ARCHITECTURE,
            gguf.Keys.General.ALIGNMENT,
        ):
            continue
        kind = field.types[0]
        sub_type = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        value = replaced.get(field.name, field.contents())
        writer.add_key_value(field.name, value, kind, sub_type=sub_type)
    for tensor in reader.tensors:
        if tensor.name.startswith("blk.") and int(tensor.name.split(".")[1]) >= layers:
            continue
        data = dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        writer.add_tensor(tensor.name, data, raw_dtype=gguf.GGMLQuantizationType.F32)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return target
