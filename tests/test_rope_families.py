"""Decoder family x method matrix: written folders reload in plain transformers (ctxext blocked) with no
warning and give the same logits, beyond the original window, as the model extended in memory."""

import json

import pytest
import torch
import transformers

import tiny
import tiny_decoders
from ctxext import api
from ctxext.decoders.rope_in_memory import apply_rope_in_memory, rotary_modules
from ctxext.decoders.rope_plan import plan_rope
from ctxext.errors import CtxextError
from ctxext.formats.hf_folder import open_model_folder
from ctxext.methods.rope import ROPE_REGISTRY

METHODS = list(ROPE_REGISTRY)
TARGET = 160


@pytest.fixture(scope="session")
def decoder_matrix(tmp_path_factory):
    root = tmp_path_factory.mktemp("decoders")
    cases, jobs = [], []
    ids = tiny.input_ids(TARGET, seed=3)
    for family in tiny_decoders.DECODERS:
        source = tiny_decoders.save_decoder(family, root / family)
        for method in METHODS:
            out = root / f"{family}-{method}"
            api.extend(source, out, TARGET, method)
            plan = plan_rope(open_model_folder(source).config, str(source), TARGET, method)
            model = transformers.AutoModelForCausalLM.from_pretrained(source).eval()
            apply_rope_in_memory(model, plan)
            with torch.inference_mode():
                expected = model(input_ids=ids).logits
            cases.append((family, method, plan, out, expected))
            jobs.append({"folder": str(out), "ids": ids})
    return cases, tiny.reload_in_fresh_process(jobs, root)


def test_fresh_process_saw_no_warning(decoder_matrix):
    _, reloaded = decoder_matrix
    assert not reloaded["ctxext_loaded"]
    for word in ("unexpected", "missing", "newly initialized", "does not match", "warning"):
        assert word not in reloaded["messages"].lower(), reloaded["messages"]


@pytest.mark.parametrize("index", range(len(tiny_decoders.DECODERS) * len(METHODS)))
def test_reloaded_logits_equal_in_memory_beyond_the_original_window(decoder_matrix, index):
    cases, reloaded = decoder_matrix
    family, method, plan, out, expected = cases[index]
    got = reloaded["results"][index]["output"]
    assert got.shape[1] == TARGET > tiny_decoders.CONTEXT
    assert torch.isfinite(got).all()
    assert (got - expected).abs().max().item() <= 1e-6, (family, method)


@pytest.mark.parametrize("family", list(tiny_decoders.DECODERS))
def test_config_carries_both_spellings_identically(decoder_matrix, family):
    cases, _ = decoder_matrix
    for case_family, method, plan, out, _ in cases:
        if case_family != family:
            continue
        config = json.loads((out / "config.json").read_text())
        params = config["rope_parameters"].get("full_attention", config["rope_parameters"])
        assert params == config["rope_scaling"]
        assert config["rope_theta"] == params["rope_theta"] == plan.rope_theta
        assert config["max_position_embeddings"] == (tiny_decoders.CONTEXT if method == "dynamic" else TARGET)
        assert plan.facts.dim == tiny_decoders.ROTARY_DIM[family]
        assert json.loads((out / "tokenizer_config.json").read_text())["model_max_length"] == TARGET


def test_weights_are_untouched(decoder_matrix):
    cases, _ = decoder_matrix
    family, _, _, out, _ = cases[0]
    source = out.parent / family
    assert (out / "model.safetensors").read_bytes() == (source / "model.safetensors").read_bytes()


def test_gemma3_sliding_layers_keep_their_frequencies(decoder_matrix):
    cases, _ = decoder_matrix
    out = next(case[3] for case in cases if case[:2] == ("gemma3_text", "yarn"))
    model = transformers.AutoModelForCausalLM.from_pretrained(out)
    ((_, _, rotary),) = rotary_modules(model)
    from ctxext.methods.rope import default_inv_freq

    torch.testing.assert_close(rotary.sliding_attention_inv_freq.double(), default_inv_freq(16, 1e4), rtol=1e-6, atol=0)
    assert rotary.full_attention_attention_scaling == pytest.approx(0.1 * torch.log(torch.tensor(2.5)).item() + 1)


def test_existing_scaling_is_replaced_from_the_true_original(tmp_path):
    rope = {"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 32}
    source = tiny_decoders.save_decoder("llama", tmp_path / "scaled", rope=rope)
    plan = plan_rope(open_model_folder(source).config, str(source), 256, "yarn")
    assert plan.original == 32 and plan.factor == 8.0  # not 2 x (256 / 64)


def test_existing_scaling_without_its_original_is_refused_unless_given(tmp_path):
    source = tiny_decoders.save_decoder("llama", tmp_path / "linear", rope={"rope_type": "linear", "factor": 2.0})
    config = open_model_folder(source).config
    with pytest.raises(CtxextError, match="--original"):
        plan_rope(config, str(source), 256, "yarn")
    assert plan_rope(config, str(source), 256, "yarn", original=32).factor == 8.0


def test_existing_dynamic_scaling_grows_from_max_position_embeddings(tmp_path):
    source = tiny_decoders.save_decoder("llama", tmp_path / "dyn", rope={"rope_type": "dynamic", "factor": 2.0})
    plan = plan_rope(open_model_folder(source).config, str(source), 256, "yarn")
    assert plan.original == tiny_decoders.CONTEXT and plan.factor == 256 / tiny_decoders.CONTEXT


def test_a_target_the_scaled_model_already_handles_is_refused_unless_rederived(tmp_path, capsys):
    """YaRN x8 from 8 tokens: the folder handles its 64-token window now; a shorter target would shrink it."""
    from ctxext.cli.main import main, run

    rope = {"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 8}
    source = tiny_decoders.save_decoder("llama", tmp_path / "scaled", rope=rope)
    capsys.readouterr()  # the save's progress bar
    for to in ("32", "64"):
        assert run(main, ["extend", str(source), "--to", to, "-o", str(tmp_path / f"o{to}")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "already handles 64 tokens (yarn x8 from 8)" in err[0]
        assert not (tmp_path / f"o{to}").exists()
    for asked in ([], ["--to", "128"]):  # with a target too, beside each method's table
        assert run(main, ["inspect", str(source), *asked]) == 0
        assert "handles now       64 tokens (trained at 8, then scaled)" in capsys.readouterr().out
    assert run(main, ["extend", str(source), "--to", "128", "-o", str(tmp_path / "longer")]) == 0
    assert json.loads((tmp_path / "longer" / "config.json").read_text())["rope_parameters"]["factor"] == 16.0
    assert run(main, ["extend", str(source), "--to", "32", "--rederive", "-o", str(tmp_path / "re")]) == 0
    assert json.loads((tmp_path / "re" / "config.json").read_text())["rope_parameters"]["factor"] == 4.0


def test_scaling_added_as_a_model_card_says_counts_although_max_position_embeddings_was_left(tmp_path, capsys):
    """Qwen2.5's card adds YaRN x4 from 32,768 and leaves max_position_embeddings at 32,768: the model handles
    131,072 tokens (vLLM serves that many), so a 65,536 target would shrink it. Here: x4 from 64."""
    from ctxext.cli.main import main, run

    rope = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": tiny_decoders.CONTEXT}
    source = tiny_decoders.save_decoder("qwen2", tmp_path / "card", rope=rope)
    assert json.loads((source / "config.json").read_text())["max_position_embeddings"] == tiny_decoders.CONTEXT
    capsys.readouterr()
    assert run(main, ["extend", str(source), "--to", "128", "-o", str(tmp_path / "o")]) == 2
    assert "already handles 256 tokens (yarn x4 from 64)" in capsys.readouterr().err
    assert run(main, ["inspect", str(source)]) == 0
    assert "handles now       256 tokens (trained at 64, then scaled)" in capsys.readouterr().out
    assert run(main, ["extend", str(source), "--to", "512", "-o", str(tmp_path / "longer")]) == 0
    assert json.loads((tmp_path / "longer" / "config.json").read_text())["rope_parameters"]["factor"] == 8.0


def test_critical_base_folder_carries_the_raised_base_transformers_uses(tmp_path):
    from ctxext.methods.rope import default_inv_freq
    from ctxext.methods.rope.critical_base import critical_base

    source = tiny_decoders.save_decoder("llama", tmp_path / "llama")
    config = json.loads((source / "config.json").read_text())
    (source / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 2048}))
    api.extend(source, tmp_path / "out", 8192, "critical-base")
    written = json.loads((tmp_path / "out" / "config.json").read_text())
    beta = critical_base(16, config.get("rope_theta", 1e4), 2048, 8192)
    assert written["rope_theta"] == pytest.approx(beta) and beta > 1e4
    assert written["rope_parameters"]["rope_type"] == "default"
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    (_, _, rotary), *_ = rotary_modules(model)
    torch.testing.assert_close(rotary.inv_freq.double(), default_inv_freq(16, beta), rtol=1e-6, atol=0)
