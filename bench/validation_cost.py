"""What validation before work costs each verb of the demo: the same commands run from this tree and from a
checkout of an earlier commit (one without it), alternately, each a fresh process; median wall time and the
median of the paired differences.

usage: python bench/validation_cost.py BASELINE_SRC [--repeats 5] [--out bench/results/validation_cost.json]
       (BASELINE_SRC: the src/ folder of a checkout of the baseline commit, e.g. from `git worktree add`)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import assets  # noqa: E402

CURRENT_SRC = HERE.parent / "src"


def commands(model: Path, work: Path) -> dict[str, list[str]]:
    results = work / "results.json"
    results.write_text(
        json.dumps({"results": {"ppl": {"native": {"256": {"ppl": 20.0}, "512": {"ppl": 18.0}}}}, "model": "m"})
    )
    return {
        "inspect --to 2048": ["inspect", str(model), "--to", "2048"],
        "extend --to 2048 (with its check)": ["extend", str(model), "--to", "2048", "-o", "{out}"],
        "extend --to 2048 --no-check": ["extend", str(model), "--to", "2048", "--no-check", "-o", "{out}"],
        "plot": ["plot", str(results), "-o", "{out}.png"],
    }


def timed(src: Path, argv: list[str]) -> float:
    with tempfile.TemporaryDirectory() as out:
        argv = [a.replace("{out}", str(Path(out) / "o")) for a in argv]
        code = f"import sys; sys.argv = ['ctxext', *{argv!r}]; from ctxext.cli.main import entry; entry()"
        env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1"}
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("baseline_src", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(HERE / "results" / "validation_cost.json"))
    args = parser.parse_args()
    record = {
        "command": " ".join(["bench/validation_cost.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "rows": {},
    }
    with tempfile.TemporaryDirectory() as work:
        for name, argv in commands(assets.minilm(), Path(work)).items():
            pairs = [(timed(args.baseline_src, argv), timed(CURRENT_SRC, argv)) for _ in range(args.repeats)]
            row = {
                "baseline_s": statistics.median(p[0] for p in pairs),
                "current_s": statistics.median(p[1] for p in pairs),
                "paired_difference_s": statistics.median(p[1] - p[0] for p in pairs),
            }
            record["rows"][name] = row
            print(name, row, flush=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
