"""ctxext train on a tiny Llama: loss falls on a repeated batch, the output reloads in plain transformers,
LoRA merges into a plain model, and a resumed run continues from the saved step."""

import json
import re

import pytest
import torch
import transformers

import tiny
import tiny_decoders
from ctxext.cli.main import main, run
from ctxext.train.trainer import SkippedPositions, train


@pytest.fixture(scope="module")
def setup(tiny_training):
    return tiny_training


def test_loss_falls_and_the_output_reloads_with_the_new_length(setup, tmp_path):
    _, source, text = setup
    result = train(source, tmp_path / "out", 128, [str(text)], method="linear", max_steps=12, learning_rate=1e-3)
    losses = [row["loss"] for row in result["history"]]
    assert result["steps"] == 12 and losses[-1] < losses[0] - 0.3
    assert result["tokens_per_second"] > 0 and result["peak_gpu_bytes"] is None  # no CUDA here
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["max_position_embeddings"] == 128 and config["rope_scaling"]["rope_type"] == "linear"
    assert config["rope_parameters"] == config["rope_scaling"]
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    original = transformers.AutoModelForCausalLM.from_pretrained(source)
    assert not torch.equal(model.lm_head.weight, original.lm_head.weight)
    assert model.model.rotary_emb.inv_freq[0] == pytest.approx(0.5)  # PI x2 on the highest frequency


def test_lora_merges_into_a_plain_model(setup, tmp_path):
    _, source, text = setup
    result = train(source, tmp_path / "lora", 128, [str(text)], max_steps=6, learning_rate=1e-3, lora=True)
    assert result["history"][-1]["loss"] < result["history"][0]["loss"]
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "lora")
    assert type(model).__name__ == "LlamaForCausalLM"
    assert not any("lora" in name or "modules_to_save" in name for name, _ in model.named_modules())
    with pytest.raises(OSError):
        transformers.AutoConfig.from_pretrained(tmp_path / "lora" / "adapter_config.json")


def test_resume_continues_from_the_saved_step(setup, tmp_path):
    _, source, text = setup
    out = tmp_path / "resumed"
    first = train(source, out, 128, [str(text)], max_steps=4, learning_rate=1e-3, save_steps=4)
    assert first["steps"] == 4
    # learning_rate 0 here: only weights restored from the checkpoint can start below the initial loss
    second = train(
        source, out, 128, [str(text)], max_steps=8, learning_rate=0.0, save_steps=4, resume=True, overwrite=True
    )
    assert second["steps"] == 8 and second["resumed_from"] == 4
    steps = [row["step"] for row in second["history"]]  # the log history travels with the checkpoint
    assert steps == sorted(set(steps)) and steps[-1] == 8
    step5 = next(row["loss"] for row in second["history"] if row["step"] == 5)
    assert step5 < first["history"][0]["loss"] - 0.2


def test_train_bad_inputs_are_one_line(setup, tmp_path, capsys):
    root, source, text = setup
    short = root / "short.txt"
    short.write_text("w1 w2")
    assert run(main, ["train", str(source), "--to", "128", "--data", str(short), "-o", str(tmp_path / "o")]) == 2
    assert "fewer than one sequence" in capsys.readouterr().err
    assert (
        run(main, ["train", str(source), "--to", "128", "--data", str(text), "--resume", "-o", str(tmp_path / "r")])
        == 2
    )
    assert "found no complete checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "r").exists()


def test_skipped_positions_cover_the_window_with_contiguous_chunks(setup):
    _, source, text = setup
    tokenizer = transformers.AutoTokenizer.from_pretrained(source)
    data = SkippedPositions(tokenizer, text.read_text(), 32, 128, seed=3)
    spans = []
    for index in range(len(data)):
        item = data[index]
        positions = item["position_ids"]
        steps = torch.diff(positions)
        assert positions[0] == 0 and positions[-1] <= 127 and (steps >= 1).all()
        assert (steps != 1).sum() <= 1  # two contiguous chunks
        assert torch.equal(item["input_ids"], item["labels"]) and item["attention_mask"].all()
        assert torch.equal(positions, data[index]["position_ids"])  # same draw again: resume sees the same
        spans.append(int(positions[-1]))
    assert max(spans) > 100 and min(spans) < 64  # distances well beyond the 32 tokens trained at a time


def test_the_second_chunk_attends_to_the_first(setup):
    _, source, text = setup
    tokenizer = transformers.AutoTokenizer.from_pretrained(source)
    item = SkippedPositions(tokenizer, text.read_text(), 32, 128)[0]
    cut = int(torch.nonzero(torch.diff(item["position_ids"]) != 1)[0]) + 1
    model = transformers.AutoModelForCausalLM.from_pretrained(source).eval()
    changed = item["input_ids"].clone()
    changed[: cut - 1] = (changed[: cut - 1] + 1) % model.config.vocab_size
    batch = {key: value[None] for key, value in item.items() if key != "labels"}
    batch["use_cache"] = False  # as in training: with a cache transformers never reads position jumps as packing
    with torch.no_grad():
        before = model(**batch).logits[0, cut:]
        after = model(**{**batch, "input_ids": changed[None]}).logits[0, cut:]
    assert (before - after).abs().max() > 1e-3


def test_training_with_skipped_positions_learns_and_writes_the_new_length(setup, tmp_path, capsys):
    _, source, text = setup
    args = ["train", str(source), "--to", "128", "--train-length", "32", "--data", str(text)]
    assert run(main, [*args, "--max-steps", "8", "--learning-rate", "1e-3", "-o", str(tmp_path / "pose")]) == 0
    first, last = re.search(r"loss ([0-9.]+) -> ([0-9.]+)", capsys.readouterr().out).groups()
    assert float(last) < float(first) - 0.3
    config = json.loads((tmp_path / "pose" / "config.json").read_text())
    assert config["max_position_embeddings"] == 128 and config["rope_scaling"]["rope_type"] == "yarn"  # default
    assert run(main, [*args[:4], "--train-length", "128", "--data", str(text), "-o", str(tmp_path / "b")]) == 2
    assert "--train-length must be at least 2 and shorter than --to (128); got 128" in capsys.readouterr().err
    xpos = ["--xpos", "--batch-size", "2", "-o", str(tmp_path / "x")]
    assert run(main, [*args, *xpos]) == 2
    assert "use --batch-size 1" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert not (tmp_path / "b").exists()


def test_xpos_without_decay_is_plain_rope():
    from ctxext.decoders.xpos import XPos

    model = tiny_decoders_model()
    ids = tiny.input_ids(60)
    with torch.inference_mode():
        plain = model(input_ids=ids).logits
        hooks = XPos(model, decay=False)
        same = model(input_ids=ids).logits
        hooks.remove()
        hooks = XPos(model)
        decayed = model(input_ids=ids).logits
    assert torch.equal(plain, same) and not torch.allclose(plain, decayed, atol=1e-6)


def test_xpos_with_a_cache_equals_the_full_forward():
    from ctxext.decoders.xpos import XPos

    model = tiny_decoders_model()
    XPos(model)
    ids = tiny.input_ids(50)
    with torch.inference_mode():
        full = model(input_ids=ids).logits[0, -1]
        out = model(input_ids=ids[:, :40], use_cache=True)
        for t in range(40, 50):
            out = model(input_ids=ids[:, t : t + 1], past_key_values=out.past_key_values, use_cache=True)
    torch.testing.assert_close(out.logits[0, -1], full, rtol=0, atol=1e-5)


def test_xpos_training_is_saved_so_only_ctxext_reloads_it(setup, tmp_path):
    from ctxext.decoders.xpos import load_xpos_model

    _, source, text = setup
    out = tmp_path / "xpos"
    train(source, out, 64, [str(text)], max_steps=3, learning_rate=1e-3, xpos=True)
    with pytest.raises((ValueError, KeyError), match="ctxext_xpos_llama"):
        transformers.AutoModelForCausalLM.from_pretrained(out)  # a plain loader stops, it does not run plain RoPE
    model, hooks = load_xpos_model(out)
    ids = tiny.input_ids(60)
    with torch.inference_mode():
        with_xpos = model(input_ids=ids).logits
        hooks.remove()
        without = model(input_ids=ids).logits
    assert not torch.allclose(with_xpos, without, atol=1e-6)
    assert "xpos" in json.loads((out / "config.json").read_text())


def tiny_decoders_model():
    import tempfile
    from pathlib import Path

    folder = tiny_decoders.save_decoder("llama", Path(tempfile.mkdtemp()) / "m")
    return transformers.AutoModelForCausalLM.from_pretrained(folder).eval()


def test_xpos_follows_the_paper_with_centred_positions():
    """Score factor of pair k between query m and key n is zeta_k^((m - n) / gamma), zeta_k = (2k/d + 0.4)/1.4;
    positions are centred on half the window, which changes no score and halves the largest exponent."""
    from ctxext.decoders.xpos import XPos, xpos_scale

    dim, gamma = 16, 512.0
    zeta = (torch.arange(0, dim, 2, dtype=torch.float64) / dim + 0.4) / 1.4
    for m, n, centre in ((40, 3, 0), (40, 3, 32), (63, 0, 32)):
        q = xpos_scale(dim, torch.tensor([m - centre]), gamma).double()
        k = xpos_scale(dim, -torch.tensor([n - centre]), gamma).double()
        torch.testing.assert_close((q * k)[0, : dim // 2], zeta ** ((m - n) / gamma), rtol=1e-6, atol=0)
    model = tiny_decoders_model()
    ids = tiny.input_ids(60)
    with torch.inference_mode():
        hooks = XPos(model)
        assert hooks.centre == model.config.max_position_embeddings // 2
        centred = model(input_ids=ids).logits
        hooks.centre = 0
        uncentred = model(input_ids=ids).logits
        hooks.remove()
    torch.testing.assert_close(centred, uncentred, rtol=0, atol=1e-5)
    window = model.config.max_position_embeddings
    largest_centred = xpos_scale(dim, torch.tensor([-(window // 2)]), gamma).max()
    largest_uncentred = xpos_scale(dim, torch.tensor([-(window - 1)]), gamma).max()
    assert largest_centred.log() < 0.51 * largest_uncentred.log()


def test_gradient_checkpointing_is_on_by_default_from_8k_tokens_a_sequence(setup, tmp_path, monkeypatch):
    from ctxext.train import trainer

    assert trainer.checkpointing(None, 8192) and not trainer.checkpointing(None, 8191)
    assert trainer.checkpointing(False, 16384) is False and trainer.checkpointing(True, 128) is True
    seen = []
    monkeypatch.setattr(trainer, "CHECKPOINTING_FROM", 128)
    original = trainer._arguments
    monkeypatch.setattr(trainer, "_arguments", lambda **s: seen.append(s["activation_checkpointing"]) or original(**s))
    _, source, text = setup
    train(source, tmp_path / "a", 128, [str(text)], max_steps=1)
    train(source, tmp_path / "b", 128, [str(text)], max_steps=1, gradient_checkpointing=False)
    assert seen == [True, False]
