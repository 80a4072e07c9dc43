"""The results file of ``ctxext eval``: written after every method, and read back to resume a cut-off run."""

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


def resumable(previous: dict, record: dict) -> dict:
    """The methods of an earlier (perhaps cut-off) results file that this run can keep: same model, task
    settings and lengths; a method counts when every length has its row."""
    mismatched = [key for key in RESUME_KEYS if previous.get("config", {}).get(key) != record["config"].get(key)]
    if previous.get("model") != record["model"] or mismatched:
        raise CtxextError(
            f"--resume: the results file was made with other settings ({', '.join(mismatched) or 'model'}); "
            "use another -o or --overwrite"
        )
    task = record["config"]["task"]
    wanted = {str(length) for length in record["config"]["lengths"]}
    kept = {}
    for label, rows in previous.get("results", {}).get(task, {}).items():
        if {str(length) for length in rows} >= wanted:
            kept[label] = {int(length): row for length, row in rows.items()}
    return kept


def write_results(results: dict, path: str | Path) -> None:
    """Write the JSON next to ``path`` and rename it into place, so a kill never leaves half a file."""
    import json
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    partial.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    os.replace(partial, path)
