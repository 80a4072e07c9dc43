"""A NeMo or Cerebras model config extended by Position Interpolation: the same YAML with the new length and factor."""

from __future__ import annotations

from pathlib import Path

from ..errors import CtxextError
from ..formats.hf_folder import check_output
from ..formats.yaml_config import FLAVOURS, YamlWriter, original_context, read_yaml_config, scaled_yaml
from ..pipeline import write_output
from .summary import Report


def extend_yaml(path: Path, out: Path, to, method, original, overwrite) -> Report:
    check_output(out, overwrite)
    text, section, flavour = read_yaml_config(path)
    if method != "linear":
        raise CtxextError(f"{flavour} configs express Position Interpolation only; use --method linear, not {method!r}")
    base = int(original) if original else original_context(section, flavour)
    try:
        target = int(str(to))
    except ValueError:
        raise CtxextError(f"target length must be a whole number of tokens, not {to!r}") from None
    if target <= base:
        raise CtxextError(f"target {target} is not above the model's original context of {base}")
    factor = target / base
    write_output(YamlWriter(path, scaled_yaml(text, flavour, target, factor, path)), out, overwrite)
    keys = FLAVOURS[flavour]
    rows = [
        ("config", str(path)),
        ("flavour", flavour),
        ("original context", str(base)),
        ("target", f"{target}  (x{factor:.3g})"),
        ("method", "linear (Position Interpolation)"),
        ("written", ", ".join(f"{k} = {target}" for k in keys["lengths"]) + f", {keys['factor']} = {factor:g}"),
    ]
    return Report(rows)
