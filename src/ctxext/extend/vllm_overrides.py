"""The ``vllm-overrides`` output format: no copy of the model at all, only what vLLM must be told to serve it
extended. A JSON file with the model (its hub id and commit where it was read from huggingface_hub's cache),
``max_model_len`` and ``hf_overrides`` (the config keys ctxext would have written: ``rope_parameters`` and
``max_position_embeddings``), which vLLM applies to the model's own config when it loads it (``vllm serve MODEL
--max-model-len N --hf-overrides JSON``, the file's ``command``; or ``LLM(model=..., max_model_len=...,
hf_overrides=...)``), for a 70B model whose weights one does not want to copy or link.

Read back independently of the writer: the source config is loaded with transformers, each override set on it
as an attribute (as vLLM sets dict-valued overrides), and the rotary module transformers builds from the result
must give ctxext's frequencies.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from ..decoders.rope_plan import check_rope_method, rope_config
from ..errors import CtxextError
from ..formats.hf_folder import open_model_folder
from ..hub import hub_id_of
from ..methods.rope import ROPE_REGISTRY
from ..pipeline import write_output
from .decoder_folder import checked_plan, refuse_disagreement, rotary_readback, tuned
from .outputs import OutputFormat, Request, default_rope_method, register
from .summary import Report, readback_notes, search_notes

OVERRIDDEN = ("rope_parameters", "max_position_embeddings", "head_dim")


def overrides(config: dict, plan) -> dict:
    """The keys of config.json that the plan changes, as vLLM's ``hf_overrides``."""
    written = rope_config(config, plan)
    return {key: written[key] for key in OVERRIDDEN if key in written and written[key] != config.get(key)}


class OverridesWriter:
    folder = False

    def __init__(self, source: Path, plan, config: dict):
        self.source, self.plan = Path(source), plan
        hub = hub_id_of(self.source)  # a model from the hub is named as the hub names it, at the commit read
        self.contents = {"model": hub[0] if hub else str(self.source.resolve())}
        if hub:
            self.contents["revision"] = hub[1]
        self.contents |= {"max_model_len": plan.target, "hf_overrides": overrides(config, plan)}
        revision = f" --revision {hub[1]}" if hub else ""
        self.contents["command"] = (
            f"vllm serve {shlex.quote(self.contents['model'])}{revision} --max-model-len {plan.target} "
            f"--hf-overrides {shlex.quote(json.dumps(self.contents['hf_overrides']))}"
        )

    def write(self, staging: Path) -> None:
        staging.write_text(json.dumps(self.contents, indent=2) + "\n", encoding="utf-8")

    def read_back(self, staging: Path) -> dict:
        import transformers

        written = json.loads(staging.read_text(encoding="utf-8"))
        config = transformers.AutoConfig.from_pretrained(self.source)  # the folder the model was read from
        for key, value in written["hf_overrides"].items():
            setattr(config, key, value)
        return refuse_disagreement(rotary_readback(config, self.plan), "the overrides")

    def record(self, staging: Path, readback: dict | None) -> None:
        """The file is its own record."""


def vllm_overrides(request: Request) -> Report:
    if request.runtimes:
        raise CtxextError("--check-runtime reads back written models; a vllm-overrides file is read by vLLM itself")
    if request.dtype and not request.tune:
        raise CtxextError("--dtype applies to what --tune computes; vLLM serves the model in its own dtype")
    if Path(request.out).suffix.lower() != ".json":
        raise CtxextError(f"a vllm-overrides output is a .json file, not {Path(request.out).name}")
    method = request.method or default_rope_method("folder")
    check_rope_method(method)
    if not ROPE_REGISTRY[method].served_by_vllm:
        served = ", ".join(name for name, spec in ROPE_REGISTRY.items() if spec.served_by_vllm)
        raise CtxextError(f"vLLM does not compute {method!r} as transformers does; choose one of {served}")
    folder = open_model_folder(request.model)
    plan = checked_plan(folder.config, folder.root, request.to, method, request.original, request.rederive)
    plan = tuned(plan, folder.root, request.tune, request.out, request.overwrite)
    writer = OverridesWriter(folder.root, plan, folder.config)
    readback = write_output(writer, request.out, request.overwrite, request.check)
    notes = search_notes(plan) + readback_notes(readback) + [f"serve it with: {writer.contents['command']}"]
    return Report(plan.describe(), notes)


register(
    OutputFormat(
        "vllm-overrides",
        "a JSON file of vLLM's --max-model-len and --hf-overrides for the unchanged RoPE model (nothing copied)",
        {"rope": vllm_overrides},
        refusals={"gguf": "vllm-overrides serve a Hugging Face folder; extend a GGUF to GGUF or --format hf"},
        runtimes=("vllm",),
    )
)
