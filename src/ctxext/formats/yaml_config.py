"""NeMo / Megatron and Cerebras ModelZoo YAML model configs: Position Interpolation as they spell it.

NeMo: ``max_position_embeddings``, ``encoder_seq_length`` and ``seq_len_interpolation_factor``
(positions divided by the factor). Cerebras: ``max_position_embeddings`` and ``pos_scaling_factor``.
Both mean linear interpolation, so only ``--method linear`` is written. Values are edited in the text,
line by line, so comments and layout survive; the result is parsed again to check it.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import CtxextError
from ..values import positive_rate, positive_whole

FLAVOURS = {
    "nemo": {"factor": "seq_len_interpolation_factor", "lengths": ("max_position_embeddings", "encoder_seq_length")},
    "cerebras": {"factor": "pos_scaling_factor", "lengths": ("max_position_embeddings",)},
}


def _load(text: str, path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CtxextError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise CtxextError(f"{path} does not hold a YAML mapping")
    return data


def model_section(data: dict) -> dict:
    return data["model"] if isinstance(data.get("model"), dict) else data


def flavour_of(section: dict, path: Path) -> str:
    if "seq_len_interpolation_factor" in section or "encoder_seq_length" in section:
        return "nemo"
    if "pos_scaling_factor" in section or section.get("position_embedding_type") == "rotary":
        return "cerebras"
    if section.get("position_embedding_type") == "rope" and "max_position_embeddings" in section:
        return "nemo"
    raise CtxextError(
        f"{path} has no position settings (max_position_embeddings with seq_len_interpolation_factor "
        "or pos_scaling_factor)"
    )


def read_yaml_config(path: str | Path) -> tuple[str, dict, str]:
    """(text, model section, flavour) of a YAML model config."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CtxextError(f"cannot read {path}: {exc}") from None
    section = model_section(_load(text, path))
    flavour = flavour_of(section, path)
    if not isinstance(section.get("max_position_embeddings"), int):
        raise CtxextError(f"{path} has no integer max_position_embeddings")
    if section.get("position_embedding_type") in ("learned_absolute", "alibi", "none", "learned", "fixed"):
        raise CtxextError(f"{path} uses {section['position_embedding_type']} positions, not RoPE")
    return text, section, flavour


def original_context(section: dict, flavour: str) -> int:
    """The pre-scaling context: max_position_embeddings / an existing interpolation factor."""
    key = FLAVOURS[flavour]["factor"]
    factor = positive_rate(section[key], key) if section.get(key) is not None else 1.0
    return round(positive_whole(section.get("max_position_embeddings"), "max_position_embeddings") / factor)


class _NotBlockStyle(Exception):
    """The key is not on a line of its own (flow style): the text cannot be edited line by line."""


def _set_key(text: str, key: str, value, anchor: str) -> str:
    pattern = re.compile(
        rf"^(?P<indent>[ \t]*){re.escape(key)}:[ \t]*(?P<value>[^#\n]*?)(?P<tail>[ \t]*#.*)?$", re.MULTILINE
    )
    if pattern.search(text):
        return pattern.sub(lambda m: f"{m['indent']}{key}: {value}{m['tail'] or ''}", text, count=1)
    anchor_line = re.compile(rf"^(?P<indent>[ \t]*){re.escape(anchor)}:.*$", re.MULTILINE).search(text)
    if anchor_line is None:
        raise _NotBlockStyle(key)
    return text[: anchor_line.end()] + f"\n{anchor_line['indent']}{key}: {value}" + text[anchor_line.end() :]


def _dumped(text: str, path: Path, values: dict) -> str:
    """Flow-style configs are parsed, changed and written again (they carry no comments to keep)."""
    import yaml

    data = _load(text, path)
    model_section(data).update(values)
    return yaml.safe_dump(data, sort_keys=False)


def scaled_yaml(text: str, flavour: str, target: int, factor: float, path: Path) -> str:
    """The config text with the new length(s) and interpolation factor; checked by parsing it again."""
    keys = FLAVOURS[flavour]
    values = {**dict.fromkeys(keys["lengths"], target), keys["factor"]: float(factor)}
    try:
        for key, value in values.items():
            text = _set_key(text, key, value, "max_position_embeddings")
    except _NotBlockStyle:
        text = _dumped(text, path, values)
    section = model_section(_load(text, path))
    if section.get("max_position_embeddings") != target or float(section.get(keys["factor"])) != float(factor):
        raise CtxextError(f"could not rewrite the position settings of {path} in place")
    return text


class YamlWriter:
    """The edited config text; read back by parsing it again (scaled_yaml already checked the values)."""

    folder = False

    def __init__(self, source: Path, text: str):
        self.source, self.text = Path(source), text

    def write(self, staging: Path) -> None:
        staging.write_text(self.text, encoding="utf-8")

    def read_back(self, staging: Path) -> dict:
        return {"parsed": isinstance(_load(staging.read_text(encoding="utf-8"), staging), dict)}

    def record(self, staging: Path, readback: dict | None) -> None:
        """A YAML config carries its own record: the comments and keys the user wrote stay as they were."""
