"""NeMo / Megatron and Cerebras ModelZoo YAML model configs: Position Interpolation as they spell it.

NeMo: ``max_position_embeddings``, ``encoder_seq_length`` and ``seq_len_interpolation_factor``
(positions divided by the factor). Cerebras: ``max_position_embeddings`` and ``pos_scaling_factor``.
Both mean linear interpolation, so only ``--method linear`` is written. The config is edited as ruamel.yaml's
round-trip tree (the model section's keys only; comments, key order, quotes, anchors, flow or block style and the
file's indentation kept) and the result is parsed again to check it.
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from ..errors import CtxextError
from ..values import positive_rate, positive_whole

FLAVOURS = {
    "nemo": {"factor": "seq_len_interpolation_factor", "lengths": ("max_position_embeddings", "encoder_seq_length")},
    "cerebras": {"factor": "pos_scaling_factor", "lengths": ("max_position_embeddings",)},
}


def _yaml():
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 1 << 16  # never wrap a long line that was not wrapped
    return yaml


def _load(text: str, path: Path, yaml=None) -> dict:
    from ruamel.yaml import YAMLError

    try:
        data = (yaml or _yaml()).load(text)
    except YAMLError as exc:
        raise CtxextError(f"{path} is not valid YAML: {str(exc).strip().splitlines()[0]}") from None
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


def _indentation(text: str) -> dict:
    """The file's own indentation, so that only edited lines change: mappings from the first nested key, block
    sequences (item indent and dash offset) as ruamel.yaml guesses them."""
    from ruamel.yaml.util import load_yaml_guess_indent

    nested = (len(line) - len(line.lstrip(" ")) for line in text.splitlines() if line.strip())
    mapping = next((width for width in nested if width), 2)
    _, sequence, offset = load_yaml_guess_indent(text)
    if offset is None:  # no block sequence in the file
        return {"mapping": mapping, "sequence": mapping, "offset": 0}
    return {"mapping": mapping, "sequence": sequence, "offset": offset}


def scaled_yaml(text: str, flavour: str, target: int, factor: float, path: Path) -> str:
    """The config text with the new length(s) and interpolation factor in its model section; a key it lacks is
    added after ``max_position_embeddings``. Checked by parsing the result again."""
    keys = FLAVOURS[flavour]
    values = {**dict.fromkeys(keys["lengths"], target), keys["factor"]: float(factor)}
    yaml = _yaml()
    yaml.indent(**_indentation(text))
    data = _load(text, path, yaml)
    section = model_section(data)
    for key, value in values.items():
        if key in section:
            section[key] = value
        else:
            section.insert(list(section).index("max_position_embeddings") + 1, key, value)
    stream = StringIO()
    yaml.dump(data, stream)
    written = stream.getvalue()
    section = model_section(_load(written, path))
    if section.get("max_position_embeddings") != target or float(section.get(keys["factor"])) != float(factor):
        raise CtxextError(f"could not rewrite the position settings of {path} in place")
    return written


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
