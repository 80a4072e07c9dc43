"""How a long document becomes vectors, the baselines an extended encoder has to beat and its own modes:

- ``truncate``: cut at the original window (what an unextended encoder does silently);
- ``chunk``: split into windows of the original length, embed each, mean-pool the unit vectors;
- ``maxsim``: the same chunk vectors kept apart (multi-vector), a document scored by its best chunk;
- ``extended``: the whole document in one pass of an extended model;
- ``late``: late chunking (Günther et al. 2024, "Late Chunking: Contextual Chunk Embeddings Using Long-Context
  Embedding Models"): one pass of the extended model over the whole document, token states pooled per
  window-sized span by the model's own pooling (mean where it pools by one token, cls or last), so each chunk
  vector has seen the whole document; scored by its best chunk like ``maxsim``.
"""

from __future__ import annotations

import torch


def embed_documents(embedder, documents: list[str], mode: str, length: int, window: int):
    """A tensor (documents x width), or for multi-vector modes a list of (chunks x width) tensors."""
    saved = embedder.max_length
    try:
        if mode in ("chunk", "maxsim"):
            vectors = [_chunk_vectors(embedder, text, length, window) for text in documents]
            return vectors if mode == "maxsim" else torch.stack([v.mean(0) for v in vectors])
        if mode == "late":
            return [_late_chunks(embedder, text, length, window) for text in documents]
        embedder.max_length = min(length, window) if mode in ("truncate", "native") else length
        return embedder.encode(documents)
    finally:
        embedder.max_length = saved


def similarity(queries: torch.Tensor, documents) -> torch.Tensor:
    """Cosine similarity, queries x documents; a multi-vector document scores the maximum over its vectors."""
    q = torch.nn.functional.normalize(queries.float(), dim=-1)
    if isinstance(documents, torch.Tensor):
        return q @ torch.nn.functional.normalize(documents.float(), dim=-1).T
    columns = [(q @ torch.nn.functional.normalize(d.float(), dim=-1).T).amax(dim=-1) for d in documents]
    return torch.stack(columns, dim=-1)


def _chunk_ids(tokenizer, text: str, length: int, window: int) -> tuple[list[int], int]:
    ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"][: max(length - 2, 1)]
    specials = len(tokenizer("", add_special_tokens=True)["input_ids"])
    return ids, window - specials


def _chunk_vectors(embedder, text: str, length: int, window: int) -> torch.Tensor:
    ids, size = _chunk_ids(embedder.tokenizer, text, length, window)
    chunks = [embedder.tokenizer.decode(ids[i : i + size]) for i in range(0, len(ids), size)] or [text]
    embedder.max_length = window
    return torch.nn.functional.normalize(embedder.encode(chunks), dim=-1)


def _late_chunks(embedder, text: str, length: int, window: int) -> torch.Tensor:
    ids, size = _chunk_ids(embedder.tokenizer, text, length, window)
    states = embedder.token_states(text, length)  # [CLS] t_1 ... t_n [SEP]: token i is row i + 1
    body = states[1 : 1 + len(ids)] if len(states) > 2 else states
    return embedder.pool_spans(body, [slice(i, i + size) for i in range(0, len(body), size)])
