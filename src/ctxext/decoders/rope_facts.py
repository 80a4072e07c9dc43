"""What a decoder's config says about its rotary positions, read once and checked: rotary dimension, base,
context, any scaling it already carries (never compounded), and the YaRN options a new factor keeps."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import CtxextError
from ..families import FAMILIES
from ..methods.rope import yarn_attention_factor

FULL_ATTENTION = "full_attention"
SLIDING_ATTENTION = "sliding_attention"


@dataclass(frozen=True)
class RopeFacts:
    """What a decoder's config says about its rotary positions."""

    family: str
    head_dim: int
    partial: float
    base: float
    context: int  # max_position_embeddings as written
    existing: dict = field(default_factory=dict)  # current scaling parameters (rope_type != default)
    layer_type: str | None = None  # the nested rope_parameters entry that is scaled (Gemma 3: full_attention)
    other_layer_types: tuple[str, ...] = ()

    @property
    def dim(self) -> int:
        return int(self.head_dim * self.partial)


def rope_parameters_of(config: dict) -> dict:
    """The config's RoPE parameters; a family that spells its global and local bases as keys of their own
    (ModernBERT's hub configs) gets them as transformers v5 nests them, per layer type."""
    params = config.get("rope_parameters") or config.get("rope_scaling")
    if params:
        return params
    family = FAMILIES.get(config.get("model_type", ""))
    if family and family.rope_base_key in config and family.rope_base_key != "rope_theta":
        return {
            FULL_ATTENTION: {"rope_type": "default", "rope_theta": config[family.rope_base_key]},
            SLIDING_ATTENTION: {"rope_type": "default", "rope_theta": config.get(family.local_base_key, 10000.0)},
        }
    return {}


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def rope_facts(config: dict) -> RopeFacts:
    """Read a decoder's RoPE facts from a config.json dict (transformers v4 or v5 layout)."""
    params = rope_parameters_of(config)
    nested = [key for key, value in params.items() if isinstance(value, dict)]
    layer_type = None
    if nested:
        if FULL_ATTENTION not in nested:
            raise CtxextError(f"per-layer rope parameters without a '{FULL_ATTENTION}' entry: {', '.join(nested)}")
        layer_type, params = FULL_ATTENTION, params[FULL_ATTENTION]
    heads = config.get("num_attention_heads")
    hidden = config.get("hidden_size")
    usable = isinstance(hidden, int) and isinstance(heads, int) and heads > 0
    head_dim = config.get("head_dim") or (hidden // heads if usable else None)
    if not head_dim:
        raise CtxextError("config has neither head_dim nor hidden_size and num_attention_heads")
    partial = (
        params.get("partial_rotary_factor") or config.get("partial_rotary_factor") or config.get("rotary_pct") or 1.0
    )
    base = params.get("rope_theta") or config.get("rope_theta") or config.get("rotary_emb_base") or 10000.0
    context = config.get("max_position_embeddings")
    if not (_is_number(context) and context == int(context) and context > 0):
        raise CtxextError(f"config's max_position_embeddings must be a positive whole number, not {context!r}")
    if not (_is_number(base) and base > 1):
        raise CtxextError(f"config's rope_theta must be a number above 1, not {base!r}")
    if not (_is_number(head_dim) and head_dim > 0 and _is_number(partial) and 0 < partial <= 1):
        raise CtxextError(f"config's head_dim {head_dim!r} or partial rotary factor {partial!r} is not usable")
    rope_type = params.get("rope_type", params.get("type", "default"))
    existing = {k: v for k, v in params.items() if k != "rope_theta"} if rope_type not in ("default", None) else {}
    return RopeFacts(
        family=config.get("model_type", "unknown"),
        head_dim=int(head_dim),
        partial=float(partial),
        base=float(base),
        context=int(context),
        existing=existing,
        layer_type=layer_type,
        other_layer_types=tuple(k for k in nested if k != layer_type),
    )


def handled_window(facts: RopeFacts, original: int) -> int:
    """The longest input the model handles as it is: its ``max_position_embeddings``, or the original context
    times its static scaling factor when that is more (Qwen2.5's card adds YaRN x4 from 32,768 and leaves
    ``max_position_embeddings`` at 32,768: vLLM then serves 131,072). Dynamic scaling grows by itself."""
    kind = facts.existing.get("rope_type", facts.existing.get("type"))
    factor = facts.existing.get("factor")
    if not facts.existing or kind == "dynamic" or not isinstance(factor, int | float):
        return facts.context
    return max(facts.context, int(original * factor))


def true_original(facts: RopeFacts, override: int | None = None) -> int:
    """The context the model was trained at, never a context already scaled by someone else."""
    if override is not None:
        if override <= 0:
            raise CtxextError(f"--original must be a positive number of tokens, not {override}")
        return int(override)
    if not facts.existing:
        return facts.context
    rope_type = facts.existing.get("rope_type", facts.existing.get("type"))
    if rope_type == "longrope":
        raise CtxextError(
            "the model already carries LongRoPE's searched per-pair factors, which ctxext cannot "
            "re-derive; extend the original model instead"
        )
    if "original_max_position_embeddings" in facts.existing:
        return int(facts.existing["original_max_position_embeddings"])
    if rope_type == "dynamic":  # transformers grows dynamic scaling from max_position_embeddings itself
        return facts.context
    raise CtxextError(
        f"the model already carries '{rope_type}' scaling (factor {facts.existing.get('factor')}) with no recorded "
        "original context; give it with --original N so that the scaling is replaced, not compounded"
    )


def trained_context(facts: RopeFacts) -> int:
    """The context the model was trained at, for measuring it: LongRoPE's recorded original too, which
    :func:`true_original` refuses because its searched factors cannot be re-derived for a new target."""
    rope_type = facts.existing.get("rope_type", facts.existing.get("type")) if facts.existing else None
    if rope_type == "longrope" and "original_max_position_embeddings" in facts.existing:
        return int(facts.existing["original_max_position_embeddings"])
    return true_original(facts)


YARN_KEPT = ("beta_fast", "beta_slow", "truncate", "mscale", "mscale_all_dim")


def kept_yarn_options(existing: dict) -> dict:
    """The options of an existing YaRN scaling that a new YaRN factor keeps (gpt-oss, DeepSeek-style configs).

    An explicit ``attention_factor`` equal to 0.1 ln s + 1 for the old factor is recomputed for the new one;
    any other value cannot be carried to a new factor, so the extension is refused."""
    if existing.get("rope_type", existing.get("type")) != "yarn":
        return {}
    kept = {key: existing[key] for key in YARN_KEPT if existing.get(key) is not None}
    given = existing.get("attention_factor")
    old_factor = existing.get("factor") or 1.0
    if given is not None and abs(float(given) - yarn_attention_factor(float(old_factor))) > 1e-6:
        raise CtxextError(
            f"the model's YaRN attention_factor {given} is not the one its factor {old_factor} implies, and "
            "there is no rule for carrying it to a new factor; extend the original model, or remove "
            "attention_factor from its config if the default (0.1 ln s + 1) is meant"
        )
    return kept
