"""One bar chart of `bench/rope_ppl.py` results: perplexity of each method per window length, on the same
scored tokens, against the native model at its own window (dashed line).

usage: python bench/plot_rope_ppl.py RESULTS.json [RESULTS.json ...] -o smollm2_rope_ppl.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def rows_by_length(paths: list[Path]) -> dict[int, dict]:
    """length -> {"native": ppl of the native row on these scored tokens, "methods": {method: ppl}}."""
    panels: dict[int, dict] = {}
    for path in paths:
        rows = json.loads(path.read_text())["rows"]
        native = next(r for r in rows if r["label"].startswith("native@"))
        for row in rows:
            method, _, length = row["label"].partition("@")
            if method == "native":
                continue
            panel = panels.setdefault(int(length), {"native": native["ppl"], "window": native["length"], "methods": {}})
            panel["methods"][method] = row["ppl"]
    return dict(sorted(panels.items()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("-o", "--output", required=True, type=Path)
    args = parser.parse_args()
    panels = rows_by_length(args.results)
    figure, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4), squeeze=False, sharey=True)
    for axis, (length, panel) in zip(axes[0], panels.items()):
        methods = sorted(panel["methods"], key=panel["methods"].get)
        values = [panel["methods"][m] for m in methods]
        bars = axis.bar(methods, values, color="tab:blue")
        axis.bar_label(bars, labels=[f"{v:.1f}" for v in values], fontsize=8)
        axis.axhline(
            panel["native"], color="black", linestyle="--", linewidth=1, label=f"native {panel['window']}: {panel['native']:.2f}"
        )
        axis.set_yscale("log")
        axis.set_title(f"window {length} tokens")
        axis.tick_params(axis="x", rotation=30)
        axis.legend(loc="upper right", fontsize=8)
    axes[0][0].set_ylabel("perplexity on the same scored tokens (log)")
    figure.suptitle("SmolLM2-135M, RoPE scaling with no training")
    figure.tight_layout()
    figure.savefig(args.output, dpi=120)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
