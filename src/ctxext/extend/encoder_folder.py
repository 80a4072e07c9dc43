"""Encoder extension end to end: plan, write atomically, verify the written folder, record.

Verification loads the written folder with plain Sentence-Transformers / transformers (no ctxext
code in the loaded model), embeds a long text that the original could not take, and measures how far
short-text embeddings moved from the original model's (the cost every short input pays).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

from ..encoders.embed import Embedder, drift, long_text
from ..encoders.table_apply import extended_in_memory, write_files
from ..encoders.table_plan import TablePlan, plan_table
from ..errors import CtxextError
from ..formats.hf_folder import ModelFolder, drop_remote_code, open_model_folder
from ..formats.provenance import append_card_section, write_provenance
from ..pipeline import write_output
from ..texts import default_short_texts

log = logging.getLogger(__name__)


@dataclass
class Verification:
    long_input_tokens: int
    long_input_ok: bool
    short_text_drift: dict

    def as_dict(self) -> dict:
        return {
            "long_input_tokens": self.long_input_tokens,
            "long_input_ok": self.long_input_ok,
            "short_text_drift": self.short_text_drift,
        }


def verify(original: Embedder, extended: Embedder, plan: TablePlan, texts: list[str]) -> Verification:
    """With the written folder loaded as a user would (``extended``), encode a long input and measure
    short-text drift."""
    before = original.encode(texts)
    after = extended.encode(texts)
    tokens = min(plan.target, max(plan.positions + 1, int(plan.target * 0.98)))
    text = long_text(extended.tokenizer, tokens)
    count = extended.token_count(text)
    try:
        vector = extended.encode([text])
        ok = bool(vector.isfinite().all())
    except (RuntimeError, IndexError) as exc:
        raise CtxextError(f"the extended model failed on a {count}-token input: {exc}") from None
    if not ok:
        raise CtxextError(f"the extended model gives a non-finite embedding of a {count}-token input")
    moved = drift(before, after)
    if not all(math.isfinite(value) for value in moved.values()):
        raise CtxextError(f"the extended model gives non-finite embeddings of short texts (drift {moved})")
    return Verification(count, ok, moved)


def extend_encoder(
    model: str | Path,
    out: str | Path,
    to: int | str | None,
    method: str = "cubic",
    *,
    overwrite: bool = False,
    check: bool = True,
    texts: list[str] | None = None,
    dropped: tuple = (),
    **plan_options,
) -> tuple[TablePlan, Verification | None]:
    """Write an extended copy of an encoder folder to ``out``; nothing is left at ``out`` on failure.

    ``plan_options`` are :func:`ctxext.encoders.table_plan.plan_table`'s (table_path, offset, keep_cls,
    keep_first, from_window)."""
    folder = open_model_folder(model)
    plan = plan_table(folder, to, method, **plan_options)
    writer = TableWriter(folder, plan, texts or default_short_texts(), dropped)
    return plan, write_output(writer, out, overwrite, check)


class TableWriter:
    """An encoder folder with the resampled table; read back by loading it with plain sentence-transformers,
    encoding a long input and measuring short-text drift against the original."""

    folder = True

    def __init__(self, folder: ModelFolder, plan: TablePlan, texts: list[str], dropped: tuple = ()):
        self.model_folder, self.plan, self.texts = folder, plan, texts
        self.source, self.dropped = folder.root, dropped  # dropped: the source's own code, left out (--base-class)

    def write(self, staging: Path) -> None:
        write_files(self.model_folder, self.plan, staging)
        if self.dropped:
            drop_remote_code(staging, self.dropped)

    def read_back(self, staging: Path) -> Verification:
        return verify(Embedder(self.source), Embedder(staging), self.plan, self.texts)

    def record(self, staging: Path, readback: Verification | None) -> None:
        _record(staging, self.plan, readback, self.dropped)


class TrainedTableWriter(TableWriter):
    """An encoder folder whose extended table was trained (``ctxext train`` on an encoder); read back as
    :class:`TableWriter` does, and refused unless short inputs embed bit for bit as in the original and
    only rows beyond the original window differ from it."""

    def __init__(self, folder: ModelFolder, plan: TablePlan, table, history: list[float], setup: dict):
        super().__init__(folder, plan, default_short_texts())
        self.table, self.history, self.setup = table, history, setup

    def write(self, staging: Path) -> None:
        write_files(self.model_folder, self.plan, staging, self.table)

    def read_back(self, staging: Path) -> dict:
        original, written = Embedder(self.source), Embedder(staging)
        saved, written.max_length = written.max_length, original.max_length  # the same tokens in both
        gap = (original.encode(self.texts) - written.encode(self.texts)).abs().max().item()
        old = self.model_folder.read_tensor(self.plan.table_key)
        new = open_model_folder(staging).read_tensor(self.plan.table_key)
        if gap != 0:
            raise CtxextError(f"the trained model embeds short inputs differently (max difference {gap:.3g})")
        if not new[: len(old)].equal(old):
            moved = int((new[: len(old)] != old).any(dim=-1).sum())
            raise CtxextError(f"the trained table moved {moved} of the original {len(old)} rows")
        written.max_length = saved
        result = verify(original, written, self.plan, self.texts).as_dict()
        changed = int((new[len(old) :] != self.plan.new_table(old)[len(old) :]).any(dim=-1).sum())
        return {**result, "short_input_max_difference": gap, "trained_rows_changed": changed}

    def record(self, staging: Path, readback: dict | None) -> None:
        write_provenance(
            staging,
            {
                "kind": "learned-table-trained",
                "plan": self.plan.provenance(),
                "training": self.setup,
                "loss": self.history,
                "verification": readback,
            },
        )
        append_card_section(
            staging,
            "Context extension",
            [
                f"This model's learned position table was extended by ctxext from {self.plan.positions} to "
                f"{self.plan.target} positions (`{self.plan.method}`), then only the new rows were trained "
                f"({len(self.history)} steps, every other weight frozen): inputs of up to {self.plan.positions} "
                "tokens embed exactly as in the original model.",
            ],
        )


def _record(folder: Path, plan: TablePlan, result: Verification | None, dropped: tuple = ()) -> None:
    record = {"kind": "learned-table", "plan": plan.provenance(), "verification": result.as_dict() if result else None}
    write_provenance(folder, {**record, **({"remote_code_dropped": list(dropped)} if dropped else {})})
    lines = [
        f"This model's learned position table was extended by ctxext from {plan.positions} to "
        f"{plan.target} positions with no training (method `{plan.method}`"
        + (f", positions below {plan.keep_first} kept exactly" if plan.keep_first else "")
        + (f", curve drawn from positions below {plan.source}" if plan.source else "")
        + ").",
        "It loads with plain transformers and sentence-transformers; `ctxext.json` records how it was made.",
    ]
    if result:
        d = result.short_text_drift
        lines.append(
            f"Short inputs change too: over {d['texts']} short texts the mean cosine between the original and "
            f"the extended embedding is {d['mean_cosine']:.4f} (min {d['min_cosine']:.4f}); "
            f"the nearest neighbour is kept for {100 * d['neighbour_kept']:.0f}% of them."
        )
    append_card_section(folder, "Context extension", lines)


def drift_by_method(
    folder: ModelFolder, to: int | str, variants: list[dict], texts: list[str] | None = None
) -> dict[str, dict]:
    """Short-text drift of each variant (``plan_table`` keyword arguments), applied in memory to one
    loaded model; nothing is written."""
    texts = texts or default_short_texts()
    plans = [plan_table(folder, to, **variant) for variant in variants]
    embedder = Embedder(folder.root)
    before = embedder.encode(texts)
    results = {}
    for plan in plans:
        with extended_in_memory(embedder.model, plan):
            results[_label(plan)] = drift(before, embedder.encode(texts))
    return results


def _label(plan: TablePlan) -> str:
    return (
        plan.method + (f" keep<{plan.keep_first}" if plan.keep_first else "") + (" keep-cls" if plan.keep_cls else "")
    )
