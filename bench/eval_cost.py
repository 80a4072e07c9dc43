"""Cost of scoring one 16k window: `ctxext eval --task ppl` (loss from hidden states in row chunks)
against a plain transformers forward that asks for the full-vocabulary logits (labels=input_ids).

Both run in fresh processes on the same YaRN x2 SmolLM2 folder and the same 16,384 tokens.
usage: python bench/eval_cost.py [--length 16384] [--out bench/results/eval_cost.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import assets  # noqa: E402
from encoder_speed import measure  # noqa: E402

ROOT = Path(__file__).parents[1]
PLAIN = """
import sys, torch, math
from transformers import AutoModelForCausalLM, AutoTokenizer
folder, text, length = sys.argv[1], sys.argv[2], int(sys.argv[3])
tok = AutoTokenizer.from_pretrained(folder)
ids = torch.tensor(tok(open(text).read())["input_ids"][:length]).unsqueeze(0)
model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="sdpa").eval()
with torch.inference_mode():
    loss = model(input_ids=ids, labels=ids).loss
print(math.exp(loss.item()))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--length", type=int, default=16384)
    parser.add_argument("--text", default=str(ROOT.parent / "shared" / "corpus" / "persuasion.txt"))
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "eval_cost.json"))
    args = parser.parse_args()
    folder = ROOT / "runs" / "rope_ppl" / f"yarn-{args.length}"
    ctxext = str(Path(sys.executable).with_name("ctxext"))
    if not folder.exists():
        subprocess.run(
            [
                ctxext,
                "extend",
                str(assets.smollm2_gguf()),
                "--to",
                str(args.length),
                "--method",
                "yarn",
                "--format",
                "hf",
                "-o",
                str(folder),
            ],
            check=True,
        )
    results_json = ROOT / "runs" / "eval_cost_ctxext.json"
    runs = {
        "ctxext eval ppl (chunked loss)": [
            ctxext,
            "eval",
            str(folder),
            "--task",
            "ppl",
            "--lengths",
            str(args.length - 1),
            "--stride",
            str(args.length - 1),
            "--data",
            args.text,
            "--max-tokens",
            str(args.length),
            "-o",
            str(results_json),
        ],
        "plain transformers (full logits)": [sys.executable, "-c", PLAIN, str(folder), args.text, str(args.length)],
    }
    rows = {}
    for label, argv in runs.items():
        seconds, peak, error = measure(argv)
        rows[label] = {
            "seconds": seconds,
            "peak_rss_gb": peak,
            "tokens_per_second": args.length / seconds,
            "error": error,
        }
        print(label, rows[label], flush=True)
    record = {
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "length": args.length,
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(record, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
