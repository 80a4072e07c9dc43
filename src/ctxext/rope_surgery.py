"""Plan and apply RoPE scaling to a decoder: facts read from its config, one plan, several writers.

Only the frequencies (and, for YaRN, the attention factor) change; no weight does. The plan's
``rope_parameters`` is what lands in config.json (both the transformers v5 ``rope_parameters`` and the
legacy ``rope_scaling`` + ``rope_theta``), in GGUF metadata, and in NeMo / Cerebras YAML configs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .errors import CtxextError, did_you_mean
from .methods.ape import APE_METHODS
from .methods.rope import classify_pairs, default_inv_freq, scaled_inv_freq, yarn_attention_factor
from .rope_methods import ROPE_REGISTRY, rope_method

SCALED_ROPE_TYPES = ("linear", "dynamic", "yarn", "llama3", "longrope")
FULL_ATTENTION = "full_attention"


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


def _rope_parameters(config: dict) -> dict:
    return config.get("rope_parameters") or config.get("rope_scaling") or {}


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def rope_facts(config: dict) -> RopeFacts:
    """Read a decoder's RoPE facts from a config.json dict (transformers v4 or v5 layout)."""
    params = _rope_parameters(config)
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


def check_rope_method(method: str) -> None:
    if method in ROPE_REGISTRY:
        return
    names = ", ".join(ROPE_REGISTRY)
    if method in APE_METHODS:
        raise CtxextError(f"method {method!r} is for learned position tables; a RoPE model takes one of {names}")
    raise CtxextError(f"unknown method {method!r}{did_you_mean(method, ROPE_REGISTRY)}; choose from {names}")


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


@dataclass(frozen=True)
class RopePlan:
    model: str
    facts: RopeFacts
    original: int
    target: int
    method: str
    kept: dict = field(default_factory=dict)  # options of an existing YaRN scaling that stay (kept_yarn_options)

    @property
    def spec(self):
        return rope_method(self.method)

    @property
    def factor(self) -> float:
        return self.target / self.original

    def inv_freq(self, seq_len: int | None = None) -> tuple[torch.Tensor, float]:
        """theta' and the attention factor at input length ``seq_len`` (default: the target)."""
        options = dict(self.kept) if self.method == "yarn" else {}
        if self.method in ("dynamic", "longrope"):
            options["seq_len"] = seq_len or self.target
        return scaled_inv_freq(self.method, self.facts.dim, self.facts.base, self.original, self.factor, **options)

    @property
    def attention_factor(self) -> float:
        return self.inv_freq()[1]

    @property
    def rope_theta(self) -> float:
        return self.spec.new_base(self) if self.spec.new_base else self.facts.base

    @property
    def max_position_embeddings(self) -> int:
        return self.original if self.spec.keeps_max_position else self.target

    def rope_parameters(self) -> dict:
        """The scaling entry as transformers names it (ntk is plain RoPE with a larger base)."""
        params = {"rope_type": self.spec.rope_type(), "rope_theta": self.rope_theta, **self.spec.hf_parameters(self)}
        if self.facts.partial != 1.0:
            params["partial_rotary_factor"] = self.facts.partial
        return params

    def describe(self) -> list[tuple[str, str]]:
        facts = self.facts
        theta = default_inv_freq(facts.dim, facts.base)
        rows = [
            ("model", self.model),
            ("family", facts.family),
            (
                "rotary dimension",
                f"{facts.dim}" + (f"  (head_dim {facts.head_dim} x {facts.partial:g})" if facts.partial != 1 else ""),
            ),
            ("rope base", f"{facts.base:g}"),
            ("original context", str(self.original)),
            ("existing scaling", _short(facts.existing) if facts.existing else "none"),
        ]
        if facts.layer_type:
            rows.append(("scaled layers", f"{facts.layer_type} (kept: {', '.join(facts.other_layer_types) or '-'})"))
        if self.target != self.original:
            scaled, attention = self.inv_freq(self.target)
            labels = classify_pairs(theta, scaled, self.factor)
            rows += [
                ("target", f"{self.target}  (x{self.factor:.3g})"),
                ("method", self.method),
                ("pairs", pair_summary(labels)),
                ("attention factor", f"{attention:.4f}"),
                (
                    "config",
                    f"max_position_embeddings = {self.max_position_embeddings}; "
                    f"rope_parameters = {_short(self.rope_parameters())}",
                ),
            ]
        return rows


def _short(params: dict) -> str:
    return "{" + ", ".join(f"{k}: {v:.6g}" if isinstance(v, float) else f"{k}: {v}" for k, v in params.items()) + "}"


def pair_summary(labels: list[str]) -> str:
    """Runs of pair indices per label, e.g. 'kept 0-7, blended 8-20, interpolated 21-31'."""
    runs, start = [], 0
    for index in range(1, len(labels) + 1):
        if index == len(labels) or labels[index] != labels[start]:
            span = f"{start}" if index - 1 == start else f"{start}-{index - 1}"
            runs.append(f"{labels[start]} {span}")
            start = index
    return ", ".join(runs)


def plan_rope(
    config: dict, model: str, to, method: str = "yarn", original: int | None = None, allow_same: bool = False
) -> RopePlan:
    check_rope_method(method)
    facts = rope_facts(config)
    base_context = true_original(facts, original)
    if facts.dim < 4 or facts.dim % 2:
        raise CtxextError(f"rotary dimension {facts.dim} must be even and at least 4")
    if to is None and allow_same:
        to = base_context
    if to is None:
        raise CtxextError("give the target length (--to N)")
    try:
        target = int(str(to))
    except ValueError:
        raise CtxextError(f"target length must be a whole number of tokens, not {to!r}") from None
    if target < base_context or (target == base_context and not allow_same):
        raise CtxextError(
            f"target {target} is not above the model's original context of {base_context} "
            f"(factor {target / base_context:.3g} < 1 would shrink it)"
            if target < base_context
            else f"target {target} is not above the model's original context of {base_context}"
        )
    kept = kept_yarn_options(facts.existing) if method == "yarn" else {}
    return RopePlan(model=model, facts=facts, original=base_context, target=target, method=method, kept=kept)


def rope_config(config: dict, plan: RopePlan) -> dict:
    """config.json with the plan applied: v5 ``rope_parameters`` and legacy keys, identical."""
    params = plan.rope_parameters()
    new = dict(config)
    new["max_position_embeddings"] = plan.max_position_embeddings
    if plan.facts.layer_type:
        nested = {key: dict(value) for key, value in _rope_parameters(config).items()}
        nested[plan.facts.layer_type] = params
        new["rope_parameters"] = nested
        new["rope_scaling"] = dict(params)
        local = [v.get("rope_theta") for k, v in nested.items() if k != plan.facts.layer_type]
        if local and local[0]:
            new["rope_local_base_freq"] = local[0]
    else:
        new["rope_parameters"] = params
        new["rope_scaling"] = dict(params)
    new["rope_theta"] = plan.rope_theta
    if plan.facts.partial != 1.0:
        new["partial_rotary_factor"] = plan.facts.partial
    if plan.facts.family == "gpt_neox":
        new["rotary_pct"], new["rotary_emb_base"] = plan.facts.partial, plan.rope_theta
    return new


def rotary_modules(model: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """(parent, attribute name, module) of every rotary embedding module of a transformers model."""
    found = []
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child).__name__.endswith("RotaryEmbedding") and hasattr(child, "rope_type"):
                found.append((parent, name, child))
    return found


def apply_rope_in_memory(model: nn.Module, plan: RopePlan) -> nn.Module:
    """Give a loaded model the plan's config and rebuild its rotary modules from it (no weight changes)."""
    updated = rope_config(model.config.to_dict(), plan)
    config_class = type(model.config)
    new_config = config_class.from_dict(updated)
    for key in ("rope_parameters", "max_position_embeddings"):
        setattr(model.config, key, getattr(new_config, key))
    modules = rotary_modules(model)
    if not modules:
        raise CtxextError("the loaded model has no rotary embedding module")
    for parent, name, module in modules:
        device = next(iter(module.buffers())).device
        setattr(parent, name, type(module)(config=model.config).to(device))
    return model
