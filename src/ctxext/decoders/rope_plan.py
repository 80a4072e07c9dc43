"""Plan RoPE scaling for a decoder: one plan from its facts, which every writer executes.

Only the frequencies (and, for YaRN, the attention factor) change; no weight does. The plan's
``rope_parameters`` is what lands in config.json (both the transformers v5 ``rope_parameters`` and the
legacy ``rope_scaling`` + ``rope_theta``), in GGUF metadata, and in NeMo / Cerebras YAML configs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import CtxextError, did_you_mean
from ..families import FAMILIES, Family
from ..methods.ape import APE_REGISTRY
from ..methods.rope import ROPE_REGISTRY, classify_pairs, default_inv_freq, rope_method, yarn_divisors
from .attention_labels import LONG_ATTENTION, is_attention_label
from .rope_facts import RopeFacts, handled_window, kept_yarn_options, rope_facts, rope_parameters_of, true_original


def check_rope_method(method: str) -> None:
    if method in ROPE_REGISTRY:
        return
    names = ", ".join(ROPE_REGISTRY)
    if method in APE_REGISTRY:
        raise CtxextError(f"method {method!r} is for learned position tables; a RoPE model takes one of {names}")
    if is_attention_label(method):
        raise CtxextError(
            f"{method!r} changes attention at run time and no saved file can carry it: measure it with "
            "`ctxext eval --methods` (transformers backend) or enable it on a loaded model "
            "(ctxext.decoders.long_attention)"
        )
    choices = [*ROPE_REGISTRY, *LONG_ATTENTION]
    raise CtxextError(f"unknown method {method!r}{did_you_mean(method, choices)}; choose from {names}")


@dataclass(frozen=True)
class RopePlan:
    model: str
    facts: RopeFacts
    original: int
    target: int
    method: str
    kept: dict = field(default_factory=dict)  # options of an existing YaRN scaling that stay (kept_yarn_options)
    searched: tuple[float, ...] | None = None  # longrope's long divisors found by ctxext.decoders.rope_search
    searched_attention: float | None = None  # longrope's attention factor found there (None: 1)
    search: dict | None = field(default=None, compare=False)  # how they were found (text, candidates, perplexities)

    @property
    def spec(self):
        return rope_method(self.method)

    @property
    def factor(self) -> float:
        return self.target / self.original

    def inv_freq(self, seq_len: int | None = None) -> tuple[torch.Tensor, float]:
        """theta' and the attention factor at input length ``seq_len`` (default: the target)."""
        spec = self.spec
        options = spec.plan_options(self) if spec.plan_options else {}
        if spec.length_dependent:
            options["seq_len"] = seq_len or self.target
        return spec.frequencies(self.facts.dim, self.facts.base, self.original, self.factor, **options)

    def long_divisors(self) -> torch.Tensor:
        """longrope's divisors beyond L: the searched ones, else YaRN's ramp."""
        if self.searched is not None:
            return torch.tensor(self.searched, dtype=torch.float64)
        return yarn_divisors(self.facts.dim, self.facts.base, self.original, self.factor)

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
        handled = handled_window(facts, self.original)
        if facts.existing and handled != self.original:
            rows.append(("handles now", f"{handled} tokens (trained at {self.original}, then scaled)"))
        if facts.layer_type:
            rows.append(("scaled layers", f"{facts.layer_type} (kept: {', '.join(facts.other_layer_types) or '-'})"))
        if self.target != self.original:
            scaled, attention = self.inv_freq(self.target)
            labels = classify_pairs(theta, scaled, self.factor)
            rows += [
                ("target", f"{self.target}  (x{self.factor:.3g})"),
                ("method", self.method + _searched_note(self)),
                ("pairs", pair_summary(labels)),
                ("attention factor", f"{attention:.4f}"),
                (
                    "config",
                    f"max_position_embeddings = {self.max_position_embeddings}; "
                    f"rope_parameters = {_short(self.rope_parameters())}",
                ),
            ]
        return rows


def _searched_note(plan: RopePlan) -> str:
    searched = ["long divisors"] if plan.searched is not None else []
    searched += ["attention factor"] if plan.searched_attention is not None else []
    return f" ({' and '.join(searched)} searched)" if searched else ""


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


def check_above_current_window(plan: RopePlan) -> None:
    """Refuse a target the model already handles. A model that carries scaling (Llama-3.1's llama3 x8, Qwen2.5's
    YaRN) is re-derived from its true original context, so a target at or below the window it handles now would
    replace its own trained scaling with a shorter one. Dynamic scaling grows by itself and is not refused."""
    existing, handled = plan.facts.existing, handled_window(plan.facts, plan.original)
    kind = existing.get("rope_type", existing.get("type"))
    if existing and kind != "dynamic" and plan.target <= handled:
        raise CtxextError(
            f"the model already handles {handled} tokens ({kind} x{existing.get('factor', '?'):g} from "
            f"{plan.original}); --to {plan.target} would replace that with less: ask for more than {handled}, "
            "or pass --rederive to re-derive it anyway"
        )


CONFIG_ONLY_READS = {"phi3": ("longrope",)}  # transformers' Phi3Config turns yarn into longrope, refuses the rest
HEAD_DIM_LEFT_NONE = ("mixtral",)  # config classes whose head_dim stays None when config.json has none


def rope_config(config: dict, plan: RopePlan) -> dict:
    """config.json with the plan applied: v5 ``rope_parameters`` and legacy keys, identical. A Mixtral config
    without ``head_dim`` gets the one it implies: transformers' scaled initialisers read ``config.head_dim``,
    which Mixtral's config class leaves None."""
    params = plan.rope_parameters()
    readable = CONFIG_ONLY_READS.get(plan.facts.family)
    if readable and params.get("rope_type", "default") not in ("default", *readable):
        raise CtxextError(
            f"a {plan.facts.family} config can carry only {', '.join(readable)} scaling in transformers: "
            f"use --method {readable[0]}"
        )
    family = FAMILIES.get(plan.facts.family) or Family(plan.facts.family, "rope")
    new = dict(config)
    if plan.facts.family in HEAD_DIM_LEFT_NONE and new.get("head_dim") is None:
        new["head_dim"] = plan.facts.head_dim
    new["max_position_embeddings"] = plan.max_position_embeddings
    nested = {}
    if plan.facts.layer_type:
        nested = {key: dict(value) for key, value in rope_parameters_of(config).items()}
        nested[plan.facts.layer_type] = params
    new["rope_parameters"] = nested or params
    if family.legacy_rope_scaling:
        new["rope_scaling"] = dict(params)
    local = [v.get("rope_theta") for k, v in nested.items() if k != plan.facts.layer_type]
    if local and local[0]:
        new[family.local_base_key] = local[0]
    new[family.rope_base_key] = plan.rope_theta
    if plan.facts.partial != 1.0:
        new["partial_rotary_factor"] = plan.facts.partial
    if plan.facts.family == "gpt_neox":
        new["rotary_pct"], new["rotary_emb_base"] = plan.facts.partial, plan.rope_theta
    return new
