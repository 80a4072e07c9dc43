"""Training as users scale it: a loss that never holds a sequence's full-vocabulary logits and trains to the same
weights as the model's own; several processes (torchrun, gloo on this CPU) training to the weights one process
reaches with the same global batch, only one of them writing, a two-process checkpoint resumed; and what cannot
run refused in one line before anything loads."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file

import tiny
import tiny_decoders
from ctxext.cli.main import main, run
from ctxext.train import chunked_loss
from ctxext.train.trainer import train


@pytest.fixture(scope="module")
def setup(tiny_training):
    return tiny_training


@pytest.mark.parametrize("family", list(tiny_decoders.DECODERS))
def test_chunked_loss_and_its_gradients_are_the_models_own(family, tmp_path):
    folder = tiny_decoders.save_decoder(family, tmp_path / family)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder).train()
    ids = torch.randint(0, tiny.VOCAB, (2, 64), generator=torch.Generator().manual_seed(0))
    own = model(input_ids=ids, labels=ids).loss
    own.backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    with chunked_loss.loss_head(model, rows=7) as head:
        inputs = {"input_ids": ids, "labels": ids}
        head.targets = chunked_loss.shifted_targets(inputs)
        loss = model(input_ids=ids).logits.sum() / (head.targets != chunked_loss.IGNORE).sum()
        loss.backward()
    torch.testing.assert_close(loss, own, rtol=1e-6, atol=1e-6)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-5, atol=1e-7, msg=name)
    assert type(model.get_output_embeddings()).__name__ == "Linear"  # the model's own head is back


def test_chunked_loss_holds_at_most_rows_positions_of_logits(tmp_path, monkeypatch):
    """Forward and backward (recomputed chunks) alike: the head never forms logits for more than ``rows``
    positions."""
    folder = tiny_decoders.save_decoder("llama", tmp_path / "llama")
    model = transformers.AutoModelForCausalLM.from_pretrained(folder).train()
    ids = torch.randint(0, tiny.VOCAB, (1, 64), generator=torch.Generator().manual_seed(1))
    seen = []
    head_logits = chunked_loss.LossHead.head_logits

    def counted(self, hidden):
        logits = head_logits(self, hidden)
        seen.append(tuple(logits.shape))
        return logits

    monkeypatch.setattr(chunked_loss.LossHead, "head_logits", counted)
    with chunked_loss.loss_head(model, rows=16) as head:
        head.targets = chunked_loss.shifted_targets({"labels": ids})
        model(input_ids=ids).logits.sum().backward()
    assert seen and max(shape[1] for shape in seen) == 16
    assert len(seen) == 2 * 4  # four chunks, each computed again in the backward pass


def test_a_tied_head_saves_under_its_own_name_while_the_loss_is_installed(tmp_path):
    """The Trainer saves checkpoints mid-training, with the loss head in place: the head keeps its name and its
    tie to the input embedding."""
    folder = tiny_decoders.save_decoder("llama", tmp_path / "llama")
    config = transformers.AutoConfig.from_pretrained(folder)
    config.tie_word_embeddings = True
    model = transformers.AutoModelForCausalLM.from_config(config)
    with chunked_loss.loss_head(model):
        assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
        model.save_pretrained(tmp_path / "saved")
    saved = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "saved")
    torch.testing.assert_close(saved.lm_head.weight, model.lm_head.weight)
    ids = torch.arange(12).unsqueeze(0)
    torch.testing.assert_close(saved(input_ids=ids).logits, model(input_ids=ids).logits)


def test_the_trainer_reaches_the_same_weights_with_either_loss(setup, tmp_path):
    _, source, text = setup
    common = dict(max_steps=3, learning_rate=1e-3, batch_size=2, accumulation=2)
    train(source, tmp_path / "chunked", 128, [str(text)], **common)
    train(source, tmp_path / "plain", 128, [str(text)], chunked_loss=False, **common)
    chunked, plain = (load_file(tmp_path / n / "model.safetensors") for n in ("chunked", "plain"))
    assert chunked.keys() == plain.keys()
    moved = load_file(Path(source) / "model.safetensors")
    assert any(not torch.equal(chunked[k], moved[k]) for k in chunked)
    for key in chunked:
        torch.testing.assert_close(chunked[key], plain[key], rtol=1e-4, atol=1e-6, msg=key)


def _torchrun(args: list[str], processes: int) -> subprocess.CompletedProcess:
    script = shutil.which("ctxext", path=os.path.dirname(sys.executable))
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([*launcher, script, *args], capture_output=True, text=True, timeout=900, env=env)


def test_two_processes_train_to_the_weights_one_process_reaches_and_one_writes(setup, tmp_path):
    """Same global batch (2 processes x 1 sequence against 1 process x 2) and seed: the same weights, within
    float tolerance (gradients are averaged in a different order), and not those of 1 process x 1 sequence. Then
    the two-process run resumes from its own checkpoint and continues the same run."""
    _, source, _ = setup
    text = tmp_path / "varied.txt"  # sequences that differ, so that the batch a step sees matters
    text.write_text(tiny.words(128 * 12, seed=5))
    common = ["train", str(source), "--to", "128", "--data", str(text), "--learning-rate", "1e-3", "--max-steps"]
    for batch in ("1", "2"):
        assert run(main, [*common, "3", "--batch-size", batch, "-o", str(tmp_path / f"one-{batch}")]) == 0
    done = _torchrun([*common, "3", "--batch-size", "1", "--save-steps", "3", "-o", str(tmp_path / "two")], 2)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("wrote ") == 1  # the main process reports, and alone writes
    two = load_file(tmp_path / "two" / "model.safetensors")
    same_batch, other_batch = (load_file(tmp_path / f"one-{b}" / "model.safetensors") for b in ("2", "1"))
    for key in two:
        torch.testing.assert_close(two[key], same_batch[key], rtol=1e-4, atol=1e-6, msg=key)
    assert max(float((two[k] - other_batch[k]).abs().max()) for k in two) > 1e-3
    assert not list(tmp_path.glob(".two.ctxext-staging-*"))
    again = [
        *common,
        "5",
        "--batch-size",
        "1",
        "--save-steps",
        "3",
        "--resume",
        "--overwrite",
        "-o",
        str(tmp_path / "two"),
    ]
    resumed = _torchrun(again, 2)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr and "checkpoint-3" in resumed.stderr
    assert "trained 5 steps" in resumed.stdout and resumed.stdout.count("wrote ") == 1


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--context-parallel", "3"], "--context-parallel 3 must divide the sequence length 128"),
        (["--context-parallel", "2"], "must divide the number of processes (1)"),
        (["--deepspeed", "missing.json"], "--deepspeed missing.json: no such file"),
    ],
)
def test_what_cannot_run_is_refused_in_one_line(setup, tmp_path, capsys, extra, fragment, monkeypatch):
    _, source, text = setup
    monkeypatch.chdir(tmp_path)
    assert run(main, _train_argv(source, text, tmp_path, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and err.count("\n") == 0
    assert not (tmp_path / "o").exists()


def _train_argv(source, text, tmp_path, *extra: str) -> list[str]:
    return ["train", str(source), "--to", "128", "--data", str(text), *extra, "-o", str(tmp_path / "o")]


@pytest.mark.parametrize(
    "fsdp, fragment",
    [
        ({"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2"}, "this torch sees no CUDA device"),
        ({"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "1"}, "runs under FSDP2: launch with accelerate launch"),
        ({}, "a config with distributed_type: FSDP and fsdp_version: 2"),
    ],
)
def test_context_parallel_without_fsdp2_or_gpus_is_refused(setup, tmp_path, capsys, monkeypatch, fsdp, fragment):
    _, source, text = setup
    monkeypatch.setenv("WORLD_SIZE", "2")
    for name, value in fsdp.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert run(main, _train_argv(source, text, tmp_path, "--context-parallel", "2")) == 2
    assert fragment in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is not None, reason="deepspeed is installed here")
def test_a_deepspeed_config_needs_deepspeed(setup, tmp_path, capsys):
    _, source, text = setup
    config = tmp_path / "zero3.json"
    config.write_text('{"zero_optimization": {"stage": 3}}')
    assert run(main, _train_argv(source, text, tmp_path, "--deepspeed", str(config))) == 2
    assert "needs the deepspeed package (pip install deepspeed)" in capsys.readouterr().err


def test_context_parallel_is_handed_to_accelerate(monkeypatch):
    from ctxext.train.launch import parallelism

    monkeypatch.setenv("WORLD_SIZE", "8")
    config = parallelism(4)
    assert (config.cp_size, config.dp_shard_size) == (4, 2)
    assert parallelism(None) is None and parallelism(1) is None


def test_fsdp2_with_the_chunked_loss_trains_to_the_plain_models_weights(tmp_path):
    """torch's FSDP2 runs on CPU with gloo; accelerate's FSDP plugin does not (it makes FSDP only of GPU-kind
    distributed types), so this drives fully_shard directly, with the loss head installed before sharding as
    ``ctxext train`` does: two processes reach the weights one unsharded process reaches with the model's own
    loss."""
    folder = tiny_decoders.save_decoder("llama", tmp_path / "llama")
    worker = str(Path(__file__).with_name("fsdp_worker.py"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    unsharded = [sys.executable, worker, "plain", str(folder), str(tmp_path / "plain.pt")]
    plain = subprocess.run(unsharded, capture_output=True, text=True, env=env)
    assert plain.returncode == 0, plain.stderr[-3000:]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    sharded = subprocess.run(
        [*launcher, worker, "fsdp", str(folder), str(tmp_path / "fsdp.pt")], capture_output=True, text=True, env=env
    )
    assert sharded.returncode == 0, sharded.stderr[-3000:]
    one, two = torch.load(tmp_path / "plain.pt"), torch.load(tmp_path / "fsdp.pt")
    start = load_file(folder / "model.safetensors")
    assert one.keys() == two.keys()
    assert max(float((one[k] - start[k]).abs().max()) for k in start if k in one) > 1e-3
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-6, msg=key)


def _checkpoint(root: Path, processes: int, sharded: str | None) -> Path:
    """A checkpoint laid out as the Trainer writes one from ``processes`` processes: an RNG state per process, and
    for ``sharded`` the files FSDP's sharded state dict or DeepSpeed ZeRO put beside it (names from their savers)."""
    checkpoint = root / "o.checkpoints" / "checkpoint-3"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text('{"global_step": 3}')
    for rank in range(processes):
        (checkpoint / f"rng_state_{rank}.pth").write_bytes(b"")
    if sharded == "fsdp":
        (checkpoint / "pytorch_model_fsdp_0").mkdir()
    if sharded == "zero":
        (checkpoint / "global_step3").mkdir()
        for rank in range(processes):
            (checkpoint / "global_step3" / f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt").write_bytes(b"")
    return checkpoint


@pytest.mark.parametrize(
    "sharded, fragment",
    [
        ("zero", "holds DeepSpeed ZeRO shards of 2 processes; this launch has 1: resume with 2 processes"),
        ("fsdp", "holds FSDP-sharded weights (2 processes): resume under accelerate launch with an FSDP config"),
    ],
)
def test_a_checkpoint_this_launch_cannot_read_is_refused_before_loading(setup, tmp_path, capsys, sharded, fragment):
    _, source, text = setup
    _checkpoint(tmp_path, 2, sharded)
    argv = ["train", str(source), "--to", "128", "--data", str(text), "--resume", "-o", str(tmp_path / "o")]
    assert run(main, argv) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and err.count("\n") == 0


def test_a_plain_checkpoint_from_other_processes_resumes_with_a_warning(tmp_path, caplog, monkeypatch):
    from ctxext.train.checkpoints import check_resumable, writers

    checkpoint = _checkpoint(tmp_path, 2, None)
    assert writers(checkpoint) == 2
    check_resumable(checkpoint, 2, fsdp=False)
    assert not caplog.records
    check_resumable(checkpoint, 4, fsdp=False)
    assert "written by 2 processes, this launch has 4" in caplog.text
    zero = _checkpoint(tmp_path / "zero", 2, "zero")
    check_resumable(zero, 2, fsdp=False)  # as many processes as wrote it: readable
