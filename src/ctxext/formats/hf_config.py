"""The config.json of a model folder, checked once when the folder is opened: the whole numbers and rates ctxext
and transformers read (type and range), the heads that must divide the hidden size, a scaling entry's factor,
and then transformers' own typed config class for the model type, so that a wrong field is one line here
instead of a traceback deep in a load."""

from __future__ import annotations

from pathlib import Path

from ..errors import CtxextError
from ..values import is_rate, positive_rate, positive_whole

POSITIVE_WHOLE = (
    "max_position_embeddings",
    "n_positions",
    "original_max_position_embeddings",
    "hidden_size",
    "n_embd",
    "d_model",
    "num_attention_heads",
    "n_head",
    "num_key_value_heads",
    "num_hidden_layers",
    "n_layer",
    "head_dim",
    "intermediate_size",
    "vocab_size",
    "sliding_window",
)
POSITIVE_RATES = ("rope_theta", "layer_norm_eps", "rms_norm_eps")
FRACTIONS = ("partial_rotary_factor", "rotary_pct")  # (0, 1]
SCALING_KEYS = ("rope_scaling", "rope_parameters")


def check_config(config: dict, path: Path) -> None:
    """Raise one CtxextError naming the first field of ``config`` (read from ``path``) that cannot be right."""
    for key in POSITIVE_WHOLE:
        if config.get(key) is not None:
            positive_whole(config[key], f"{path}: {key}")
    for key in POSITIVE_RATES:
        if config.get(key) is not None:
            positive_rate(config[key], f"{path}: {key}")
    for key in FRACTIONS:
        value = config.get(key)
        if value is not None and not (is_rate(value) and 0 < value <= 1):
            raise CtxextError(f"{path}: {key} must be a fraction in (0, 1], not {value!r}")
    hidden, heads = config.get("hidden_size"), config.get("num_attention_heads")
    if hidden and heads and config.get("head_dim") is None and hidden % heads:
        raise CtxextError(f"{path}: hidden_size {hidden} is not a multiple of num_attention_heads {heads}")
    for key in SCALING_KEYS:
        _check_scaling(config.get(key), f"{path}: {key}")
    _check_with_transformers(config, path)


def _check_scaling(scaling, where: str) -> None:
    if scaling is None:
        return
    if not isinstance(scaling, dict):
        raise CtxextError(f"{where} must be a JSON object, not {scaling!r}")
    entries = scaling.values() if all(isinstance(v, dict) for v in scaling.values()) and scaling else [scaling]
    for entry in entries:  # one entry, or one per layer type (Gemma 3)
        if entry.get("factor") is not None:
            positive_rate(entry["factor"], f"{where}: factor")
        if entry.get("original_max_position_embeddings") is not None:
            positive_whole(entry["original_max_position_embeddings"], f"{where}: original_max_position_embeddings")


def _check_with_transformers(config: dict, path: Path) -> None:
    from transformers import CONFIG_MAPPING

    model_type = config.get("model_type")
    if not isinstance(model_type, str) or model_type not in CONFIG_MAPPING:
        return
    fields = {k: v for k, v in config.items() if k not in ("model_type", "auto_map", "transformers_version")}
    try:
        CONFIG_MAPPING[model_type](**fields)
    except Exception as exc:  # noqa: BLE001 - any refusal of transformers' config class is one line
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        detail = " ".join(lines[:2])[:300] if lines else type(exc).__name__
        raise CtxextError(f"{path} does not fit transformers' {model_type} config: {detail}") from None
