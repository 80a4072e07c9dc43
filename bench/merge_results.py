"""Merge `ctxext eval` results files of the same model and task (e.g. one file per length) into one,
then print its Markdown table and optionally plot it. Passkey cells measured twice (more depths in a second
run) are pooled: trials added, accuracy weighted by trials.

usage: python bench/merge_results.py A.json B.json ... -o merged.json [--plot merged.png]
Files that do not exist are skipped with a note, so a run cut off part-way still merges what it finished.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ctxext.eval.intervals import average_interval
from ctxext.eval.report import load_results, markdown, plot, summary_lines
from ctxext.eval.tasks.ruler import effective_lengths


def merge(paths: list[Path]) -> dict:
    merged: dict | None = None
    for path in paths:
        data = load_results(path)
        if merged is None:
            merged = {**data, "results": {}, "merged_from": []}
        elif data["model"] != merged["model"]:
            raise SystemExit(f"{path} is for {data['model']}, not {merged['model']}")
        merged["merged_from"].append(str(path))
        for task, by_method in data["results"].items():
            for method, rows in by_method.items():
                into = merged["results"].setdefault(task, {}).setdefault(method, {})
                for length, row in rows.items():
                    into[length] = pooled(into[length], row) if length in into else row
    if merged is None:
        raise SystemExit("none of the results files exist")
    if "ruler" in merged["results"]:  # effective lengths of the merged rows, not of the first file's
        config = merged.get("config", {})
        merged["summary"] = effective_lengths(
            merged["results"]["ruler"],
            merged["original_context"],
            config.get("threshold") or 85.6,
            config.get("relative_threshold") or 0.9,
        )
    return merged


def pooled(a: dict, b: dict) -> dict:
    """Two passkey cells of the same method and length (e.g. more depths in a second run) as one; or two RULER
    cells of different subtasks (one run per subtask) as one, its average and interval over all of them."""
    if "tasks" in a and "tasks" in b:
        return pooled_ruler(a, b)
    if "trials" not in a or "trials" not in b:
        raise SystemExit(
            "two results files measure the same method and length, and only passkey cells or RULER cells of "
            "different subtasks can be pooled"
        )
    trials = a["trials"] + b["trials"]
    accuracy = (a["accuracy"] * a["trials"] + b["accuracy"] * b["trials"]) / trials
    per_depth = {}  # depth -> (passes, trials); each run spread its trials evenly over its depths
    for cell in (a, b):
        share = cell["trials"] / len(cell["depths"])
        for depth, value in cell["depths"].items():
            passes, count = per_depth.get(depth, (0.0, 0.0))
            per_depth[depth] = (passes + value * share, count + share)
    depths = {
        depth: passes / count for depth, (passes, count) in sorted(per_depth.items(), key=lambda kv: float(kv[0]))
    }
    return {"accuracy": accuracy, "trials": trials, "depths": depths}


def pooled_ruler(a: dict, b: dict) -> dict:
    if set(a["tasks"]) & set(b["tasks"]):
        raise SystemExit(f"two RULER cells both measure {', '.join(sorted(set(a['tasks']) & set(b['tasks'])))}")
    tasks = {**a["tasks"], **b["tasks"]}
    shares = [task["accuracy"] / 100 for task in tasks.values()]
    interval = average_interval(shares, [[x / 100 for x in task["ci95"]] for task in tasks.values()])
    prompts = [sum(task["samples"] for task in cell["tasks"].values()) for cell in (a, b)]
    seconds = (a["seconds_per_sample"] * prompts[0] + b["seconds_per_sample"] * prompts[1]) / sum(prompts)
    return {
        "average": 100 * sum(shares) / len(shares),
        "ci95": [100 * x for x in interval],
        "seconds_per_sample": seconds,
        "tasks": tasks,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("-o", "--output", required=True, type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    present = [p for p in args.results if p.is_file()]
    for missing in sorted(set(args.results) - set(present)):
        print(f"skipped (not found): {missing}", file=sys.stderr)
    merged = merge(present)
    args.output.write_text(json.dumps(merged, indent=2))
    print(markdown(merged))
    print("\n".join(summary_lines(merged)))
    if args.plot:
        plot(merged, args.plot)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
