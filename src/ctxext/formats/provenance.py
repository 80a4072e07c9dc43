"""What was done to a model, recorded beside it: ``ctxext.json`` and a section of the model card."""

from __future__ import annotations

import datetime
import platform
from importlib import metadata
from pathlib import Path

from .hf_folder import write_json

PROVENANCE_FILE = "ctxext.json"
CARD_FILE = "README.md"
_PACKAGES = ("ctxext", "torch", "transformers", "sentence-transformers", "safetensors", "scipy", "gguf")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def write_provenance(folder: Path, record: dict) -> None:
    stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    write_json(folder / PROVENANCE_FILE, {"tool": "ctxext", "date": stamp, "versions": versions(), **record})


def append_card_section(folder: Path, title: str, lines: list[str]) -> None:
    """Add a section to the model card (README.md), creating the card if the model had none."""
    card = folder / CARD_FILE
    existing = card.read_text(encoding="utf-8") if card.is_file() else ""
    section = f"\n## {title}\n\n" + "\n".join(lines) + "\n"
    card.write_text(existing.rstrip("\n") + "\n" + section if existing else section.lstrip("\n"), encoding="utf-8")
