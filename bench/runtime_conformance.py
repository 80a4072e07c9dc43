"""SmolLM2-135M extended by each RoPE method and scored on the same tokens in transformers, vLLM and llama.cpp.

    python bench/runtime_conformance.py --to 16384 --methods yarn,longrope,dynamic \
        --out bench/results/smollm2_conformance_16k.json
    python bench/runtime_conformance.py --to 32768 --window 16384 --methods yarn \
        --out bench/results/smollm2_conformance_16k_headroom.json     # YaRN set to 32k, asked at 16k

Folders (dequantized float32) are scored by transformers and vLLM, GGUFs (Q4_1 tensors, copied) by llama.cpp.
Every row scores the same targets: the last 8,190 of a window of ``--to`` - 1 tokens of Persuasion (vLLM
counts one generated token against the window). The native rows score those targets with the unscaled
model from a window of 8,191 tokens that ends with them, in each runtime, so "vs native" compares like with
like inside one runtime.
Runtimes come from scripts/setup-runtimes.sh.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import assets

from ctxext.conformance import conform, conformance_table, tokens_from_text
from ctxext.formats.provenance import versions
from ctxext.runtimes import score_external
from ctxext.runtimes.scoring import score_transformers

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "persuasion.txt"


def native_rows(gguf: Path, folder: Path, tokens: list[int], score_from: int, runtimes: list[str]) -> list[dict]:
    window = tokens[score_from - 1 :]
    rows = []
    for runtime in runtimes:
        if runtime == "transformers":
            result = score_transformers(folder, window, 1)
        else:
            result = score_external(runtime, gguf if runtime == "llama.cpp" else folder, window, 1)
        if result.get("nll") is not None:
            result["ppl"] = math.exp(result["nll"] / result["count"])
        rows.append({"method": "native", "runtime": runtime, "window": len(window), **result})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--to", type=int, default=16384)
    parser.add_argument("--methods", default="yarn,longrope,dynamic")
    parser.add_argument("--runtimes", default="transformers,vllm,llama.cpp")
    parser.add_argument("--work", default="runs/conformance")
    parser.add_argument("--scored", type=int, default=8190, help="targets scored at the end of the window")
    parser.add_argument("--window", type=int, help="tokens in the window (default: --to); less leaves headroom")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    gguf = assets.smollm2_gguf()
    runtimes = args.runtimes.split(",")
    tokens = tokens_from_text(gguf, [str(CORPUS)], (args.window or args.to) - 1)
    score_from = len(tokens) - args.scored
    rows = conform(gguf, args.to, args.methods.split(","), tokens, score_from, runtimes, args.work)
    natives = native_rows(gguf, Path(args.work) / "source", tokens, score_from, runtimes)
    for row in rows:
        native = next((n.get("ppl") for n in natives if n["runtime"] == row["runtime"]), None)
        if native and row.get("ppl"):
            row["vs_native"] = row["ppl"] / native - 1
    record = {"model": str(gguf.name), "to": args.to, "tokens": len(tokens), "score_from": score_from}
    Path(args.out).write_text(
        json.dumps({**record, "versions": versions(), "native": natives, "rows": rows}, indent=2) + "\n"
    )
    print(conformance_table(natives + rows))
    for row in rows:
        if "vs_native" in row:
            print(f"{row['method']:>10} {row['runtime']:>12}: {100 * row['vs_native']:+.2f}% vs native in that runtime")


if __name__ == "__main__":
    main()
