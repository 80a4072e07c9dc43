"""Bar charts of `bench/rope_ppl.py` results: how far each method's perplexity is above the native model's
(at its own window, on the same scored tokens), one panel per window length.

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
    figure, axes = plt.subplots(len(panels), 1, figsize=(6.5, 1.2 + 0.45 * 6 * len(panels)), squeeze=False)
    for axis, (length, panel) in zip(axes[:, 0], panels.items(), strict=True):
        methods = sorted(panel["methods"], key=panel["methods"].get, reverse=True)
        excess = [100 * (panel["methods"][m] / panel["native"] - 1) for m in methods]
        bars = axis.barh(methods, [max(e, 0.01) for e in excess], color="tab:blue")
        axis.bar_label(
            bars,
            labels=[f" {e:+.1f}% ({panel['methods'][m]:.2f})" for m, e in zip(methods, excess, strict=True)],
            fontsize=8,
        )
        axis.set_ylim(-0.6, max(len(methods), 4) - 0.4)  # same bar thickness in every panel
        axis.set_xscale("log")
        axis.set_xlim(0.1, 5000)
        axis.set_title(
            f"window {length} tokens; native {panel['window']}: perplexity {panel['native']:.2f}", fontsize=10
        )
    axes[-1, 0].set_xlabel("perplexity above the native model's, on the same scored tokens (%, log scale)")
    figure.suptitle("SmolLM2-135M, RoPE scaling with no training")
    figure.tight_layout()
    figure.savefig(args.output, dpi=120)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
