"""How many long prompts a device holds at once (free memory and what one prompt's prefill costs), and what a
piece of work cost (time, peak GPU memory).

One greedy prompt of n tokens holds its KV cache, 2 x layers x kv_heads x head_dim x n values, for the
whole decode, and at its peak one layer's activations: the MLP's gate, up and product (3 x n x
intermediate) beside a few hidden-state copies (4 x n x hidden). ``generate`` keeps one row of logits, so
the vocabulary does not enter. For Llama-3.1-8B in bf16 at 131,072 tokens that is 17.2 GB + 15.6 GB.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

HEADROOM = 0.9  # of the free memory, the share prompts may take (the allocator fragments the rest)


def free_bytes(device: torch.device) -> int:
    """Memory free on ``device`` now: the CUDA driver's count, MPS's recommended budget left, or RAM available."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "mps":
        return torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory()
    import psutil

    return psutil.virtual_memory().available


def prompt_bytes(config, tokens: int, element_bytes: int) -> int:
    """Peak bytes one prompt of ``tokens`` tokens adds during prefill and decoding (module docstring)."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    heads = text.num_attention_heads
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    intermediate = getattr(text, "intermediate_size", None) or 4 * text.hidden_size
    cache = 2 * text.num_hidden_layers * kv_heads * head_dim * tokens
    activations = tokens * (3 * intermediate + 4 * text.hidden_size)
    return (cache + activations) * element_bytes


def prompt_batch(model, tokens: int, most: int, free: int | None = None) -> int:
    """Prompts of ``tokens`` tokens to decode together: at most ``most``, as many as the free memory of the device
    that takes the inputs holds, never fewer than one."""
    weight = model.get_input_embeddings().weight
    free = free_bytes(weight.device) if free is None else free
    fits = int(HEADROOM * free) // max(prompt_bytes(model.config, tokens, weight.element_size()), 1)
    return max(1, min(most, fits))


@contextmanager
def cost():
    """Yield a dict that holds, on exit, the seconds taken and the most GPU memory allocated meanwhile (bytes,
    summed over every CUDA device; None without CUDA, where PyTorch keeps no such count)."""
    import time

    gpus = range(torch.cuda.device_count()) if torch.cuda.is_available() else ()
    for gpu in gpus:
        torch.cuda.reset_peak_memory_stats(gpu)
    spent, started = {}, time.perf_counter()
    try:
        yield spent
    finally:
        spent["seconds"] = time.perf_counter() - started
        spent["peak_gpu_bytes"] = sum(torch.cuda.max_memory_allocated(gpu) for gpu in gpus) if gpus else None
