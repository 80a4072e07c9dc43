"""Tiny random models of every learned-table family, built from configs (no hub), with a local tokenizer."""

from __future__ import annotations

from pathlib import Path

import torch
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

WORDS = [f"w{i}" for i in range(120)]
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
VOCAB = 128
POSITIONS = 64  # usable positions of every tiny model

_SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
_ROBERTA = dict(_SMALL, pad_token_id=1, bos_token_id=0, eos_token_id=2, max_position_embeddings=POSITIONS + 2)

# family -> (config class, config kwargs, model class saved)
FAMILIES = {
    "bert": ("BertConfig", dict(_SMALL, max_position_embeddings=POSITIONS, pad_token_id=1), "BertModel"),
    "bert-mlm": ("BertConfig", dict(_SMALL, max_position_embeddings=POSITIONS, pad_token_id=1), "BertForMaskedLM"),
    "roberta": ("RobertaConfig", _ROBERTA, "RobertaModel"),
    "xlm-roberta": ("XLMRobertaConfig", _ROBERTA, "XLMRobertaModel"),
    "camembert": ("CamembertConfig", _ROBERTA, "CamembertModel"),
    "mpnet": ("MPNetConfig", _ROBERTA, "MPNetModel"),
    "distilbert": (
        "DistilBertConfig",
        dict(dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=POSITIONS, pad_token_id=1),
        "DistilBertModel",
    ),
    "albert": (
        "AlbertConfig",
        dict(_SMALL, embedding_size=16, max_position_embeddings=POSITIONS, pad_token_id=1),
        "AlbertModel",
    ),
    "electra": (
        "ElectraConfig",
        dict(_SMALL, embedding_size=16, max_position_embeddings=POSITIONS, pad_token_id=1),
        "ElectraModel",
    ),
    "gpt2": (
        "GPT2Config",
        dict(n_embd=32, n_layer=2, n_head=2, n_positions=POSITIONS, pad_token_id=1, bos_token_id=0, eos_token_id=2),
        "GPT2LMHeadModel",
    ),
}
OFFSETS = {"roberta": 2, "xlm-roberta": 2, "camembert": 2, "mpnet": 2}


def tokenizer(max_length: int = POSITIONS, bos_eos: bool = True) -> PreTrainedTokenizerFast:
    vocab = {token: i for i, token in enumerate(SPECIALS + WORDS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    if bos_eos:
        backend.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", pair="<s> $A </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        cls_token="<s>",
        sep_token="</s>",
        model_max_length=max_length,
    )


def build(family: str, seed: int = 0, dtype=torch.float32):
    config_name, kwargs, model_name = FAMILIES[family]
    config = getattr(transformers, config_name)(vocab_size=VOCAB, **kwargs)
    torch.manual_seed(seed)
    model = getattr(transformers, model_name)(config).eval()
    return model.to(dtype)


def save(family: str, folder: Path, dtype=torch.float32, safe: bool = True) -> Path:
    model = build(family, dtype=dtype)
    model.save_pretrained(folder)
    if not safe:  # a legacy checkpoint, as transformers < 4.35 wrote them
        (folder / "model.safetensors").unlink()
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    tokenizer(POSITIONS).save_pretrained(folder)
    return folder


def save_sentence_transformer(folder: Path, family: str = "bert", window: int = 32, pooling: str = "mean") -> Path:
    """A Sentence-Transformers folder around a tiny model, with a trained window shorter than its table."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers import models as st_models

    raw = save(family, folder.with_name(folder.name + "-raw"))
    transformer = st_models.Transformer(str(raw), max_seq_length=window)
    pooler = st_models.Pooling(transformer.get_embedding_dimension(), pooling)
    SentenceTransformer(modules=[transformer, pooler], device="cpu").save(str(folder))
    return folder


def words(count: int, seed: int = 0) -> str:
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(0, len(WORDS), (count,), generator=generator)
    return " ".join(WORDS[i] for i in picks)


def input_ids(length: int, seed: int = 0) -> torch.Tensor:
    """A batch of one sequence of ``length`` ids, no padding ids inside."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(len(SPECIALS), VOCAB - 8, (1, length), generator=generator)
    ids[0, 0] = 0
    return ids


def reload_in_fresh_process(jobs: list[dict], work: Path) -> dict:
    """Run tests/reload_plain.py on ``jobs`` in a new interpreter where ctxext cannot be imported."""
    import subprocess
    import sys

    torch.save(jobs, work / "jobs.pt")
    process = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("reload_plain.py")), str(work / "jobs.pt"), str(work / "out.pt")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    return torch.load(work / "out.pt", weights_only=False)
