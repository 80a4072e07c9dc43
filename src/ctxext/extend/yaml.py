"""The ``yaml`` output format: a NeMo or Cerebras model config extended by Position Interpolation, the same YAML with
the new length and factor."""

from __future__ import annotations

from pathlib import Path

from ..errors import CtxextError
from ..formats.hf_folder import check_output
from ..formats.yaml_config import FLAVOURS, YamlWriter, original_context, read_yaml_config, scaled_yaml
from ..pipeline import write_output
from .outputs import OutputFormat, Request, default_rope_method, register
from .summary import Report


def extend_yaml(request: Request) -> Report:
    path, to, method = Path(request.model), request.to, request.method or default_rope_method("yaml")
    check_output(request.out, request.overwrite)
    text, section, flavour = read_yaml_config(path)
    if method != "linear":
        raise CtxextError(f"{flavour} configs express Position Interpolation only; use --method linear, not {method!r}")
    base = int(request.original) if request.original else original_context(section, flavour)
    try:
        target = int(str(to))
    except ValueError:
        raise CtxextError(f"target length must be a whole number of tokens, not {to!r}") from None
    if target <= base:
        raise CtxextError(f"target {target} is not above the model's original context of {base}")
    factor = target / base
    writer = YamlWriter(path, scaled_yaml(text, flavour, target, factor, path))
    write_output(writer, request.out, request.overwrite)
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


register(
    OutputFormat(
        "yaml",
        "a NeMo / Megatron or Cerebras ModelZoo model config with Position Interpolation settings",
        {"yaml": extend_yaml},
        native=("yaml",),
        runtimes=("NeMo", "Cerebras ModelZoo"),
    )
)
