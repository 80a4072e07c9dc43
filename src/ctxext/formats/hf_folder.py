"""Reading and atomically writing Hugging Face / Sentence-Transformers model folders.

Weights are read with safetensors (or ``torch.load(weights_only=True)`` for a legacy
``pytorch_model.bin``) and written back as safetensors; only the files that change are rewritten,
everything else in the folder is copied as it is.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..errors import CtxextError
from .hf_config import check_config
from .staging import atomic_output, check_output  # noqa: F401  (re-exported for the writers)

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_BIN = "pytorch_model.bin"


def read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise CtxextError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise CtxextError(f"{path} is not valid JSON (not UTF-8 text)") from None
    except OSError as exc:
        raise CtxextError(f"cannot read {path}: {exc.strerror}") from None
    if not isinstance(data, dict):
        raise CtxextError(f"{path} does not hold a JSON object")
    return data


def write_json(path: Path, data) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False)
        handle.write("\n")


@dataclass
class ModelFolder:
    """A model folder on disk: where its config and weights are, and whether it is Sentence-Transformers."""

    root: Path
    transformer_dir: Path
    config: dict

    @cached_property
    def weight_files(self) -> dict[str, Path]:
        """Tensor name -> the file that holds it (read from headers only)."""
        return _index_weights(self.transformer_dir)

    def check_weights(self) -> None:
        """Read every weights file's tensor names (a .bin whole), so that a pickle or a corrupt file is refused in
        one line before any library loads it."""
        if not self.weight_files:
            raise CtxextError(f"{self.transformer_dir} holds no tensors")

    @property
    def is_sentence_transformer(self) -> bool:
        return (self.root / "modules.json").is_file()

    def read_tensor(self, key: str) -> torch.Tensor:
        path = self.weight_files[key]
        if path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt") as handle:
                return handle.get_tensor(key)
        return load_weight_file(path)[key]


def _transformer_subdir(root: Path) -> Path:
    modules_file = root / "modules.json"
    if not modules_file.is_file():
        return root
    try:
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
        first = next(m for m in modules if m.get("type", "").endswith("Transformer"))
    except (json.JSONDecodeError, StopIteration, AttributeError, TypeError):
        raise CtxextError(f"{modules_file} lists no Transformer module") from None
    return root / first.get("path", "")


def _index_weights(directory: Path) -> dict[str, Path]:
    index = directory / SAFETENSORS_INDEX
    if index.is_file():
        weight_map = read_json(index).get("weight_map", {})
        return {key: directory / name for key, name in weight_map.items()}
    for name in (SAFETENSORS, TORCH_BIN):
        path = directory / name
        if path.is_file():
            return {key: path for key in load_weight_file(path, keys_only=True)}
    if (directory / f"{TORCH_BIN}.index.json").is_file():
        raise CtxextError(f"{directory} holds sharded .bin weights; convert them to safetensors first")
    raise CtxextError(f"{directory} has no weights ({SAFETENSORS}, {SAFETENSORS_INDEX} or {TORCH_BIN})")


def load_weight_file(path: Path, keys_only: bool = False):
    """All tensors of one weights file (or only their names), with one clear error if it is corrupt."""
    try:
        if path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt") as handle:
                keys = list(handle.keys())
                return keys if keys_only else {key: handle.get_tensor(key) for key in keys}
        state = _load_tensors(path)
    except pickle.UnpicklingError as exc:
        named = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        what = f"it names {named.group(1)}" if named else _first_line(exc)
        raise CtxextError(f"{path} holds more than tensors, and ctxext loads only tensors ({what})") from None
    except (SafetensorError, RuntimeError, OSError, EOFError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CtxextError(f"corrupt or unreadable weights file {path}: {first_line}") from None
    if not isinstance(state, dict):
        raise CtxextError(f"{path} does not hold a state dict")
    return list(state) if keys_only else state


def _load_tensors(path: Path):
    """``torch.load`` that unpickles tensors only; a legacy (pre-zip) file cannot be memory-mapped and is read whole."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap can only be used" not in str(exc):
            raise
        return torch.load(path, map_location="cpu", weights_only=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def open_model_folder(path: str | os.PathLike) -> ModelFolder:
    """Validate a local model folder and index its tensors (no weights are loaded)."""
    root = Path(path)
    if not root.exists():
        raise CtxextError(f"no such file or folder: {root}")
    if not root.is_dir():
        raise CtxextError(f"{root} is a file, not a model folder")
    transformer_dir = _transformer_subdir(root)
    config_path = transformer_dir / "config.json"
    if not config_path.is_file():
        raise CtxextError(f"{root} is not a model folder: it has no config.json")
    config = read_json(config_path)
    if "auto_map" in config and not _known_to_transformers(config.get("model_type")):
        raise CtxextError(
            f"{root} needs its own Python code (auto_map, model type {config.get('model_type')!r}); ctxext never "
            "runs code from a model folder"
        )
    check_config(config, config_path)
    _check_modules(root)
    return ModelFolder(root, transformer_dir, config)


def _check_modules(root: Path) -> None:
    """Every module a Sentence-Transformers folder lists is there (Normalize has no files to be)."""
    modules_file = root / "modules.json"
    if not modules_file.is_file():
        return
    try:
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
        paths = [m.get("path", "") for m in modules if not str(m.get("type", "")).endswith("Normalize")]
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, TypeError):
        raise CtxextError(f"{modules_file} is not a list of modules") from None
    missing = [path for path in paths if not isinstance(path, str) or not (root / path).is_dir()]
    if missing:
        raise CtxextError(f"{modules_file} lists module folder {missing[0]!r}, which {root} does not have")


def remote_code(folder: ModelFolder) -> list[str]:
    """What in the folder is code of its own: an ``auto_map`` in config.json, and the Python files beside its
    config (paths relative to the folder)."""
    found = ["auto_map"] if "auto_map" in folder.config else []
    files = {p for d in {folder.root, folder.transformer_dir} for p in d.glob("*.py")}
    return found + sorted(str(p.relative_to(folder.root)) for p in files)


def drop_remote_code(staging: Path, dropped: tuple[str, ...]) -> None:
    """Remove from a staged copy what :func:`remote_code` found: its Python files and every ``auto_map``."""
    for name in dropped:
        if name != "auto_map":
            (staging / name).unlink()
    for config_path in staging.rglob("config.json"):
        config = read_json(config_path)
        if config.pop("auto_map", None) is not None:
            write_json(config_path, config)


def _known_to_transformers(model_type) -> bool:
    from transformers import CONFIG_MAPPING

    return isinstance(model_type, str) and model_type in CONFIG_MAPPING


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def copy_tree(source: Path, target: Path, skip: set[Path], link_weights: bool = False) -> None:
    """Copy ``source`` into the existing folder ``target``, following links, leaving out ``skip``;
    ``link_weights``: weight files become symbolic links to the source's (a folder that lives only as long as
    the source, for a runtime to read: 140 GB of a 70B model are not copied)."""
    for item in source.rglob("*"):
        if item in skip or item.is_dir():
            continue
        destination = target / item.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        if link_weights and item.suffix in WEIGHT_SUFFIXES:
            destination.symlink_to(item.resolve())
        else:
            shutil.copy2(item, destination)


def rewrite_weights(folder: ModelFolder, staging: Path, replacements: dict[str, torch.Tensor]) -> set[Path]:
    """Write, inside ``staging``, each weights file that holds a replaced tensor; return the sources.

    Every other tensor of such a file is copied as it is. A legacy ``pytorch_model.bin`` becomes
    ``model.safetensors``.
    """
    sources = {folder.weight_files[key] for key in replacements}
    for source in sorted(sources):
        state = load_weight_file(source)
        state.update({key: value for key, value in replacements.items() if folder.weight_files[key] == source})
        relative = source.relative_to(folder.root)
        if source.suffix != ".safetensors":
            relative = relative.with_name(SAFETENSORS)
            state = {key: tensor.clone() for key, tensor in state.items()}  # .bin may hold tied tensors
        target = staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        save_file({key: tensor.contiguous() for key, tensor in state.items()}, str(target), {"format": "pt"})
    return sources
