"""Reading text: the user's files and folders (or a Hugging Face dataset named ``hf:org/name``), one text a line,
and the short paragraphs ctxext ships."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .errors import CtxextError


def default_short_texts() -> list[str]:
    """64 short public-domain paragraphs (15-150 words, Northanger Abbey) shipped with ctxext."""
    text = resources.files("ctxext.data").joinpath("short_texts.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def read_texts(path: str | Path) -> list[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CtxextError(f"cannot read texts from {path}: {exc}") from None
    texts = [line for line in lines if line.strip()]
    if not texts:
        raise CtxextError(f"{path} holds no text")
    return texts


def hub_dataset_text(name: str) -> str:
    """The 'text' column of a Hugging Face dataset, named explicitly as ``hf:org/name`` or ``hf:org/name:split``
    (any other missing path is an error, never a network request)."""
    if not name.startswith("hf:"):
        raise CtxextError(f"no such file or folder: {name} (a Hugging Face dataset is named hf:org/name)")
    name = name.removeprefix("hf:")
    try:
        import datasets
    except ImportError:
        raise CtxextError(f"no such file or folder: {name} (dataset names need `pip install datasets`)") from None
    dataset_name, _, split = name.partition(":")
    try:
        rows = datasets.load_dataset(dataset_name, split=split or "test")
    except Exception as exc:  # noqa: BLE001 - any hub or network failure is one line for the user
        raise CtxextError(f"no such file or folder, and no reachable dataset: {name} ({type(exc).__name__})") from None
    if "text" not in rows.column_names:
        raise CtxextError(f"dataset {name} has no 'text' column ({', '.join(rows.column_names)})")
    return "\n\n".join(rows["text"])


def read_corpus(paths: list[str | Path]) -> str:
    """Text of files and of the .txt / .md files inside folders, joined by blank lines."""
    texts = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix in (".txt", ".md"))
        elif path.is_file():
            files = [path]
        else:
            texts.append(hub_dataset_text(str(raw)))
            continue
        for file in files:
            try:
                texts.append(file.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError) as exc:
                raise CtxextError(f"cannot read {file}: {exc}") from None
    text = "\n\n".join(t for t in texts if t.strip())
    if not text.strip():
        raise CtxextError(f"no text in {', '.join(str(p) for p in paths)}")
    return text
