"""Merge `ctxext eval` results files of the same model and task (e.g. one file per length) into one,
then print its Markdown table and optionally plot it.

usage: python bench/merge_results.py A.json B.json ... -o merged.json [--plot merged.png]
Files that do not exist are skipped with a note, so a run cut off part-way still merges what it finished.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ctxext.report import load_results, markdown, plot


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
                merged["results"].setdefault(task, {}).setdefault(method, {}).update(rows)
    if merged is None:
        raise SystemExit("none of the results files exist")
    return merged


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
    if args.plot:
        plot(merged, args.plot)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
