"""Load an encoder folder the way its users do, embed texts, and compare two embedders.

A Sentence-Transformers folder is loaded with ``SentenceTransformer`` (its own pooling and
normalisation); a plain transformers folder is embedded by mean pooling of the last hidden state.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..texts import default_short_texts

log = logging.getLogger(__name__)

SINGLE_TOKEN_POOLING = ("cls", "lasttoken")


class Embedder:
    """Texts -> float32 embeddings, for Sentence-Transformers and plain transformers folders alike."""

    def __init__(self, path: str | Path, device: str = "cpu", dtype: torch.dtype = torch.float32):
        self.path = Path(path)
        if (self.path / "modules.json").is_file():
            from sentence_transformers import SentenceTransformer

            self.sentence_transformer = SentenceTransformer(str(self.path), device=device).to(dtype)
            self.model = self.sentence_transformer[0].auto_model
            self.tokenizer = self.sentence_transformer.tokenizer
        else:
            from transformers import AutoModel, AutoTokenizer

            self.sentence_transformer = None
            self.model = AutoModel.from_pretrained(str(self.path), dtype=dtype).to(device).eval()
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.path))

    @classmethod
    def around(cls, sentence_transformer) -> Embedder:
        """An Embedder over a Sentence-Transformer already in memory (one being trained), loading nothing."""
        embedder = cls.__new__(cls)
        embedder.path, embedder.sentence_transformer = None, sentence_transformer
        embedder.model, embedder.tokenizer = sentence_transformer[0].auto_model, sentence_transformer.tokenizer
        return embedder

    @property
    def max_length(self) -> int:
        if self.sentence_transformer is not None:
            return self.sentence_transformer.max_seq_length
        return self.tokenizer.model_max_length

    @max_length.setter
    def max_length(self, value: int) -> None:
        if self.sentence_transformer is not None:
            self.sentence_transformer.max_seq_length = value
        self.tokenizer.model_max_length = value

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 16) -> torch.Tensor:
        if self.sentence_transformer is not None:
            return (
                self.sentence_transformer.encode(
                    texts, batch_size=batch_size, convert_to_tensor=True, show_progress_bar=False
                )
                .float()
                .cpu()
            )
        chunks = []
        for start in range(0, len(texts), batch_size):
            batch = self.tokenizer(
                texts[start : start + batch_size], padding=True, truncation=True, return_tensors="pt"
            ).to(self.model.device)
            hidden = self.model(**batch).last_hidden_state.float()
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            chunks.append(((hidden * mask).sum(1) / mask.sum(1)).cpu())
        return torch.cat(chunks)

    @torch.inference_mode()
    def token_states(self, text: str, max_length: int) -> torch.Tensor:
        """The last hidden state of every token of ``text`` (special tokens included), cut at ``max_length``."""
        batch = self.tokenizer([text], truncation=True, max_length=max_length, return_tensors="pt")
        return self.model(**batch.to(self.model.device)).last_hidden_state[0].float().cpu()

    def span_pooling(self):
        """(the Sentence-Transformers pooling module, its mode) when it pools a span of token states as it pools a
        text (mean, max, mean_sqrt_len_tokens, weightedmean, or several of them); (None, "mean") otherwise: for a
        plain transformers folder (whose ``encode`` is mean pooling) and for cls / lasttoken pooling, which pick
        one token that a span in the middle of a document does not have."""
        modules = list(self.sentence_transformer) if self.sentence_transformer is not None else []
        pooling = next((m for m in modules if type(m).__name__ == "Pooling" and hasattr(m, "pooling_mode")), None)
        if pooling is None:
            return None, "mean"
        modes = pooling.pooling_mode if isinstance(pooling.pooling_mode, tuple) else (pooling.pooling_mode,)
        if any(mode in SINGLE_TOKEN_POOLING for mode in modes):
            return None, f"mean (the model pools by {'+'.join(modes)}: one token a span does not have)"
        return pooling, "+".join(modes)

    def pool_spans(self, states: torch.Tensor, spans: list[slice]) -> torch.Tensor:
        """One vector per span of ``states`` (tokens x width), pooled as :meth:`span_pooling` says."""
        pooling, _ = self.span_pooling()
        if pooling is None:
            return torch.stack([states[span].mean(0) for span in spans])
        vectors = []
        for span in spans:
            tokens = states[span].unsqueeze(0)
            features = {"token_embeddings": tokens, "attention_mask": torch.ones(tokens.shape[:2], dtype=torch.long)}
            vectors.append(pooling(features)["sentence_embedding"][0].float())
        return torch.stack(vectors)

    def token_count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])


def drift(before: torch.Tensor, after: torch.Tensor) -> dict[str, float]:
    """How far embeddings moved: mean and min cosine, and the share of texts whose nearest
    neighbour (among the other texts) is unchanged."""
    cosine = torch.nn.functional.cosine_similarity(before, after, dim=-1)
    return {
        "texts": len(before),
        "mean_cosine": round(cosine.mean().item(), 6),
        "min_cosine": round(cosine.min().item(), 6),
        "neighbour_kept": round(_nearest(before).eq(_nearest(after)).float().mean().item(), 4),
    }


def _nearest(embeddings: torch.Tensor) -> torch.Tensor:
    unit = torch.nn.functional.normalize(embeddings, dim=-1)
    similarity = unit @ unit.T
    similarity.fill_diagonal_(-2.0)
    return similarity.argmax(dim=-1)


def long_text(tokenizer, tokens: int, filler: str | None = None) -> str:
    """A text of about ``tokens`` tokens (special tokens included) from the shipped paragraphs."""
    source = filler or " ".join(default_short_texts())
    ids = tokenizer(source, add_special_tokens=False, verbose=False)["input_ids"]
    while len(ids) < tokens:
        ids = ids + ids
    specials = len(tokenizer("", add_special_tokens=True)["input_ids"])
    return tokenizer.decode(ids[: tokens - specials])
