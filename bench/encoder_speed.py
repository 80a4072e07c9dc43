"""ctxext against the seed package (context-extension 0.1.3) and against a plain load + save.

Each contender runs in its own fresh Python process (imports included, as a user would run it);
wall time is the median of --repeats runs, peak memory is the child's maximum resident set.

usage: python bench/encoder_speed.py [--to 2048] [--repeats 3] [--out bench/results/encoder_speed.json]
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

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import assets  # noqa: E402

from ctxext.encoders.table_plan import plan_table  # noqa: E402
from ctxext.formats.hf_folder import open_model_folder  # noqa: E402

PY = sys.executable
CTXEXT = str(Path(sys.executable).with_name("ctxext"))


def contenders(model: Path, to: int) -> dict[str, list[str]]:
    seed = (
        "from context_extension.interpolate_embeddings import interpolate_embeddings as f; import sys; "
        "f(sys.argv[1], int(sys.argv[2]), output_dir=sys.argv[3], verbose=False)"
    )
    plain_st = (
        "from sentence_transformers import SentenceTransformer as S; import sys; "
        "S(sys.argv[1], device='cpu').save(sys.argv[3])"
    )
    plain_hf = (
        "from transformers import AutoModel, AutoTokenizer; import sys; "
        "AutoModel.from_pretrained(sys.argv[1]).save_pretrained(sys.argv[3]); "
        "AutoTokenizer.from_pretrained(sys.argv[1]).save_pretrained(sys.argv[3])"
    )
    extend = [CTXEXT, "extend", str(model), "--to", str(to), "--method", "cubic", "-o", "{out}"]
    return {
        "seed package (cubic)": [PY, "-c", seed, str(model), str(to), "{out}"],
        "ctxext extend (cubic, with check)": extend,
        "ctxext extend (cubic, --no-check)": [*extend, "--no-check"],
        "plain sentence-transformers load + save": [PY, "-c", plain_st, str(model), str(to), "{out}"],
        "plain transformers load + save": [PY, "-c", plain_hf, str(model), str(to), "{out}"],
    }


def run_once(command: list[str]) -> tuple[float, float, str]:
    with tempfile.TemporaryDirectory() as work:
        argv = [part.replace("{out}", str(Path(work) / "out")) for part in command]
        return measure(argv)


def measure(argv: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (GB) of this one child (os.wait4), and the last stderr line on failure."""
    with tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        error = "" if child.returncode == 0 else (err.read().strip().splitlines() or ["?"])[-1][:160]
    return seconds, usage.ru_maxrss / 2**20, error


def seed_loop(weight: np.ndarray, new_rows: int) -> np.ndarray:
    """The seed package's interpolation step, as it is written there: one scipy call per dimension."""
    from scipy.interpolate import interp1d

    out = np.empty((new_rows, weight.shape[1]))
    for dim in range(weight.shape[1]):
        y = weight[:, dim]
        out[:, dim] = interp1d(np.arange(len(y)), y, kind="cubic")(np.linspace(0, len(y) - 1, new_rows))
    return out


def interpolation_step(model: Path, to: int, repeats: int) -> dict:
    folder = open_model_folder(model)
    plan = plan_table(folder, to, "cubic")
    table = folder.read_tensor(plan.table_key)
    timings = {"seed loop over dimensions": [], "ctxext vectorised": []}
    for _ in range(repeats):
        start = time.perf_counter()
        seed = seed_loop(np.array(table[plan.offset :].tolist()), plan.target)
        timings["seed loop over dimensions"].append(time.perf_counter() - start)
        start = time.perf_counter()
        ours = plan.new_table(table)
        timings["ctxext vectorised"].append(time.perf_counter() - start)
    # like for like: the seed run with --offset, which pins the first offset rows and interpolates the rest
    difference = float(np.abs(ours[plan.offset :].double().numpy() - seed).max())
    return {name: statistics.median(values) for name, values in timings.items()} | {"max_abs_difference": difference}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--to", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mpnet", action="store_true", help="also run on all-mpnet-base-v2 (requirements-slow.txt)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "encoder_speed.json"))
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 2)
    models = {"all-MiniLM-L6-v2": assets.minilm()}
    if args.mpnet:
        models["all-mpnet-base-v2"] = assets.mpnet()
    record = {
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "to": args.to,
        "models": {},
    }
    for name, path in models.items():
        rows = {}
        for label, command in contenders(path, args.to).items():
            runs = [run_once(command) for _ in range(args.repeats)]
            rows[label] = {
                "seconds": statistics.median(r[0] for r in runs),
                "peak_rss_gb": max(r[1] for r in runs),
                "error": runs[0][2],
            }
            print(name, label, rows[label], flush=True)
        record["models"][name] = {
            "whole_process": rows,
            "interpolation_step": interpolation_step(path, args.to, args.repeats),
        }
        print(name, record["models"][name]["interpolation_step"], flush=True)
    Path(args.out).write_text(json.dumps(record, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
