"""Decoder (RoPE) extension end to end: plan, write atomically, check that transformers reads back
the frequencies ctxext meant, record.

The check instantiates the rotary embedding that transformers builds from the written config (no
weights are loaded) and compares its inverse frequencies and attention factor with ctxext's own math.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from ..decoders.rope_plan import RopePlan, check_above_current_window, plan_rope, rope_config
from ..errors import CtxextError
from ..formats.hf_folder import copy_tree, drop_remote_code, open_model_folder, read_json, write_json
from ..formats.provenance import append_card_section, write_provenance
from ..pipeline import write_output

log = logging.getLogger(__name__)


def _rotary_class(text_config):
    import transformers

    model_class = transformers.MODEL_FOR_CAUSAL_LM_MAPPING.get(type(text_config), None)
    if model_class is None:  # an encoder (ModernBERT): its base model's module holds the rotary class
        model_class = transformers.MODEL_MAPPING.get(type(text_config), None)
    if model_class is None:
        raise CtxextError(f"transformers has no model class for {type(text_config).__name__}")
    module = importlib.import_module(model_class.__module__)
    prefix = model_class.__name__.removesuffix("ForCausalLM").removesuffix("Model")
    rotary = getattr(module, f"{prefix}RotaryEmbedding", None)
    if rotary is None:
        raise CtxextError(f"{module.__name__} defines no {prefix}RotaryEmbedding")
    return rotary


def transformers_readback(folder: Path, plan: RopePlan) -> dict:
    """Frequencies transformers derives from the written config, against ctxext's (relative error)."""
    import transformers

    return rotary_readback(transformers.AutoConfig.from_pretrained(str(folder)), plan)


def refuse_disagreement(readback: dict, source: str) -> dict:
    """``readback`` (from :func:`rotary_readback`) if transformers computes ctxext's frequencies (relative error
    1e-5) and attention factor (1e-6) from ``source``; one line otherwise."""
    if readback["max_relative_error"] > 1e-5 or abs(readback["attention_factor"] - readback["ours"]) > 1e-6:
        raise CtxextError(f"transformers reads different frequencies from {source}: {readback}")
    return readback


def rotary_readback(config, plan: RopePlan) -> dict:
    """Frequencies of the rotary module transformers builds from ``config`` (a loaded config object), against
    ctxext's (relative error)."""
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    text_config = config.get_text_config()
    rotary = _rotary_class(text_config)(config=text_config)
    layer_type = plan.facts.layer_type
    inv_freq = getattr(rotary, f"{layer_type}_inv_freq") if layer_type else rotary.inv_freq
    attention = getattr(rotary, f"{layer_type}_attention_scaling" if layer_type else "attention_scaling")
    if plan.spec.length_dependent:  # the module holds L's frequencies until a longer input arrives
        layer = {"layer_type": layer_type} if layer_type else {}
        inv_freq, attention = ROPE_INIT_FUNCTIONS[plan.spec.rope_type()](
            text_config, None, seq_len=plan.target, **layer
        )
    ours, our_attention = plan.inv_freq(plan.target)
    error = ((inv_freq.double() - ours).abs() / ours).max().item()
    return {"max_relative_error": error, "attention_factor": float(attention), "ours": our_attention}


class HfRopeWriter:
    """A Hugging Face folder with the plan's RoPE scaling: the source folder copied (or a GGUF dequantized into
    one, in ``dtype``), config.json and the tokenizer's length rewritten; read back through transformers."""

    folder = True

    def __init__(
        self,
        source: Path,
        plan: RopePlan,
        from_gguf=False,
        dtype="float32",
        runtimes: tuple = (),
        dropped=(),
        serving=None,
        link_weights=False,
    ):
        self.source, self.plan, self.from_gguf, self.dtype = Path(source), plan, from_gguf, dtype
        self.runtimes = runtimes  # also read back in these runtimes (vllm): ctxext.runtimes.readback
        self.serving = serving  # how the read-back computes (ctxext.runtimes.Serving; default fp32 on the CPU)
        self.link_weights = link_weights  # weight files linked to the source's, not copied (ctxext.formats.hf_folder)
        self.dropped = dropped  # the source's own code, left out (--base-class)

    def write(self, staging: Path) -> None:
        if self.from_gguf:
            from ..formats.gguf_to_hf import gguf_to_hf_folder

            gguf_to_hf_folder(self.source, staging, self.dtype)
        else:
            copy_tree(self.source, staging, skip=set(), link_weights=self.link_weights)
        write_rope_config(staging, self.plan)
        if self.dropped:
            drop_remote_code(staging, self.dropped)

    def read_back(self, staging: Path) -> dict:
        readback = refuse_disagreement(transformers_readback(staging, self.plan), "the written config")
        if self.runtimes:
            from ..runtimes.readback import check_folder

            readback["runtimes"] = {r: check_folder(staging, self.plan, r, self.serving) for r in self.runtimes}
        return readback

    def record(self, staging: Path, readback: dict | None) -> None:
        record_rope(staging, self.plan, readback, self.dropped)


def extend_decoder_folder(
    model: str | Path,
    out: str | Path,
    to,
    method: str = "yarn",
    *,
    original: int | None = None,
    overwrite: bool = False,
    check: bool = True,
    runtimes: tuple = (),
    tune: dict | None = None,
    dropped: tuple = (),
    rederive: bool = False,
    serving=None,
    link_weights: bool = False,
) -> tuple[RopePlan, dict | None]:
    """Write ``out``: the folder copied, config.json rewritten, the tokenizer's length raised. ``tune``
    ({"text": path, "evaluations": n, "place": Placement}) searches longrope's divisors first
    (:mod:`ctxext.decoders.rope_search`); ``serving`` says how the read-back in ``runtimes`` computes."""
    folder = open_model_folder(model)
    plan = tuned(
        checked_plan(folder.config, folder.root, to, method, original, rederive), folder.root, tune, out, overwrite
    )
    writer = HfRopeWriter(
        folder.root, plan, runtimes=runtimes, dropped=dropped, serving=serving, link_weights=link_weights
    )
    return plan, write_output(writer, out, overwrite, check)


def checked_plan(config: dict, model, to, method: str, original, rederive: bool) -> RopePlan:
    """The RoPE plan for ``config``, refused (unless ``rederive``) where the model already handles ``to``."""
    plan = plan_rope(config, str(model), to, method, original)
    if not rederive:
        check_above_current_window(plan)
    return plan


def tuned(plan: RopePlan, model: Path, tune: dict | None, out, overwrite: bool) -> RopePlan:
    if not tune:
        return plan
    from ..decoders.rope_search import tune_plan
    from ..formats.hf_folder import check_output

    check_output(Path(out), overwrite)  # before minutes of search, not after
    return tune_plan(plan, model, **tune)


def write_rope_config(staging: Path, plan: RopePlan) -> None:
    write_json(staging / "config.json", rope_config(read_json(staging / "config.json"), plan))
    tokenizer_config = staging / "tokenizer_config.json"
    if tokenizer_config.is_file():
        write_json(tokenizer_config, {**read_json(tokenizer_config), "model_max_length": plan.target})
    sentence_config = staging / "sentence_bert_config.json"  # a RoPE encoder saved by sentence-transformers
    if sentence_config.is_file():
        write_json(sentence_config, {**read_json(sentence_config), "max_seq_length": plan.target})


def record_rope(folder: Path, plan: RopePlan, readback: dict | None, dropped: tuple = ()) -> None:
    write_provenance(
        folder,
        {
            "kind": "rope",
            "method": plan.method,
            "original_context": plan.original,
            "target": plan.target,
            "factor": plan.factor,
            "rotary_dim": plan.facts.dim,
            "rope_theta": plan.rope_theta,
            "attention_factor": plan.attention_factor,
            "rope_parameters": plan.rope_parameters(),
            "runtimes": plan.spec.runtimes,
            "readback": readback,
            **({"search": plan.search} if plan.search else {}),
            **({"remote_code_dropped": list(dropped)} if dropped else {}),
        },
    )
    lines = [
        f"The RoPE frequencies of this model were rescaled by ctxext with no training: `{plan.method}`, "
        f"{plan.original} -> {plan.target} tokens (factor {plan.factor:g}). No weight changed.",
        "`config.json` carries both `rope_parameters` (transformers v5) and the legacy `rope_scaling` + `rope_theta`.",
    ]
    if plan.spec.card_note:
        lines.append(plan.spec.card_note(plan))
    lines.append("What each runtime computes from this folder:")
    lines += [f"- {runtime}: {note}" for runtime, note in plan.spec.runtimes.items() if runtime != "llama.cpp"]
    append_card_section(folder, "Context extension", lines)
