"""Small-scale test of the PI paper's claim (Chen et al. 2023): Position Interpolation plus a short
fine-tune at the new length beats fine-tuning at that length without it.

A tiny Llama (about 2.6M parameters, byte-level BPE of 4096 tokens trained here) is trained from scratch
at context 256 on four Austen novels, then compared on *Persuasion* (held out) at 256 / 512 / 1024 / 2048,
on the same scored tokens at every length:
  base        no extension                       xpos       trained with xPos at 256, no extension
  pi          PI x4, no training                 pi+ft      PI x4, then fine-tuned at 1024
  direct-ft   fine-tuned at 1024 without PI      yarn       YaRN x4, no training
  yarn+ft     YaRN x4, then fine-tuned at 1024

usage: python bench/pi_reproduction.py [--steps 300] [--ft-steps 100] [--out bench/results/pi_reproduction.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ctxext.decoders.rope_in_memory import apply_rope_in_memory  # noqa: E402
from ctxext.decoders.rope_plan import plan_rope  # noqa: E402
from ctxext.decoders.xpos import load_xpos_model  # noqa: E402
from ctxext.eval.tasks.ppl import perplexity  # noqa: E402
from ctxext.train.trainer import train  # noqa: E402

TRAIN_BOOKS = ["emma.txt", "prideprejudice.txt", "sensesensibility.txt", "northangerabbey.txt"]
LENGTHS = [256, 512, 1024, 2048]


def make_tokenizer(corpus: Path, folder: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=4096, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    backend.train([str(corpus / name) for name in TRAIN_BOOKS], trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|endoftext|>", pad_token="<|endoftext|>", model_max_length=256
    )
    tokenizer.save_pretrained(folder)
    return tokenizer


def make_model(folder: Path, tokenizer) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=192,
        intermediate_size=512,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=0,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)


def evaluate(model, ids: torch.Tensor) -> dict:
    result = perplexity(model.eval(), ids, LENGTHS, stride=256)
    return {length: row["ppl"] for length, row in result.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--steps", type=int, default=300, help="pre-training steps at 256 (batch 8)")
    parser.add_argument("--ft-steps", type=int, default=100, help="fine-tune steps at 1024 (batch 2)")
    parser.add_argument("--work", default=str(ROOT / "runs" / "pi_reproduction"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "pi_reproduction.json"))
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 2)
    corpus, work = Path(args.corpus), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tokenizer = make_tokenizer(corpus, work / "init")
    make_model(work / "init", tokenizer)
    books = [str(corpus / name) for name in TRAIN_BOOKS]
    held_out = (corpus / "persuasion.txt").read_text()
    ids = torch.tensor(tokenizer(held_out)["input_ids"][:6145])
    clock = {}

    def timed(name, function):
        began = time.perf_counter()
        value = function()
        clock[name] = time.perf_counter() - began
        print(f"{name}: {clock[name]:.0f} s", flush=True)
        return value

    common = {"learning_rate": 1e-3, "overwrite": True}
    timed(
        "pretrain base",
        lambda: train(work / "init", work / "base", 256, books, max_steps=args.steps, batch_size=8, **common),
    )
    timed(
        "pretrain xpos",
        lambda: train(
            work / "init", work / "xpos", 256, books, max_steps=args.steps, batch_size=8, xpos=True, **common
        ),
    )
    fine = {"learning_rate": 2e-4, "overwrite": True, "batch_size": 2}
    timed(
        "pi+ft",
        lambda: train(work / "base", work / "pi-ft", 1024, books, method="linear", max_steps=args.ft_steps, **fine),
    )
    timed(
        "yarn+ft",
        lambda: train(work / "base", work / "yarn-ft", 1024, books, method="yarn", max_steps=args.ft_steps, **fine),
    )
    direct_folder = work / "base-as-1024"
    if not direct_folder.exists():  # same weights, config says 1024 and no scaling: direct fine-tuning
        import shutil

        shutil.copytree(work / "base", direct_folder)
        config = json.loads((direct_folder / "config.json").read_text())
        config["max_position_embeddings"] = 1024
        (direct_folder / "config.json").write_text(json.dumps(config))
    timed("direct-ft", lambda: train(direct_folder, work / "direct-ft", 1024, books, max_steps=args.ft_steps, **fine))

    from transformers import AutoModelForCausalLM

    rows = {}
    base = AutoModelForCausalLM.from_pretrained(work / "base")
    rows["base"] = evaluate(base, ids)
    for method in ("linear", "yarn"):
        model = AutoModelForCausalLM.from_pretrained(work / "base")
        apply_rope_in_memory(model, plan_rope(model.config.to_dict(), "base", 1024, method))
        rows["pi" if method == "linear" else "yarn"] = evaluate(model, ids)
    for name in ("pi-ft", "yarn-ft", "direct-ft"):
        rows[name.replace("-ft", "+ft") if name != "direct-ft" else name] = evaluate(
            AutoModelForCausalLM.from_pretrained(work / name), ids
        )
    xpos_model, _ = load_xpos_model(work / "xpos")
    rows["xpos"] = evaluate(xpos_model, ids)
    for name, row in rows.items():
        print(name, {k: round(v, 2) for k, v in row.items()}, flush=True)
    record = {
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "steps": args.steps,
        "ft_steps": args.ft_steps,
        "wall_seconds": time.perf_counter() - start,
        "phase_seconds": clock,
        "lengths": LENGTHS,
        "ppl": rows,
    }
    Path(args.out).write_text(json.dumps(record, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
