"""Seconds one attention layer takes under each run-time attention method, against PyTorch's SDPA on the same
tensors: a prefill of LENGTH queries and one cached decoding step (1 query, LENGTH keys), at SmolLM2-135M's shape
(9 query heads, 3 key/value heads, 64 dims) unless told otherwise, with random queries, keys and values.

    python bench/attention_cost.py --length 16384 --context 8192 --methods self-extend dca string+yarn

The warm-up call before the timed ones leaves what a model's first layer leaves for the others (the key
rotations' tables, where the version has them). A method with a RoPE scaling (string+yarn) is timed with its
parameters chosen for LENGTH as the trained context, as ``ctxext eval`` runs it. ``--src`` imports ctxext from
another checkout's ``src`` (an earlier commit, say), so two versions can be timed one after the other on the same
machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from types import SimpleNamespace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--length", type=int, default=16384)
    parser.add_argument("--context", type=int, default=8192, help="the model's trained context")
    parser.add_argument("--methods", nargs="+", default=["self-extend", "dca", "string+yarn"])
    parser.add_argument("--heads", type=int, default=9)
    parser.add_argument("--kv-heads", type=int, default=3)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--src", help="a src folder to import ctxext from")
    args = parser.parse_args()
    if args.src:
        sys.path.insert(0, args.src)
    import torch

    from ctxext.decoders import long_attention as la
    from ctxext.decoders.attention_labels import parse_label

    torch.manual_seed(0)
    n, groups = args.length, args.heads // args.kv_heads
    q = torch.randn(1, args.heads, n, args.dim)
    k, v = (torch.randn(1, args.kv_heads, n, args.dim) for _ in range(2))
    inv_freq = 1.0 / (100000 ** (torch.arange(0, args.dim, 2).float() / args.dim))
    positions = torch.arange(n)[None]

    def seconds(call) -> float:
        call()  # warm-up: first-call imports and allocations
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    def sdpa(queries):
        return torch.nn.functional.scaled_dot_product_attention(
            queries, k, v, is_causal=queries.shape[2] > 1, enable_gqa=True
        )

    rows = {"sdpa": {"prefill": seconds(lambda: sdpa(q)), "decode": seconds(lambda: sdpa(q[:, :, -1:]))}}
    for label in args.methods:
        method, params, scaling = parse_label(label)
        scheme = la.choose(method, n if scaling else args.context, n, **params)
        module = SimpleNamespace(ctxext_scheme=scheme, ctxext_inv_freq=inv_freq, num_key_value_groups=groups)
        if hasattr(la, "KeyShifts"):  # as enable() sets it: the key rotations' tables shared by every layer
            module.ctxext_key_shifts = la.KeyShifts(scheme, inv_freq)

        def remapped(queries, module=module):
            return la.remapped_attention(module, queries, k, v, None, position_ids=positions[:, -queries.shape[2] :])

        rows[label] = {
            "prefill": seconds(lambda remapped=remapped: remapped(q)),
            "decode": seconds(lambda remapped=remapped: remapped(q[:, :, -1:])),
            "parameters": scheme.describe(),
        }
    base = rows["sdpa"]
    print(f"{'method':<14} {'prefill s':>10} {'x sdpa':>7} {'decode ms':>10} {'x sdpa':>7}")
    for label, row in rows.items():
        print(
            f"{label:<14} {row['prefill']:>10.2f} {row['prefill'] / base['prefill']:>7.2f} "
            f"{1000 * row['decode']:>10.1f} {row['decode'] / base['decode']:>7.2f}"
        )
    print(json.dumps({"length": n, "threads": torch.get_num_threads(), "rows": rows}))


if __name__ == "__main__":
    main()
