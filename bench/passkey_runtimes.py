"""Passkey retrieval at the edge of the window, in the runtime that serves the model (vLLM or llama.cpp).

    python bench/passkey_runtimes.py --runtime vllm --length 16300 --trials 2 \
        --model yarn=runs/conformance/yarn --model yarn-headroom=runs/headroom/yarn \
        --tokenizer runs/conformance/source --out bench/results/smollm2_passkey_vllm_16k.json

The prompts are ctxext eval's (the PI / Landmark template, ``ctxext.eval.tasks.passkey.passkey_prompt``), the same
keys for every model; greedy decoding of 8 tokens; a trial passes when the answer starts with the key.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from transformers import AutoTokenizer

from ctxext.eval.tasks.passkey import passkey_prompt
from ctxext.formats.provenance import versions
from ctxext.runtimes import generate_external


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runtime", required=True, choices=("vllm", "llama.cpp"))
    parser.add_argument("--model", action="append", required=True, help="label=path")
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--length", type=int, required=True)
    parser.add_argument("--depths", type=float, nargs="+", default=[0.1, 0.5, 0.9])
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    rng = random.Random(0)
    cells = [(depth, rng.randint(10000, 99999)) for depth in args.depths for _ in range(args.trials)]
    prompts = [passkey_prompt(tokenizer, args.length, depth, key).tolist() for depth, key in cells]
    rows = []
    for label, path in (item.split("=", 1) for item in args.model):
        result = generate_external(args.runtime, Path(path), prompts, 8)
        if "error" in result:
            rows.append({"model": label, "path": path, "error": result["error"]})
            print(label, result["error"])
            continue
        answers = [tokenizer.decode(ids, skip_special_tokens=True) for ids in result["generated"]]
        passed = [a.strip().startswith(str(key)) for a, (_, key) in zip(answers, cells, strict=True)]
        rows.append(
            {
                "model": label,
                "path": path,
                "passed": sum(passed),
                "trials": len(passed),
                "cells": [
                    {"depth": d, "key": k, "answer": a, "passed": p}
                    for (d, k), a, p in zip(cells, answers, passed, strict=True)
                ],
                "seconds": result["seconds"],
            }
        )
        print(f"{label}: {sum(passed)}/{len(passed)} in {args.runtime} at {args.length} tokens")
    record = {"runtime": args.runtime, "length": args.length, "depths": args.depths, "trials": args.trials}
    Path(args.out).write_text(json.dumps({**record, "versions": versions(), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
