"""Train only the new rows of an encoder's position table (after LongEmbed, Zhu et al. 2024, and Longformer's
``extra.pos.embd.only``, Beltagy et al. 2020): every weight of the model is frozen except the rows at and beyond
the original window, so an input that fits the original window is embedded bit for bit as before.

The table is first extended in memory (``tile`` by default: row j = row j mod L). The objective is
self-supervised from the user's own long texts: a span of a document is the query, the whole document its
positive, the other documents of the batch its negatives (InfoNCE, van den Oord et al. 2018: sentence-
transformers' cached multiple-negatives ranking loss, scale 20, whose gradient cache, Gao et al. 2021, runs
the batch one document at a time so that a batch of long documents fits in memory). Queries fit the
original window, so only the long side moves.

With ``distill`` w > 0 the loss adds w * (1 - cos(d, c)) per document, c being what chunk-and-mean-pool makes
of the document with the original model (its rows below the window are the original's): long embeddings are
held near the ones an index of chunks already has.
"""

from __future__ import annotations

import logging
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss
from tqdm import tqdm

from ..errors import CtxextError

log = logging.getLogger(__name__)


@dataclass
class EncoderTraining:
    to: int
    max_steps: int = 40
    batch_size: int = 8
    learning_rate: float = 2e-3
    query_tokens: int = 32
    mini_batch_size: int = 1
    gradient_checkpointing: bool = False
    distill: float = 0.0
    seed: int = 0

    def __post_init__(self):
        if self.batch_size < 2:
            raise CtxextError("encoder training contrasts documents within a batch: --batch-size must be at least 2")
        if self.distill < 0:
            raise CtxextError(f"--distill is a weight and cannot be negative (got {self.distill})")


class SpanPairs:
    """(span, document) pairs from one token stream: documents of ``window``..``to`` tokens at random places
    (one length per batch, never overlapping), each query a span of ``query_tokens`` tokens from a random place
    inside its document."""

    def __init__(self, tokenizer, text: str, window: int, to: int, query_tokens: int, seed: int):
        self.tokenizer, self.window, self.query_tokens = tokenizer, window, query_tokens
        self.ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        self.longest = to - len(tokenizer("", add_special_tokens=True)["input_ids"])
        if len(self.ids) < 2 * self.longest:
            raise CtxextError(f"the text has {len(self.ids)} tokens; training at {to} needs at least {2 * to}")
        self.random = random.Random(seed)

    def batch(self, size: int) -> tuple[list[str], list[str]]:
        length = self.random.randint(min(self.window, self.longest), self.longest)
        slots = self.random.sample(range(len(self.ids) // length), min(size, len(self.ids) // length))
        starts = [slot * length for slot in slots]  # documents of one batch never overlap
        queries, documents = [], []
        for start in starts:
            document = self.ids[start : start + length]
            at = self.random.randrange(0, max(length - self.query_tokens, 1))
            queries.append(self.tokenizer.decode(document[at : at + self.query_tokens]))
            documents.append(self.tokenizer.decode(document))
        return queries, documents


def chunk_means(sentence_transformer, documents: list[str], window: int, to: int) -> torch.Tensor:
    """``ctxext eval``'s ``chunk`` baseline of each document (pieces that fit ``window``, unit vectors mean-
    pooled) from the model in training: the distillation target, a constant in the loss."""
    from ..encoders.embed import Embedder
    from ..eval.doc_embedding import embed_documents

    return embed_documents(Embedder.around(sentence_transformer), documents, "chunk", to, window).clone()


class RankingWithDistillation(CachedMultipleNegativesRankingLoss):
    """Cached in-batch ranking loss plus ``distill`` * (1 - cos) towards ``targets``, added inside the gradient
    cache so that it costs no extra pass with gradients."""

    def __init__(self, sentence_transformer, distill: float, mini_batch_size: int):
        super().__init__(sentence_transformer, mini_batch_size=mini_batch_size)
        self.distill, self.targets = distill, None

    def calculate_loss(self, reps, labels=None, *, with_backward=False):
        ranking = super().calculate_loss(reps, labels, with_backward=with_backward)
        if not self.distill:
            return ranking
        documents = torch.cat(reps[1])
        drift = self.distill * (1 - torch.cosine_similarity(documents, self.targets, dim=-1)).mean()
        if with_backward:
            drift.backward()
            drift = drift.detach()
        return ranking + drift


def train_new_rows(sentence_transformer, table: torch.nn.Embedding, kept: int, pairs: SpanPairs, setup) -> list:
    """Train rows ``kept``.. of ``table`` in place; every other parameter frozen. Returns the loss per step."""
    for parameter in sentence_transformer.parameters():
        parameter.requires_grad_(False)
    original = table.weight.detach()[:kept].clone()
    table.weight.requires_grad_(True)
    table.weight.register_hook(lambda grad: torch.cat([torch.zeros_like(grad[:kept]), grad[kept:]]))
    optimizer = torch.optim.AdamW([table.weight], lr=setup.learning_rate, weight_decay=0.0)
    loss_fn = RankingWithDistillation(sentence_transformer, setup.distill, setup.mini_batch_size)
    if setup.gradient_checkpointing:
        sentence_transformer[0].auto_model.gradient_checkpointing_enable()
    sentence_transformer.eval()  # no dropout: deterministic, and attention keeps its fused kernel
    history = []
    with tqdm(total=setup.max_steps, desc="training new position rows", unit="step") as bar:
        for _ in range(setup.max_steps):
            queries, documents = pairs.batch(setup.batch_size)
            if setup.distill:
                loss_fn.targets = chunk_means(sentence_transformer, documents, pairs.window, setup.to)
            features = [sentence_transformer.preprocess(queries), sentence_transformer.preprocess(documents)]
            loss = loss_fn(features, torch.arange(len(queries)))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            history.append(round(loss.item(), 5))
            bar.set_postfix(loss=f"{history[-1]:.4f}")
            bar.update()
    table.weight.requires_grad_(False)
    if not torch.equal(table.weight[:kept], original):
        raise CtxextError("rows inside the original window moved during training")
    return history


def train_encoder(
    model_path: str | Path,
    out: str | Path,
    data: list[str],
    setup: EncoderTraining,
    *,
    method: str = "tile",
    overwrite: bool = False,
) -> dict:
    """Extend the table to ``setup.to`` by ``method``, train the new rows, write a plain Sentence-Transformers
    folder through the encoder pipeline (read back: short inputs bit-identical, only new rows changed)."""
    from sentence_transformers import SentenceTransformer

    from ..encoders.table_apply import apply_in_memory, table_module
    from ..encoders.table_plan import plan_table
    from ..extend.encoder_folder import TrainedTableWriter
    from ..formats.hf_folder import check_output, open_model_folder
    from ..pipeline import write_output
    from ..texts import read_corpus

    out = Path(out)
    check_output(out, overwrite)
    folder = open_model_folder(model_path)
    if folder.config.get("model_type") == "gpt2":
        raise CtxextError("ctxext train takes RoPE decoders and encoders; GPT-2-style decoders are not trained")
    plan = plan_table(folder, setup.to, method)
    text = read_corpus(data)
    torch.manual_seed(setup.seed)
    sentence_transformer = SentenceTransformer(str(folder.root), device="cpu")
    pairs = SpanPairs(sentence_transformer.tokenizer, text, plan.positions, setup.to, setup.query_tokens, setup.seed)
    apply_in_memory(sentence_transformer[0].auto_model, plan)
    sentence_transformer.max_seq_length = setup.to
    parent, name = table_module(sentence_transformer[0].auto_model, plan)
    table = getattr(parent, name)
    history = train_new_rows(sentence_transformer, table, plan.rows, pairs, setup)
    readback = write_output(
        TrainedTableWriter(folder, plan, table.weight.detach().clone(), history, asdict(setup)), out, overwrite
    )
    return {"steps": len(history), "history": history, "readback": readback}
