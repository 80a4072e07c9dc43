"""Continued training at the new length (the PI paper's short fine-tune; "cutoff length is context length").

Text is packed into sequences of exactly ``--to`` tokens and trained with the Hugging Face Trainer, so
a user's accelerate configuration (several GPUs, FSDP, DeepSpeed) scales it with no code change. With
``lora=True`` it follows LongLoRA (Chen et al. 2023): LoRA on the attention projections, with the
embeddings and normalisation layers fully trainable, merged into a plain model at the end. A model
whose config does not yet reach ``to`` is first extended in memory by ``method``: YaRN by default, since a
short fine-tune from it matches an equally fine-tuned native model from the first steps, where Position
Interpolation (``linear``, the PI paper's start) is still 1.16x after 40 steps (BENCHMARKS.md, SmolLM2 at 2x).
With ``train_length`` shorter than ``to`` the sequences are that long and their positions skip across the whole
new window (PoSE), so the fine-tune costs what one short sequence costs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
from pathlib import Path

import torch

from ..errors import CtxextError
from .checkpoints import check_resumable, resumable
from .chunked_loss import chunked_loss_trainer, loss_head

log = logging.getLogger(__name__)
DDP_TIMEOUT_S = 7 * 24 * 3600  # processes wait for the main one to save a 70B model, not torch's 30 minutes
CHECKPOINTING_FROM = 8192  # tokens a sequence; at 8k one step of SmolLM2 took 3.2x less memory, 12% more time
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "query_key_value", "dense", "Wqkv", "out_proj")


class PackedText(torch.utils.data.Dataset):
    """Consecutive blocks of ``length`` tokens of one token stream (the last partial block dropped)."""

    def __init__(self, tokenizer, text: str, length: int):
        ids = torch.tensor(tokenizer(text, verbose=False)["input_ids"])
        count = len(ids) // length
        if count == 0:
            raise CtxextError(f"the text has {len(ids)} tokens, fewer than one sequence of {length}")
        self.blocks = ids[: count * length].view(count, length)

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, index: int) -> dict:
        return {"input_ids": self.blocks[index], "labels": self.blocks[index]}


class SkippedPositions(PackedText):
    """Blocks of ``length`` tokens whose positions span a window of ``to`` (PoSE, Zhu et al. 2024, "PoSE:
    Efficient Context Window Extension of LLMs via Positional Skip-wise Training"). Each block is cut at a
    random c in [1, length - 1]; its first chunk keeps positions 0..c-1, its second is moved by a skip
    u ~ U{0, .., to - length} to c+u .. length-1+u. Every relative distance up to ``to`` - 1 is then trained
    while the content stays contiguous. Draws depend only on (seed, index), so a resumed run sees the same
    positions."""

    def __init__(self, tokenizer, text: str, length: int, to: int, seed: int = 0):
        if not 2 <= length < to:
            raise CtxextError(f"--train-length must be at least 2 and shorter than --to ({to}); got {length}")
        super().__init__(tokenizer, text, length)
        self.to, self.seed = to, seed

    def __getitem__(self, index: int) -> dict:
        length = self.blocks.shape[1]
        draw = random.Random(self.seed * 1_000_003 + index)
        cut, skip = draw.randint(1, length - 1), draw.randint(0, self.to - length)
        positions = torch.arange(length)
        positions[cut:] += skip
        # An explicit mask: without one transformers reads a jump in position_ids as the start of another packed
        # sequence and stops the second chunk from attending to the first.
        mask = torch.ones(length, dtype=torch.long)
        return {**super().__getitem__(index), "position_ids": positions, "attention_mask": mask}


def _lora(model):
    from peft import LoraConfig, get_peft_model

    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [t for t in LORA_TARGETS if t in names]
    if not targets:
        raise CtxextError("found no attention projections to put LoRA on")
    trainable = sorted(
        {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if "norm" in type(module).__name__.lower()}
        | {"embed_tokens"} & names
    )
    config = LoraConfig(
        r=8, lora_alpha=16, lora_dropout=0.0, target_modules=targets, modules_to_save=trainable, task_type="CAUSAL_LM"
    )
    return get_peft_model(model, config)


def train(
    model_path: str | Path,
    out: str | Path,
    to: int,
    data: list[str],
    *,
    method: str = "yarn",
    max_steps: int = 200,
    learning_rate: float = 2e-5,
    batch_size: int = 1,
    accumulation: int = 1,
    lora: bool = False,
    gradient_checkpointing: bool | None = None,
    resume: bool = False,
    overwrite: bool = False,
    save_steps: int | None = None,
    seed: int = 0,
    xpos: bool = False,
    train_length: int | None = None,
    chunked_loss: bool = True,
    deepspeed: str | None = None,
    context_parallel: int | None = None,
) -> dict:
    """Train, then write ``out`` as a plain model folder in the same form ``ctxext extend`` writes.

    Under ``accelerate launch`` or ``torchrun`` every process trains its share of each batch (data parallel, or
    sharded as the user's accelerate config or ``deepspeed`` file says); the main process alone writes the output.
    ``chunked_loss``: the loss never holds full-vocabulary logits (:mod:`ctxext.train.chunked_loss`).
    ``gradient_checkpointing`` None: on for sequences of 8,192 tokens or more.
    ``context_parallel`` N splits each sequence over N GPUs (accelerate's ParallelismConfig, FSDP2, SDPA)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, default_data_collator

    from ..decoders.rope_in_memory import apply_rope_in_memory
    from ..decoders.rope_plan import plan_rope
    from ..formats.hf_folder import check_output, open_model_folder
    from ..pipeline import write_output
    from ..texts import read_corpus
    from .launch import check_launch, parallelism, world_size

    out = Path(out)
    check_output(out, overwrite)
    sequence = int(train_length or to)  # tokens of one training sequence
    check_launch(sequence, deepspeed, context_parallel)
    checkpoints = out.with_name(out.name + ".checkpoints")
    last = resumable(checkpoints) if resume and checkpoints.is_dir() else None
    if resume and last is None:
        raise CtxextError(f"--resume found no complete checkpoint in {checkpoints}")
    if last is not None:
        check_resumable(last, world_size(), fsdp=os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true")
    folder = open_model_folder(model_path)
    from ..decoders.xpos import XPOS_MODEL_TYPE, load_xpos_model
    from ..inputs import input_kind

    if train_length is not None and batch_size > 1 and (xpos or folder.config.get("model_type") == XPOS_MODEL_TYPE):
        raise CtxextError("xPos with --train-length scales by the first sequence's positions: use --batch-size 1")
    if input_kind(folder.root) != "rope" and folder.config.get("model_type") != XPOS_MODEL_TYPE:
        raise CtxextError(
            f"ctxext train continues training RoPE decoders; {folder.root} is a "
            f"{folder.config.get('model_type', 'unknown')!r} model"
        )
    folder.check_weights()
    tokenizer = AutoTokenizer.from_pretrained(str(folder.root))
    text = read_corpus(data)
    if train_length is None:
        dataset = PackedText(tokenizer, text, int(to))
    else:
        dataset = SkippedPositions(tokenizer, text, int(train_length), int(to), seed)

    if folder.config.get("model_type") == XPOS_MODEL_TYPE:
        model, _ = load_xpos_model(folder.root)  # its hooks stay attached while it trains
        folder.config.update({"model_type": folder.config["xpos"]["base_model_type"]})
        xpos, attach_xpos = True, False
    else:
        model = AutoModelForCausalLM.from_pretrained(str(folder.root), dtype=torch.float32)
        attach_xpos = xpos
    plan = None
    if folder.config.get("max_position_embeddings", 0) < int(to):
        plan = plan_rope(folder.config, str(folder.root), to, method)
        apply_rope_in_memory(model, plan)
    if attach_xpos:
        from ..decoders.xpos import XPos

        XPos(model)
    settings = dict(
        output_dir=str(checkpoints),
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation,
        learning_rate=learning_rate,
        logging_steps=max(1, min(10, max_steps // 10)),
        save_steps=save_steps or max_steps,
        seed=seed,
        activation_checkpointing=checkpointing(gradient_checkpointing, sequence),
        deepspeed=deepspeed,
        parallelism_config=parallelism(context_parallel),
    )
    base = model
    with loss_head(base) if chunked_loss else contextlib.nullcontext() as head:
        if lora:
            model = _lora(model)
        trainer_class = chunked_loss_trainer() if chunked_loss else Trainer
        trainer = trainer_class(
            model=model, args=_arguments(**settings), train_dataset=dataset, data_collator=default_data_collator
        )
        trainer.head = head
        if last is not None:
            log.warning("resuming from %s", last)
        result = trainer.train(resume_from_checkpoint=str(last) if last else None)
        peak_gpu = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
    # the model's own head and config are back: it saves as it was
    trained = _whole_model(trainer, lora)
    if trainer.is_world_process_zero():
        write_output(TrainedWriter(folder.root, trained, tokenizer, plan, xpos), out, overwrite)
    trainer.accelerator.wait_for_everyone()
    history = [row for row in trainer.state.log_history if "loss" in row]
    return {
        "steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        "history": history,
        "checkpoints": str(checkpoints),
        "resumed_from": int(last.name.split("-")[-1]) if last else None,
        "main": trainer.is_world_process_zero(),
        "tokens_per_second": result.metrics.get("train_samples_per_second", 0.0) * sequence,
        "peak_gpu_bytes": peak_gpu,
    }


def checkpointing(given: bool | None, sequence: int) -> bool:
    """Gradient checkpointing as given, else on for sequences of CHECKPOINTING_FROM tokens or more (BENCHMARKS.md,
    "One training step at 8k and 16k")."""
    return given if given is not None else sequence >= CHECKPOINTING_FROM


def _whole_model(trainer, lora: bool):
    """The trained model with whole weights on the main process (LoRA merged into them). FSDP and DeepSpeed ZeRO-3
    leave each process a shard of every weight: all processes take part in gathering them (accelerate's
    get_state_dict), and the main process puts the gathered tensors in place of its shards."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    if trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled:
        whole = trainer.accelerator.get_state_dict(trainer.model)
        if trainer.is_world_process_zero():
            model.load_state_dict(whole, assign=True)
    return model.merge_and_unload() if lora and trainer.is_world_process_zero() else model


def _arguments(**settings):
    """The Trainer's arguments: a constant learning rate, no reports, bf16 where the GPU has it, and processes that
    wait for each other as long as a large model's save takes."""
    from transformers import TrainingArguments

    return TrainingArguments(
        lr_scheduler_type="constant",
        warmup_steps=0,
        save_strategy="steps",
        report_to=[],
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        dataloader_num_workers=0,
        disable_tqdm=False,
        use_cpu=not torch.cuda.is_available(),
        ddp_timeout=DDP_TIMEOUT_S,
        **settings,
    )


class TrainedWriter:
    """The trained model as a plain folder; with RoPE scaling applied first, its config carries the plan and
    is read back through transformers like ``ctxext extend``'s; an xPos model is marked as such."""

    folder = True

    def __init__(self, source: Path, model, tokenizer, plan, xpos: bool):
        self.source, self.model, self.tokenizer, self.plan, self.xpos = Path(source), model, tokenizer, plan, xpos

    def write(self, staging: Path) -> None:
        from ..extend.decoder_folder import write_rope_config

        self.model.save_pretrained(str(staging))
        self.tokenizer.save_pretrained(str(staging))
        if self.plan is not None:
            write_rope_config(staging, self.plan)

    def read_back(self, staging: Path) -> dict | None:
        from ..extend.decoder_folder import HfRopeWriter

        if self.plan is None or self.xpos:
            return None
        return HfRopeWriter(staging, self.plan).read_back(staging)

    def record(self, staging: Path, readback: dict | None) -> None:
        from ..extend.decoder_folder import record_rope

        if self.plan is not None:
            record_rope(staging, self.plan, readback)
        if self.xpos:
            from ..decoders.xpos import mark_xpos_folder

            mark_xpos_folder(staging, 512.0)
