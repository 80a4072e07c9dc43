"""The results file of ``ctxext eval``: written after every method (and every cell of a task measured in cells),
and read back to resume a cut-off run."""

from __future__ import annotations

from pathlib import Path

from ..errors import CtxextError

RESUME_KEYS = (
    "task",
    "lengths",
    "to",
    "stride",
    "max_tokens",
    "depths",
    "trials",
    "data",
    "subtasks",
    "jsonl",
    "backend",
    "samples",
    "seed",
    "chat",
)


def resumable(previous: dict, record: dict) -> tuple[dict, dict]:
    """What this run can keep of an earlier (perhaps cut-off) results file of the same model, task settings and
    lengths: the rows of the methods it finished (``finished``; in a file without that list, a method with a row
    at every length), and the rows so far of the others, by method and length."""
    mismatched = [key for key in RESUME_KEYS if previous.get("config", {}).get(key) != record["config"].get(key)]
    if previous.get("model") != record["model"] or mismatched:
        raise CtxextError(
            f"--resume: the results file was made with other settings ({', '.join(mismatched) or 'model'}); "
            "use another -o or --overwrite"
        )
    task = record["config"]["task"]
    wanted = {str(length) for length in record["config"]["lengths"]}
    kept, unfinished = {}, {}
    for label, rows in previous.get("results", {}).get(task, {}).items():
        rows = {int(length): row for length, row in rows.items()}
        complete = label in previous["finished"] if "finished" in previous else {str(n) for n in rows} >= wanted
        (kept if complete else unfinished)[label] = rows
    return kept, unfinished


def write_results(results: dict, path: str | Path) -> None:
    """Write the JSON next to ``path`` and rename it into place, so a kill never leaves half a file."""
    import json
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    partial.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    os.replace(partial, path)
