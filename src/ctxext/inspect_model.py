"""``ctxext inspect``: what a model's positions are, and with a target, what each method would change,
including what each runtime computes from what the method writes."""

from __future__ import annotations

from .extend.summary import Report
from .formats.hf_folder import open_model_folder
from .inputs import given_options, input_kind, refuse_unextended


def inspect(
    model,
    to=None,
    methods: list[str] | None = None,
    texts=None,
    original=None,
    **table_options,
) -> Report:
    """Describe a model's positions; with ``to``, what each method would change."""
    kind = input_kind(model)
    if kind == "learned":
        from .encoders.table_plan import plan_table
        from .extend.encoder_folder import drift_by_method

        folder = open_model_folder(model)
        options = given_options(table_options)
        methods = methods or ["tile", "cubic", "linear", "pchip", "akima"]
        plan = plan_table(folder, to, methods[0], allow_same=to is None, **options)
        if not to:
            return Report(plan.describe())
        variants = [{**options, "method": m} for m in methods]
        if plan.trained_window and plan.trained_window < plan.positions and not plan.keep_first:
            variants.append({**options, "method": "cubic", "keep_first": "auto"})
        return Report(plan.describe(), drift=drift_by_method(folder, to, variants, texts))
    refuse_unextended(model, kind)
    from .decoders.rope_plan import pair_summary, plan_rope
    from .methods.rope import ROPE_REGISTRY, classify_pairs, default_inv_freq

    if kind == "gguf":
        from .formats.gguf_file import gguf_config

        config = gguf_config(model)
    elif kind == "yaml":
        from .formats.yaml_config import original_context, read_yaml_config

        _, section, flavour = read_yaml_config(model)
        return Report(
            [
                ("config", str(model)),
                ("flavour", flavour),
                ("original context", str(original_context(section, flavour))),
            ]
        )
    else:
        config = open_model_folder(model).config
    plan = plan_rope(config, str(model), to, (methods or ["yarn"])[0], original, allow_same=to is None)
    if not to:
        return Report(plan.describe())
    pairs = []
    theta = default_inv_freq(plan.facts.dim, plan.facts.base)
    for method in methods or list(ROPE_REGISTRY):
        each = plan_rope(config, str(model), to, method, original)
        scaled, attention = each.inv_freq(each.target)
        pairs.append(
            {
                "method": method,
                "pairs": pair_summary(classify_pairs(theta, scaled, each.factor)),
                "attention_factor": attention,
                "rope_theta": each.rope_theta,
                "max_position_embeddings": each.max_position_embeddings,
                "runtimes": each.spec.runtimes,
            }
        )
    from .decoders.long_attention import FAMILIES, defaults_note

    per_method = ("target", "method", "pairs", "attention factor", "config")  # the table below shows these per method
    rows = [row for row in plan.describe() if row[0] not in per_method]
    notes = [defaults_note(plan.original, plan.target)] if plan.facts.family in FAMILIES else []  # decoders it covers
    return Report(rows, notes=notes, pairs=pairs)
