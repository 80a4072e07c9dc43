"""Loading a causal language model (a Hugging Face folder, or a GGUF dequantized in memory) with its tokenizer,
placed as the user asked, with one clear line when transformers cannot."""

from __future__ import annotations

from pathlib import Path

from .errors import CtxextError
from .placement import Placement


def load_causal_lm(path: str | Path, place: Placement | None = None) -> tuple[object, object]:
    """(model in eval mode, tokenizer); default placement fp32 on the CPU."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    place, path = place or Placement(), Path(path)
    if path.suffix.lower() == ".gguf":
        from .formats.gguf_file import gguf_config

        gguf_config(path)  # validates architecture and file before the slow load
        where, extra = str(path.parent), {"gguf_file": path.name}
    else:
        where, extra = str(path), {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, **extra)
        model = AutoModelForCausalLM.from_pretrained(where, **place.load_kwargs(), **extra).eval()
    except (OSError, ValueError) as exc:
        raise CtxextError(f"transformers cannot load {path}: {str(exc).splitlines()[0]}") from None
    return model, tokenizer
