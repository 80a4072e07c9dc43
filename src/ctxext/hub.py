"""Models named by Hugging Face hub id (``org/name``, optionally a ``--revision``) wherever a path is taken: found
in or fetched into huggingface_hub's cache, as transformers and sentence-transformers do. ``HF_HUB_OFFLINE=1``
reads the cache only; tokens and cache folders are the user's own huggingface_hub settings."""

from __future__ import annotations

import re
from pathlib import Path

from .errors import CtxextError

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# files no verb reads: the original checkpoints some repositories ship beside the transformers ones (Llama-3.1's
# original/consolidated.00.pth, 16 GB) and other frameworks' exports
NOT_FETCHED = ["original/*", "*.pth", "*.msgpack", "*.h5", "*.ot", "*.onnx", "*.tflite", "onnx/*", "openvino/*"]


def resolve_model(name: str, revision: str | None = None) -> str:
    """``name`` itself when it is a local path (or cannot be a hub id); else the local folder of hub model ``name``."""
    if Path(name).exists() or not HUB_ID.match(name) or name.endswith((".gguf", ".yaml", ".yml")):
        if revision:
            raise CtxextError(f"--revision applies to a hub id; {name} is a local path")
        return name
    from huggingface_hub import constants, snapshot_download

    try:
        return snapshot_download(name, revision=revision, ignore_patterns=NOT_FETCHED)
    except Exception as exc:  # noqa: BLE001 - any hub, network or cache failure is one line for the user
        where = "in the local cache (HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else "on the hub"
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CtxextError(f"no such file or folder {name}, nor a model {where}: {reason}") from None


def hub_id_of(folder: str | Path) -> tuple[str, str] | None:
    """(hub id, commit) of a folder inside huggingface_hub's cache layout (``models--org--name/snapshots/<commit>``),
    so what names the model for another machine can say ``org/name`` at that commit; None for any other folder."""
    folder = Path(folder).resolve()
    repo = folder.parent.parent.name
    if folder.parent.name != "snapshots" or not repo.startswith("models--") or repo.count("--") < 2:
        return None
    return repo.removeprefix("models--").replace("--", "/", 1), folder.name
