"""A GGUF file as a Hugging Face folder: transformers dequantizes it to float32 but refuses to save a
model loaded that way, so the weights are moved into a fresh model built from a clean config."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..errors import CtxextError
from ..placement import dtype_named

log = logging.getLogger(__name__)


def gguf_to_hf_folder(path: str | Path, target: Path, dtype: str = "float32") -> None:
    """Write ``target`` (an existing empty folder) as a plain HF causal-LM folder with tokenizer; the
    dequantized weights are cast to ``dtype`` (float32, bfloat16 or float16)."""
    cast = dtype_named(dtype)
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    folder, name = str(path.parent), path.name
    log.info("dequantizing %s with transformers (this takes a minute or more)", path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except (ValueError, KeyError, OSError, RuntimeError) as exc:
        raise CtxextError(f"transformers cannot read {path}: {str(exc).splitlines()[0]}") from None
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = AutoConfig.for_model(
        **{k: v for k, v in config_dict.items() if k != "model_type"}, model_type=config_dict["model_type"]
    )
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    tied = {k for k in missing if k.endswith("lm_head.weight")} if config.tie_word_embeddings else set()
    if set(missing) - tied or unexpected:
        raise CtxextError(
            f"GGUF tensors do not match the model: missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}"
        )
    del loaded
    fresh.to(cast).save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))
