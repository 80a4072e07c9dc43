"""Held-out perplexity against fine-tuning steps, one line per RoPE method, the native model as a line across.

Reads the rows bench/rope_ppl.py writes with labels METHOD+STEPS@N (bench/pi_finetune_curve.sh) and native@L;
the control arm (the native model fine-tuned inside its own window) is METHOD "native".
usage: python bench/plot_finetune_curve.py RESULTS.json -o PLOT.png
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

NAMES = {"linear": "PI (linear)", "yarn": "YaRN", "native": "native (own window)"}


def curves(rows: list[dict]) -> tuple[dict[str, list[tuple[int, float]]], float | None]:
    lines: dict[str, list[tuple[int, float]]] = {}
    native = None
    for row in rows:
        match = re.fullmatch(r"(.+)\+(\d+)@\d+", row["label"])
        if match:
            lines.setdefault(match[1], []).append((int(match[2]), row["ppl"]))
        elif row["label"].startswith("native@"):
            native = row["ppl"]
    return {method: sorted(points) for method, points in lines.items()}, native


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("results")
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args()
    record = json.loads(Path(args.results).read_text())
    lines, native = curves(record["rows"])
    figure, axis = plt.subplots(figsize=(6, 4))
    if native is not None and "native" in lines:
        lines["native"] = [(0, native), *lines["native"]]  # the control arm starts from the native model
    for method, points in lines.items():
        name = NAMES.get(method, method)
        axis.plot([s for s, _ in points], [p for _, p in points], marker="o", label=f"{name} + fine-tune")
    if native is not None:
        axis.axhline(native, color="grey", linestyle="--", label="native, no fine-tune (own window)")
    axis.set_xlabel("fine-tuning steps")
    axis.set_ylabel("perplexity on held-out tokens")
    axis.set_yscale("log")
    axis.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axis.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%.0f"))
    axis.legend()
    longest = max(int(row["label"].rsplit("@", 1)[1]) for row in record["rows"])
    axis.set_title(f"{Path(record.get('gguf', 'model')).stem}, extended to {longest}")
    figure.tight_layout()
    figure.savefig(args.output, dpi=120)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
