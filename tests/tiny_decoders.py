"""Tiny random RoPE decoders of each family, built from configs, and a tiny GGUF file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import transformers

import tiny

CONTEXT = 64
_COMMON = dict(
    hidden_size=64,
    num_attention_heads=4,
    num_hidden_layers=2,
    intermediate_size=64,
    vocab_size=tiny.VOCAB,
    max_position_embeddings=CONTEXT,
)

DECODERS = {
    "llama": ("LlamaConfig", dict(_COMMON, num_key_value_heads=2)),
    "mistral": ("MistralConfig", dict(_COMMON, num_key_value_heads=2, sliding_window=None)),
    "qwen2": ("Qwen2Config", dict(_COMMON, num_key_value_heads=2)),
    "phi": ("PhiConfig", dict(_COMMON, partial_rotary_factor=0.5)),
    "gpt_neox": ("GPTNeoXConfig", dict(_COMMON, rotary_pct=0.25)),
    "gemma3_text": (
        "Gemma3TextConfig",
        dict(
            _COMMON,
            num_key_value_heads=2,
            head_dim=16,
            sliding_window=16,
            layer_types=["sliding_attention", "full_attention"],
        ),
    ),
}
ROTARY_DIM = {"llama": 16, "mistral": 16, "qwen2": 16, "phi": 8, "gpt_neox": 4, "gemma3_text": 16}


def save_decoder(family: str, folder: Path, rope: dict | None = None) -> Path:
    config_name, kwargs = DECODERS[family]
    config = getattr(transformers, config_name)(**kwargs)
    if rope is not None:
        config.rope_parameters = {**config.rope_parameters, **rope}
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    model.save_pretrained(folder)
    tiny.tokenizer(CONTEXT, bos_eos=False).save_pretrained(folder)
    return folder


def save_gguf(path: Path, arch: str = "llama", context: int = 2048, freq_base: float = 10000.0) -> Path:
    """A small GGUF with the metadata ctxext reads and a few F32 and Q8_0-shaped tensors."""
    import gguf

    writer = gguf.GGUFWriter(str(path), arch=arch)
    writer.add_context_length(context)
    writer.add_embedding_length(64)
    writer.add_block_count(1)
    writer.add_head_count(4)
    writer.add_rope_dimension_count(16)
    writer.add_rope_freq_base(freq_base)
    writer.add_string("general.name", "tiny")
    writer.add_array("tokenizer.ggml.tokens", ["a", "b", "c"])
    generator = np.random.default_rng(0)
    writer.add_tensor("token_embd.weight", generator.standard_normal((8, 64)).astype(np.float32))
    writer.add_tensor("blk.0.attn_q.weight", generator.standard_normal((64, 64)).astype(np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
