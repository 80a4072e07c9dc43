"""Plan the extension of a learned absolute position table, checking the request against the folder.

One :class:`TablePlan` drives every path: ``ctxext inspect`` prints it, :mod:`ctxext.encoders.table_apply` applies
it to a loaded model or to the files of a folder. The math is in :mod:`ctxext.methods.ape`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import torch

from ..errors import CtxextError, did_you_mean
from ..families import family_of, table_offset
from ..formats.hf_folder import ModelFolder, read_json
from ..methods.ape import APE_REGISTRY, DOUBLING, resample_table
from ..methods.rope import ROPE_REGISTRY

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TablePlan:
    """Everything needed to extend one table, and nothing that is derived from it."""

    model: str
    family: str
    table_key: str
    length_keys: tuple[str, ...]
    rows: int
    width: int
    dtype: str
    offset: int
    keep_cls: bool
    target: int
    method: str
    keep_first: int
    trained_window: int | None
    source: int | None = None  # positions the curve is drawn from (default: the whole table)

    @property
    def positions(self) -> int:
        return self.rows - self.offset

    @property
    def pinned(self) -> int:
        return self.offset + int(self.keep_cls)

    @property
    def new_rows(self) -> int:
        return self.target + self.offset

    @property
    def factor(self) -> float:
        return self.target / self.positions

    def new_table(self, table: torch.Tensor) -> torch.Tensor:
        body_keep = max(self.keep_first - int(self.keep_cls), 0)
        source = self.source - int(self.keep_cls) if self.source else None
        return resample_table(table, self.new_rows, self.method, self.pinned, body_keep, source)

    def describe(self) -> list[tuple[str, str]]:
        keep = f"positions 0..{self.keep_first - 1} kept exactly" if self.keep_first else "none"
        return [
            ("model", self.model),
            ("family", self.family),
            ("position table", f"{self.table_key}  ({self.rows} x {self.width}, {self.dtype})"),
            ("offset", f"{self.offset} reserved row(s) before position 0"),
            ("positions", f"{self.positions} -> {self.target}  (x{self.factor:.3g})"),
            ("trained window", str(self.trained_window or "unknown")),
            (
                "method",
                self.method + ("  (first row [CLS] kept out of the curve)" if self.keep_cls else "")
                if self.target != self.positions
                else "none (give --to N)",
            ),
            ("kept exactly", keep),
            ("curve drawn from", f"positions 0..{self.source - 1} only" if self.source else "the whole table"),
            ("config", ", ".join(f"{key} = {self.new_rows}" for key in self.length_keys)),
        ]

    def provenance(self) -> dict:
        return {**asdict(self), "positions": self.positions, "new_rows": self.new_rows, "factor": self.factor}


def _find_table_key(folder: ModelFolder, table_path: str) -> str:
    suffix = f"{table_path}.weight"
    keys = [key for key in folder.weight_files if key == suffix or key.endswith("." + suffix)]
    if not keys:
        raise CtxextError(
            f"no position table '{table_path}' in {folder.root} (no tensor named *{suffix}); "
            "check --embeddings_attr_name"
        )
    if len(keys) > 1:
        raise CtxextError(f"several tensors match '{table_path}': {', '.join(keys)}; give a longer path")
    return keys[0]


def _trained_window(folder: ModelFolder) -> int | None:
    """The input length the model is declared for: Sentence-Transformers' max_seq_length (in
    sentence_bert_config.json before v6, in the tokenizer's model_max_length since), else None."""
    st_config = folder.transformer_dir / "sentence_bert_config.json"
    if st_config.is_file():
        value = read_json(st_config).get("max_seq_length")
        if isinstance(value, int):
            return value
    for directory in (folder.transformer_dir, folder.root):
        tokenizer_config = directory / "tokenizer_config.json"
        if folder.is_sentence_transformer and tokenizer_config.is_file():
            value = read_json(tokenizer_config).get("model_max_length")
            if isinstance(value, int) and value < 10**6:
                return value
    return None


def _parse_target(to) -> int:
    try:
        value = int(str(to))
    except ValueError:
        raise CtxextError(f"target length must be a whole number of tokens, not {to!r}") from None
    if value <= 0:
        raise CtxextError(f"target length must be positive, not {value}")
    return value


def _check_width(config: dict, key: str, width: int) -> None:
    """The table's width must be the one the config declares (ALBERT / ELECTRA: embedding_size)."""
    declared = next((config[k] for k in ("embedding_size", "dim", "hidden_size", "n_embd") if k in config), None)
    if isinstance(declared, int) and declared != width:
        raise CtxextError(f"{key} is {width} wide but the config declares {declared}; the folder is inconsistent")


def _check_memory(rows: int, width: int) -> None:
    """Refuse a table that cannot be built in this machine's memory (float32, a few working copies)."""
    import os

    needed = rows * width * 4 * 4
    available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > available:
        raise CtxextError(
            f"a table of {rows} positions x {width} needs about {needed / 2**30:.0f} GiB here, more than this "
            f"machine's {available / 2**30:.0f} GiB"
        )


def check_table_method(method: str) -> None:
    if method in APE_REGISTRY:
        return
    if method in ROPE_REGISTRY:
        raise CtxextError(
            f"method {method!r} is for RoPE models; a learned table takes one of {', '.join(APE_REGISTRY)}"
        )
    raise CtxextError(
        f"unknown method {method!r}{did_you_mean(method, APE_REGISTRY)}; choose from {', '.join(APE_REGISTRY)}"
    )


def plan_table(
    folder: ModelFolder,
    to: int | str | None,
    method: str = "cubic",
    table_path: str | None = None,
    offset: int | None = None,
    keep_cls: bool = False,
    keep_first: int | str = 0,
    allow_same: bool = False,
    from_window: int | str | None = None,
) -> TablePlan:
    """Check the request against the folder and return the plan; raises CtxextError on bad input."""
    check_table_method(method)
    family = family_of(folder.config, table_path)
    if family.kind != "learned":
        raise CtxextError(f"{folder.root} is a {family.name} model: {family.advice}")
    key = _find_table_key(folder, family.table)
    table = folder.read_tensor(key)
    if table.ndim != 2:
        raise CtxextError(f"{key} has shape {tuple(table.shape)}, not (positions, width)")
    if not table.isfinite().all():
        bad = int((~table.isfinite()).any(dim=-1).sum())
        raise CtxextError(f"{key} holds non-finite values in {bad} of its {table.shape[0]} rows")
    rows = table.shape[0]
    _check_width(folder.config, key, table.shape[1])
    detected = table_offset(family, folder.config)
    if offset is None:
        offset = detected
    elif offset != detected:
        log.warning("offset %d differs from the %d that %s models use", offset, detected, family.name)
    if not 0 <= offset < rows - 1:
        raise CtxextError(f"offset {offset} must be at least 0 and below the table's {rows - 1} rows")
    length_keys = tuple(k for k in family.length_keys if k in folder.config) or ("max_position_embeddings",)
    positions = rows - offset
    if to is None and method == DOUBLING:
        to = 2 * (rows - offset - keep_cls) + int(keep_cls)
    if to is None and allow_same:
        to = positions
    if to is None:
        raise CtxextError("give the target length (--to N)")
    target = _parse_target(to)
    if target < positions or (target == positions and not allow_same):
        raise CtxextError(f"target {target} is not above the model's {positions} positions")
    _check_memory(target + offset, table.shape[1])
    trained = _trained_window(folder)
    keep = _parse_keep_first(keep_first, trained, positions)
    source = _parse_window(from_window, trained, positions, "--from-window")
    if source and keep >= source:
        raise CtxextError(f"--keep-first {keep} must be below --from-window {source}")
    if source and method == DOUBLING:
        raise CtxextError("--from-window needs an interpolating method, not 'double'")
    if keep and method == DOUBLING:
        raise CtxextError("--keep-first needs an interpolating method, not 'double'")
    if keep_cls and offset:
        raise CtxextError("--keep-cls is for models whose position 0 is [CLS] (offset 0)")
    plan = TablePlan(
        model=str(folder.root),
        family=family.name,
        table_key=key,
        length_keys=length_keys,
        rows=rows,
        width=table.shape[1],
        dtype=str(table.dtype).removeprefix("torch."),
        offset=offset,
        keep_cls=keep_cls,
        target=target,
        method=method,
        keep_first=keep,
        trained_window=trained,
        source=source,
    )
    if method == DOUBLING and target != 2 * (positions - keep_cls) + int(keep_cls):
        raise CtxextError(
            f"'double' doubles the table to {2 * (positions - keep_cls) + int(keep_cls)} positions; "
            f"use 'linear' for {target}"
        )
    return plan


def _parse_keep_first(keep_first, trained: int | None, positions: int) -> int:
    return _parse_window(keep_first, trained, positions, "--keep-first") or 0


def _parse_window(value, trained: int | None, positions: int, flag: str) -> int | None:
    """A number of positions below the table's size, or 'auto' for the trained window."""
    if value in (None, 0, "0"):
        return None
    if value == "auto":
        if trained is None or trained >= positions:
            raise CtxextError(f"{flag} auto needs a trained window shorter than the table; give a number")
        return trained
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise CtxextError(f"{flag} takes a number of positions or 'auto', not {value!r}") from None
    if not 0 < number < positions:
        raise CtxextError(f"{flag} {number} must be above 0 and below the model's {positions} positions")
    return number
