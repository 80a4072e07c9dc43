"""What ctxext's long-input paths allocate on an 8B model, planned on PyTorch's meta device (shapes, no weights):
the largest tensor each path creates, its largest full-vocabulary tensor, whether any n x n tensor exists, and
how many passkey prompts of each length 80 GiB hold. Llama-3.1-8B's shapes, bf16.

usage: python bench/memory_8b.py [--lengths 32768 131072]
"""

from __future__ import annotations

import argparse
import math
from types import SimpleNamespace

import torch

from ctxext.decoders import long_attention as la
from ctxext.eval.tasks import drift
from ctxext.memory import Allocations, meta_llama, prompt_batch, prompt_bytes
from ctxext.windows import Window, window_nll

GB = 1e9


def report(name: str, length: int, seen: Allocations, vocabulary: int) -> None:
    rows = [math.prod(s[:-1]) for s in seen.shapes if s and s[-1] == vocabulary]
    square = any(len(s) >= 2 and s[-2:] == (length, length) for s in seen.shapes)
    shape = max(seen.shapes, key=math.prod)
    print(
        f"| {name} | {length} | {shape} | {seen.largest_bytes / GB:.2f} | {max(rows) if rows else 0} | "
        f"{'yes' if square else 'no'} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lengths", type=int, nargs="+", default=[32768, 131072])
    lengths = parser.parse_args().lengths
    import transformers.masking_utils as masking

    masking.find_packed_sequence_indices = lambda position_ids: None  # it reads values; meta tensors have none
    model = meta_llama()
    config = model.config
    print("| path | tokens | largest tensor | its GB | vocabulary rows at once | n x n tensor |")
    print("|---|---|---|---|---|---|")
    for length in lengths:
        ids = torch.randint(0, 1000, (length + 1,))
        with Allocations() as seen:
            window_nll(model, ids, Window(0, length, 1))
        report("eval ppl (one window)", length, seen, config.vocab_size)
        with Allocations() as seen:
            hidden = drift.last_hidden(model, ids[:length]).cpu()
            drift.chunked_drift(model, [hidden], [ids[:length]])
        report("eval drift (one window)", length, seen, config.vocab_size)
        for method in ("self-extend", "dca", "string"):
            scheme = la.choose(method, 8192 if method != "string" else length, length)
            query = torch.empty(1, 32, length, 128, dtype=torch.bfloat16, device="meta")
            key, value = (torch.empty(1, 8, length, 128, dtype=torch.bfloat16, device="meta") for _ in range(2))
            inv_freq = 1.0 / (500000.0 ** (torch.arange(0, 128, 2).double() / 128))
            module = SimpleNamespace(ctxext_scheme=scheme, ctxext_inv_freq=inv_freq, num_key_value_groups=4)
            with Allocations() as seen:
                la.remapped_attention(module, query, key, value, None, scaling=128**-0.5)
            report(f"{method} attention (one layer)", length, seen, config.vocab_size)
    print("\n| tokens | one passkey prompt (GB) | prompts 80 GiB hold (of 8 asked) |\n|---|---|---|")
    for length in lengths:
        per = prompt_bytes(config, length + 8, 2)
        print(f"| {length} | {per / GB:.1f} | {prompt_batch(model, length + 8, 8, free=80 * 2**30)} |")


if __name__ == "__main__":
    main()
