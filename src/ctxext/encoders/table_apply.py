"""Apply a :class:`~ctxext.encoders.table_plan.TablePlan`: to a loaded model (in place, or for the length of a
``with`` block), or to the files of a folder (the table and any stored length buffer rewritten, the lengths
in config.json, tokenizer_config.json and sentence_bert_config.json raised)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from ..errors import CtxextError
from ..formats.hf_folder import ModelFolder, copy_tree, read_json, rewrite_weights, write_json
from .table_plan import TablePlan

LENGTH_BUFFERS = ("position_ids", "token_type_ids")


def weight_replacements(folder: ModelFolder, plan: TablePlan, table: torch.Tensor | None = None) -> dict:
    """The new table (the plan's, or ``table`` when given: a trained one) and every stored length-dependent
    buffer beside it, keyed as in the weights."""
    prefix = plan.table_key.rsplit(".", 2)[0] + "." if plan.table_key.count(".") >= 2 else ""
    if table is None:
        table = plan.new_table(folder.read_tensor(plan.table_key))
    replacements = {plan.table_key: table.contiguous()}
    for name in LENGTH_BUFFERS:
        key = prefix + name
        if key in folder.weight_files:
            old = folder.read_tensor(key)
            replacements[key] = _length_buffer(name, plan.new_rows, old.dtype, old.device)
    return replacements


def _length_buffer(name: str, rows: int, dtype, device) -> torch.Tensor:
    if name == "position_ids":
        return torch.arange(rows, dtype=dtype, device=device).unsqueeze(0)
    return torch.zeros((1, rows), dtype=dtype, device=device)


def table_module(model: nn.Module, plan: TablePlan) -> tuple[nn.Module, str]:
    path = plan.table_key.removesuffix(".weight")
    candidates = [path, path.split(".", 1)[-1]]
    for candidate in candidates:
        try:
            module = model.get_submodule(candidate)
        except AttributeError:
            continue
        if isinstance(module, nn.Embedding):
            parent_path, _, name = candidate.rpartition(".")
            return model.get_submodule(parent_path), name
    raise CtxextError(f"the loaded model has no embedding at {path}")


@contextmanager
def extended_in_memory(model: nn.Module, plan: TablePlan):
    """Apply the plan to a loaded model for the duration of the block, then restore it exactly."""
    parent, name = table_module(model, plan)
    old_embedding = getattr(parent, name)
    old_buffers = {b: getattr(parent, b) for b in LENGTH_BUFFERS if b in parent._buffers}
    old_config = {key: getattr(model.config, key) for key in plan.length_keys if hasattr(model.config, key)}
    apply_in_memory(model, plan)
    try:
        yield model
    finally:
        setattr(parent, name, old_embedding)
        parent._buffers.update(old_buffers)
        for key, value in old_config.items():
            setattr(model.config, key, value)


def apply_in_memory(model: nn.Module, plan: TablePlan) -> nn.Module:
    """Replace the table of a loaded model, resize its length buffers and update its config."""
    parent, name = table_module(model, plan)
    old = getattr(parent, name)
    new_weight = plan.new_table(old.weight.data)
    embedding = nn.Embedding(
        plan.new_rows,
        old.embedding_dim,
        padding_idx=old.padding_idx,
        dtype=old.weight.dtype,
        device=old.weight.device,
    )
    embedding.weight.data = new_weight
    setattr(parent, name, embedding)
    for buffer in LENGTH_BUFFERS:
        if buffer in parent._buffers and parent._buffers[buffer] is not None:
            old_buffer = parent._buffers[buffer]
            parent._buffers[buffer] = _length_buffer(buffer, plan.new_rows, old_buffer.dtype, old_buffer.device)
    for key in plan.length_keys:
        setattr(model.config, key, plan.new_rows)
    return model


def write_files(folder: ModelFolder, plan: TablePlan, staging: Path, table: torch.Tensor | None = None) -> None:
    """Write the extended folder into ``staging`` (an empty folder): weights, config, tokenizer, ST."""
    rewritten = rewrite_weights(folder, staging, weight_replacements(folder, plan, table))
    copy_tree(folder.root, staging, skip=rewritten)
    transformer_dir = staging / folder.transformer_dir.relative_to(folder.root)
    config = read_json(transformer_dir / "config.json")
    for key in plan.length_keys:
        config[key] = plan.new_rows
    write_json(transformer_dir / "config.json", config)
    for directory in {staging, transformer_dir}:
        tokenizer_config = directory / "tokenizer_config.json"
        if tokenizer_config.is_file():
            write_json(tokenizer_config, {**read_json(tokenizer_config), "model_max_length": plan.target})
    st_config = transformer_dir / "sentence_bert_config.json"
    if st_config.is_file() or folder.is_sentence_transformer:
        current = read_json(st_config) if st_config.is_file() else {}
        write_json(st_config, {**current, "max_seq_length": plan.target})
