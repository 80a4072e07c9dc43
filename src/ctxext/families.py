"""Where each model family keeps its positions: facts, not code.

``learned`` families carry an absolute table that ctxext resamples; the others are listed so that a
user who points ctxext at them is told why it cannot help in that way and what to use instead.
Offsets follow each family's position-id convention: RoBERTa-like models number positions from
``padding_idx + 1`` (rows 0..padding_idx are never used as positions), the others from 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import CtxextError


@dataclass(frozen=True)
class Family:
    name: str
    kind: str  # "learned", "rope", "relative", "alibi"
    table: str | None = None  # module path of the position table inside the base model
    offset_rule: str = "zero"  # "zero" or "padding" (pad_token_id + 1)
    length_keys: tuple[str, ...] = ("max_position_embeddings",)
    advice: str = ""
    extended: bool = True  # False: ctxext knows the family and says why it does not extend it (``advice``)
    # RoPE families with global and sliding-window layers: the config keys of each layer type's base, and
    # whether the legacy ``rope_scaling`` key may be written (a config class that applies it to every layer
    # type must not get it)
    rope_base_key: str = "rope_theta"
    local_base_key: str = "rope_local_base_freq"
    legacy_rope_scaling: bool = True


_BERT_LIKE = ("bert", "distilbert", "albert", "electra", "ernie", "megatron-bert", "nomic_bert_ape")
_ROBERTA_LIKE = ("roberta", "xlm-roberta", "camembert", "mpnet", "data2vec-text", "roberta-prelayernorm")
_ROPE = (
    "llama",
    "mistral",
    "mixtral",
    "qwen2",
    "qwen2_moe",
    "qwen3",
    "phi",
    "phi3",
    "gpt_neox",
    "gemma",
    "gemma2",
    "gemma3",
    "gemma3_text",
    "olmo",
    "olmo2",
    "stablelm",
    "starcoder2",
    "granite",
    "cohere",
    "falcon",
    "gptj",
    "persimmon",
    "nomic_bert",
    "modernbert",
    "roformer",
    "smollm3",
)
_ROPE_NOT_EXTENDED = {
    "gptj": "GPT-J's rotary embedding reads no scaling from config.json",
    "roformer": "RoFormer's rotary embedding reads no scaling from config.json",
    "nomic_bert": "ctxext writes no scaling for NomicBERT's rotary embedding yet",
    "gemma3": "this is Gemma 3's multimodal wrapper: extend its text model (model type gemma3_text)",
}
_RELATIVE = ("deberta", "deberta-v2", "t5", "mt5", "longt5", "funnel", "transfo-xl", "xlnet")
_ALIBI = ("bloom", "mpt")

FAMILIES: dict[str, Family] = {}
for _name in _BERT_LIKE:
    FAMILIES[_name] = Family(_name, "learned", "embeddings.position_embeddings")
for _name in _ROBERTA_LIKE:
    FAMILIES[_name] = Family(_name, "learned", "embeddings.position_embeddings", offset_rule="padding")
FAMILIES["gpt2"] = Family("gpt2", "learned", "wpe", length_keys=("n_positions", "n_ctx"))
for _name in _ROPE:
    FAMILIES[_name] = Family(
        _name,
        "rope",
        advice=_ROPE_NOT_EXTENDED.get(
            _name,
            "it uses rotary position embeddings, which have no table to interpolate; "
            "extend it by RoPE scaling (methods linear, ntk, dynamic, yarn, llama3)",
        ),
        extended=_name not in _ROPE_NOT_EXTENDED,
    )
FAMILIES["modernbert"] = Family(  # an encoder: global layers scaled, sliding-window layers (window 128) kept
    "modernbert",
    "rope",
    rope_base_key="global_rope_theta",
    local_base_key="local_rope_theta",
    legacy_rope_scaling=False,
)
for _name in _RELATIVE:
    FAMILIES[_name] = Family(
        _name,
        "relative",
        advice="it uses relative positions only and has no absolute table to interpolate; "
        "it already reads any length, so raise the tokenizer's model_max_length instead",
    )
for _name in _ALIBI:
    FAMILIES[_name] = Family(
        _name,
        "alibi",
        advice="it uses ALiBi attention biases, which extrapolate without any table; "
        "raise the tokenizer's model_max_length instead",
    )


def family_of(config: dict, table_override: str | None = None) -> Family:
    """The family of a config.json dict; an explicit table path makes any family usable."""
    model_type = config.get("model_type", "")
    family = FAMILIES.get(model_type)
    if table_override:
        base = family if family and family.kind == "learned" else Family(model_type or "custom", "learned")
        return Family(base.name, "learned", table_override, base.offset_rule, base.length_keys)
    if family is None:
        raise CtxextError(
            f"unknown model family {model_type!r}: pass --embeddings_attr_name (the module path of its "
            "position table) and --offset"
        )
    return family


def table_offset(family: Family, config: dict) -> int:
    """Rows before the first position: ``pad_token_id + 1`` for RoBERTa-like families, else 0."""
    if family.offset_rule == "padding":
        pad = 1 if family.name == "mpnet" else config.get("pad_token_id", 1)
        return int(pad) + 1
    return 0


SUPPORT = {  # kind -> (positions, what ctxext does)
    "learned": ("learned table", "resamples the table (`tile` by default; `cubic`, `linear`, `group`, ...)"),
    "rope": (
        "rotary (RoPE)",
        "writes RoPE scaling to config.json (`yarn` by default; phi3: `longrope` only; gemma3_text, modernbert: "
        "global layers only)",
    ),
    "relative": ("relative", "refuses: reads any length already; raise `model_max_length`"),
    "alibi": ("ALiBi", "refuses: extrapolates already; raise `model_max_length`"),
}


def supported_models_markdown() -> str:
    """README's supported-models table, from the registry above: one row per kind and offset rule."""
    rows = ["| positions | model types (`model_type` in config.json) | what ctxext does |", "|---|---|---|"]
    groups: dict[tuple[str, str], list[str]] = {}
    for family in FAMILIES.values():
        if family.kind == "rope" and not family.extended:
            key = ("rope-not", "")
        else:
            key = (family.kind, family.offset_rule if family.kind == "learned" else "")
        groups.setdefault(key, []).append(family.name)
    for (kind, rule), names in groups.items():
        if kind == "rope-not":
            positions, action = (
                "rotary (RoPE)",
                "refuses, saying why: " + "; ".join(f"{name}: {_ROPE_NOT_EXTENDED[name]}" for name in names),
            )
        else:
            positions, action = SUPPORT[kind]
            if kind == "learned":
                positions += ", offset 2 (`padding_idx + 1`)" if rule == "padding" else ", offset 0"
        rows.append(f"| {positions} | {', '.join(sorted(names))} | {action} |")
    return "\n".join(rows)
