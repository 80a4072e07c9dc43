"""Seconds and peak GPU memory per task and method from results files of ``ctxext eval`` (their ``costs``).

usage: python bench/costs_table.py RESULTS.json [...]
"""

import json
import sys


def main(paths: list[str]) -> None:
    print("| task | method | seconds | peak GPU memory (GiB) |\n|---|---|---|---|")
    for path in paths:
        record = json.loads(open(path, encoding="utf-8").read())
        for method, spent in (record.get("costs") or {}).items():
            peak = spent.get("peak_gpu_bytes") if spent else None
            seconds = f"{spent['seconds']:.1f}" if spent else "-"
            gib = f"{peak / 2**30:.1f}" if peak is not None else "-"
            print(f"| {record['config']['task']} | {method} | {seconds} | {gib} |")


if __name__ == "__main__":
    main(sys.argv[1:])
