"""What a model path holds, which decides what every verb does with it; and the families no method covers."""

from __future__ import annotations

from pathlib import Path

from .errors import CtxextError
from .families import FAMILIES, family_of
from .formats.hf_folder import open_model_folder, remote_code


def input_kind(path: str | Path, base_class: bool = False) -> str:
    """gguf, yaml, or a folder's position kind (learned, rope, relative, alibi). A folder that maps to code of its
    own is refused unless ``base_class``: ctxext then treats it as the transformers class its model type names."""
    path = Path(path)
    if path.suffix.lower() == ".gguf":
        return "gguf"
    if path.suffix.lower() in (".yaml", ".yml"):
        return "yaml"
    folder = open_model_folder(path)
    code = remote_code(folder)
    if code and not base_class:
        raise CtxextError(
            f"{path} maps to code of its own ({', '.join(code)}), which ctxext never runs; "
            f"`ctxext extend --base-class` extends transformers' {folder.config.get('model_type')} class instead "
            "and leaves that code out"
        )
    family = FAMILIES.get(folder.config.get("model_type", ""))
    if family is not None and family.kind != "learned":
        return family.kind
    if family is None and ("rope_theta" in folder.config or "rope_parameters" in folder.config):
        return "rope"
    return "learned"


def given_options(options: dict) -> dict:
    """Options the user actually set (None and False mean 'not given'; 0 is a value: --offset 0)."""
    return {key: value for key, value in options.items() if value is not None and value is not False}


def refuse_family(model) -> None:
    family = family_of(open_model_folder(model).config)
    raise CtxextError(f"{model} is a {family.name} model: {family.advice}")


def refuse_unextended(model, kind: str) -> None:
    """One line for a folder whose family ctxext knows and does not extend (relative positions, ALiBi, rotary
    embeddings no config scaling reaches), with what to do instead."""
    if kind in ("relative", "alibi"):
        refuse_family(model)
    if kind == "rope":
        family = FAMILIES.get(open_model_folder(model).config.get("model_type", ""))
        if family is not None and not family.extended:
            refuse_family(model)
