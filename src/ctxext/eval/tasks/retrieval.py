"""Long-document retrieval for encoders: synthetic passkey and needle (after LongEmbed, Zhu et al. 2024),
deep-sentence chapter retrieval from books, and the user's own JSONL; nDCG@10 and accuracy@1.

Every task is a set of documents and of queries with their relevant documents; how documents are embedded
(truncated, chunked, multi-vector, whole, late-chunked) is in :mod:`ctxext.eval.doc_embedding`.
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ...errors import CtxextError
from ..intervals import wilson_interval
from ..registry import Task, TaskInput, register

NAMES = [
    "Alice",
    "Bernard",
    "Clara",
    "Dmitri",
    "Elena",
    "Farid",
    "Greta",
    "Hiro",
    "Ines",
    "Jonas",
    "Kavya",
    "Liam",
    "Mara",
    "Nils",
    "Olga",
    "Pavel",
    "Quinn",
    "Rosa",
    "Sami",
    "Tove",
    "Uma",
    "Viktor",
    "Wen",
    "Ximena",
]
CITIES = [
    "Lisbon",
    "Oslo",
    "Quito",
    "Hanoi",
    "Accra",
    "Lima",
    "Perth",
    "Riga",
    "Cusco",
    "Dakar",
    "Turin",
    "Sapporo",
    "Tbilisi",
    "Bergen",
    "Cordoba",
    "Malmo",
    "Nagpur",
    "Porto",
    "Split",
    "Tartu",
    "Utrecht",
    "Vilnius",
]
RETRIEVAL_SUBTASKS = ("passkey", "needle", "chapters")
GRASS = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "


@dataclass
class RetrievalTask:
    name: str
    documents: list[str]
    queries: list[str]
    relevant: list[set[int]] = field(default_factory=list)


def _fit(tokenizer, before: str, needle: str, after: str, tokens: int, depth: float) -> str:
    """Filler with ``needle`` at relative ``depth``, cut so the whole is about ``tokens`` tokens."""
    needle_ids = tokenizer(needle, add_special_tokens=False)["input_ids"]
    filler = tokenizer(before + after, add_special_tokens=False, verbose=False)["input_ids"]
    room = max(tokens - len(needle_ids) - 2, 0)
    while len(filler) < room:
        filler = filler + filler
    filler = filler[:room]
    cut = int(depth * room)
    return tokenizer.decode(filler[:cut]) + " " + needle + " " + tokenizer.decode(filler[cut:])


def passkey_task(tokenizer, length: int, count: int = 16, seed: int = 0) -> RetrievalTask:
    rng = random.Random(seed + length)
    names = rng.sample(NAMES, count)
    documents, queries = [], []
    for name in names:
        key = rng.randint(10000, 99999)
        needle = f"{name}'s pass key is {key}. Remember it. {key} is {name}'s pass key."
        documents.append(_fit(tokenizer, GRASS, needle, GRASS, length, rng.random()))
        queries.append(f"What is {name}'s pass key?")
    return RetrievalTask("passkey", documents, queries, [{i} for i in range(count)])


def needle_task(tokenizer, prose: str, length: int, count: int = 16, seed: int = 0) -> RetrievalTask:
    rng = random.Random(seed + 7 * length)
    cities = rng.sample(CITIES, count)
    words = prose.split()
    documents, queries = [], []
    for city in cities:
        start = rng.randrange(0, max(len(words) - 2 * length, 1))
        passage = " ".join(words[start : start + 2 * length])
        needle = f"The special magic {city} number is {rng.randint(1000, 9999)}."
        documents.append(_fit(tokenizer, passage, needle, "", length, rng.random()))
        queries.append(f"What is the special magic {city} number?")
    return RetrievalTask("needle", documents, queries, [{i} for i in range(count)])


CHAPTER = re.compile(r"^\s*CHAPTER\s+[IVXLC\d]+\.?\s*$", re.MULTILINE | re.IGNORECASE)


def chapter_task(
    tokenizer,
    books: list[str],
    min_depth: int = 600,
    per_chapter: int = 1,
    seed: int = 0,
    max_chapters: int | None = None,
) -> RetrievalTask:
    """Chapters as documents; queries are sentences from beyond ``min_depth`` tokens into their chapter."""
    rng = random.Random(seed)
    documents, queries, relevant = [], [], []
    for book in books:
        for chapter in CHAPTER.split(book)[1:]:
            chapter = chapter.strip()
            ids = tokenizer(chapter, add_special_tokens=False, verbose=False)["input_ids"]
            if len(ids) < min_depth + 200:
                continue
            deep = tokenizer.decode(ids[min_depth:])
            sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", deep) if 12 <= len(s.split()) <= 40]
            if not sentences:
                continue
            index = len(documents)
            documents.append(chapter)
            for sentence in rng.sample(sentences, min(per_chapter, len(sentences))):
                queries.append(sentence)
                relevant.append({index})
            if max_chapters and len(documents) >= max_chapters:
                return RetrievalTask("chapters", documents, queries, relevant)
    if not documents:
        raise CtxextError(
            f"no chapters found (expected 'CHAPTER N' headings and chapters longer than {min_depth + 200} tokens)"
        )
    return RetrievalTask("chapters", documents, queries, relevant)


def jsonl_task(path: str | Path) -> RetrievalTask:
    """Lines {"doc_id", "text"} and {"query_id", "query", "relevant": [doc ids]}."""
    documents, doc_index, queries, relevant = [], {}, [], []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CtxextError(f"cannot read {path}: {exc}") from None
    pending = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CtxextError(f"{path}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise CtxextError(f"{path}:{number}: expected an object")
        if "doc_id" in record and isinstance(record.get("text"), str):
            doc_index[str(record["doc_id"])] = len(documents)
            documents.append(record["text"])
        elif "query" in record and isinstance(record.get("relevant"), list):
            pending.append((number, record))
        else:
            raise CtxextError(f'{path}:{number}: expected {{"doc_id", "text"}} or {{"query", "relevant": [...]}}')
    for number, record in pending:
        missing = [r for r in record["relevant"] if str(r) not in doc_index]
        if missing or not record["relevant"]:
            raise CtxextError(f"{path}:{number}: relevant documents {missing or '[]'} are not in the file")
        queries.append(record["query"])
        relevant.append({doc_index[str(r)] for r in record["relevant"]})
    if not documents or not queries:
        raise CtxextError(f"{path} needs at least one document and one query")
    return RetrievalTask(Path(path).stem, documents, queries, relevant)


def rank_metrics(queries: torch.Tensor, documents, relevant: list[set[int]]) -> dict[str, float]:
    """accuracy@1 with its 95% Wilson interval over the queries, and nDCG@10 (binary relevance) of cosine ranking;
    a document given as several vectors (multi-vector) scores the best of them."""
    from ..doc_embedding import similarity

    order = similarity(queries, documents).argsort(dim=-1, descending=True)
    top1, ndcg = 0.0, 0.0
    for row, wanted in zip(order.tolist(), relevant, strict=True):
        top1 += row[0] in wanted
        gain = sum(1 / math.log2(rank + 2) for rank, doc in enumerate(row[:10]) if doc in wanted)
        ideal = sum(1 / math.log2(rank + 2) for rank in range(min(len(wanted), 10)))
        ndcg += gain / ideal
    return {
        "accuracy@1": top1 / len(relevant),
        "accuracy@1_ci95": wilson_interval(top1, len(relevant)),
        "ndcg@10": ndcg / len(relevant),
    }


def retrieval_grid(loaded, mode: str, lengths, text, subtasks, jsonl, count, label) -> dict:
    """results[length]["task/metric"] for one variant of a loaded encoder (``mode`` from ``variant``)."""
    from tqdm.auto import tqdm

    from ...errors import did_you_mean
    from ..doc_embedding import embed_documents

    subtasks = subtasks or (["passkey", "needle"] + (["chapters"] if text else []))
    for name in subtasks:
        if name not in RETRIEVAL_SUBTASKS:
            raise CtxextError(f"unknown retrieval task {name!r}{did_you_mean(name, RETRIEVAL_SUBTASKS)}")
    if ("needle" in subtasks or "chapters" in subtasks) and not text:
        from ...texts import default_short_texts

        text = " ".join(default_short_texts()) if "chapters" not in subtasks else None
        if text is None:
            raise CtxextError("the chapters task needs books: pass --data FILE [FILE ...]")
    window = loaded.chunk_window
    positions = loaded.model.config.max_position_embeddings - loaded.plan_table(None, "cubic").offset
    results = {}
    fixed = [jsonl_task(jsonl)] if jsonl else []
    if "chapters" in subtasks:
        fixed.append(chapter_task(loaded.tokenizer, [text]))
    generated = len([name for name in subtasks if name in ("passkey", "needle")])
    with tqdm(total=len(lengths) * (generated + len(fixed)), desc=f"retrieval {label}", unit="task") as bar:
        for length in lengths:
            row = {}
            tasks = [passkey_task(loaded.tokenizer, length, count)] if "passkey" in subtasks else []
            if "needle" in subtasks:
                tasks.append(needle_task(loaded.tokenizer, text, length, count))
            for task in tasks + fixed:
                if mode in ("extended", "late") and length > positions:
                    bar.update()
                    continue
                # native: the model as it is, documents cut at its own table's length
                feed, cut = ("truncate", positions) if mode == "native" else (mode, window)
                documents = embed_documents(loaded.embedder, task.documents, feed, length, cut)
                queries = loaded.embedder.encode(task.queries)
                metrics = rank_metrics(queries, documents, task.relevant)
                row.update({f"{task.name}/{k}": v for k, v in metrics.items()})
                bar.update()
            if mode == "late" and row:
                row["late_pooling"] = loaded.embedder.span_pooling()[1]
            results[length] = row
    return results


def _run(inp: TaskInput, label: str, mode: str) -> dict:
    options = inp.options
    return retrieval_grid(
        inp.loaded, mode, inp.lengths, inp.text, options["subtasks"], options["jsonl"], options["count"], label
    )


register(Task("retrieval", "encoder", _run))
