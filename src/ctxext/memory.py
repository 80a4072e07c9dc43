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
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

LLAMA_3_1_8B = dict(  # the shapes of an 8B model, for planning memory on the meta device
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    vocab_size=128256,
    max_position_embeddings=131072,
    rope_parameters={
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
        "rope_theta": 500000.0,
    },
)
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


class Allocations(TorchDispatchMode):
    """Every tensor the operations run under it allocate (shapes, and the largest in elements): how a model's
    memory is planned on PyTorch's meta device, with shapes and no weights. A copy of a meta tensor to the CPU
    gives zeros and a scalar read gives 0, so code that moves results to the host runs through."""

    def __init__(self):
        super().__init__()
        self.largest, self.largest_bytes, self.shapes = 0, 0, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        source = args[0] if args and isinstance(args[0], torch.Tensor) else None
        copies = (torch.ops.aten._to_copy, torch.ops.aten.to)  # under inference mode ``to`` is not decomposed
        if func.overloadpacket in copies and source is not None and source.is_meta:
            if torch.device(kwargs.get("device") or source.device).type == "cpu":
                return torch.zeros(source.shape, dtype=kwargs.get("dtype") or source.dtype)
        if func is torch.ops.aten._local_scalar_dense.default and source is not None and source.is_meta:
            return 0
        out = func(*args, **kwargs)
        if any(result.alias_info is not None for result in func._schema.returns):
            return out  # a view or an in-place result allocates nothing
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor):
                self.largest = max(self.largest, tensor.numel())
                self.largest_bytes = max(self.largest_bytes, tensor.numel() * tensor.element_size())
                self.shapes.append(tuple(tensor.shape))
        return out


def meta_llama(shapes: dict = LLAMA_3_1_8B, dtype=torch.bfloat16):
    """A Llama causal LM of these shapes on the meta device: every shape and dtype, no weights, no memory."""
    import transformers

    with torch.device("meta"):
        return transformers.AutoModelForCausalLM.from_config(transformers.LlamaConfig(**shapes), dtype=dtype).eval()
