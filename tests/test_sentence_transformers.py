"""Sentence-Transformers folders: lengths written where every reader looks, drop-in commands, drift."""

import json
import re

import pytest
import torch

import tiny
from ctxext.cli.main import main, run
from ctxext.cli.seed import generic_main, linear_main, spline_main
from ctxext.encoders.embed import Embedder
from ctxext.extend.encoder_folder import drift_by_method, extend_encoder
from ctxext.formats.hf_folder import open_model_folder


@pytest.fixture(scope="module")
def st_model(tmp_path_factory):
    return tiny.save_sentence_transformer(tmp_path_factory.mktemp("st") / "model", window=32)


def test_lengths_are_written_for_every_reader(st_model, tmp_path):
    plan, result = extend_encoder(st_model, tmp_path / "out", 200, "cubic", texts=[tiny.words(10)])
    out = tmp_path / "out"
    assert json.loads((out / "config.json").read_text())["max_position_embeddings"] == 200
    assert json.loads((out / "sentence_bert_config.json").read_text())["max_seq_length"] == 200
    assert json.loads((out / "tokenizer_config.json").read_text())["model_max_length"] == 200
    provenance = json.loads((out / "ctxext.json").read_text())
    assert provenance["plan"]["method"] == "cubic" and provenance["plan"]["target"] == 200
    assert "transformers" in provenance["versions"]
    assert "Context extension" in (out / "README.md").read_text()
    assert result.long_input_ok and result.long_input_tokens > 64
    assert (out / "modules.json").read_text() == (st_model / "modules.json").read_text()


def test_keep_first_auto_keeps_short_inputs_exact_and_reads_long_ones(st_model, tmp_path):
    plan, result = extend_encoder(
        st_model,
        tmp_path / "keep",
        200,
        "cubic",
        keep_first="auto",
        texts=[tiny.words(n, seed=n) for n in range(3, 29)],
    )
    assert plan.keep_first == 32 == plan.trained_window
    assert result.short_text_drift["min_cosine"] >= 0.999999
    texts = [tiny.words(20), tiny.words(180, seed=1)]
    reloaded = tiny.reload_in_fresh_process(
        [{"folder": str(tmp_path / "keep"), "sentence": True, "texts": texts}], tmp_path
    )
    assert not reloaded["ctxext_loaded"]
    assert reloaded["results"][0]["max_seq_length"] == 200
    original = Embedder(st_model).encode(texts[:1])
    # Batched beside a long text, the short one is padded: equal up to float reordering, not bit for bit.
    torch.testing.assert_close(reloaded["results"][0]["output"][0].cpu(), original[0], rtol=0, atol=1e-5)


def test_drift_is_exactly_zero_only_for_the_keep_variant(st_model):
    texts = [tiny.words(n, seed=n) for n in range(3, 29)]
    results = drift_by_method(
        open_model_folder(st_model), 200, [{"method": "cubic"}, {"method": "cubic", "keep_first": "auto"}], texts
    )
    assert results["cubic keep<32"]["min_cosine"] >= 0.999999
    assert results["cubic"]["mean_cosine"] < 0.9999


def test_drift_by_method_restores_the_model(st_model):
    embedder = Embedder(st_model)
    before = embedder.encode([tiny.words(12)])
    from ctxext.encoders.table_apply import extended_in_memory
    from ctxext.encoders.table_plan import plan_table

    with extended_in_memory(embedder.model, plan_table(open_model_folder(st_model), 200, "linear")):
        changed = embedder.encode([tiny.words(12)])
    assert not torch.equal(changed, before)
    assert torch.equal(embedder.encode([tiny.words(12)]), before)


def test_seed_commands_as_drop_ins(st_model, tmp_path, capsys):
    assert (
        run(
            spline_main,
            [
                "--model_name_or_path",
                str(st_model),
                "--max_seq_length",
                "150",
                "--output_dir",
                str(tmp_path / "spline"),
            ],
        )
        == 0
    )
    assert run(linear_main, ["--model_name_or_path", str(st_model), "--output_dir", str(tmp_path / "double")]) == 0
    assert (
        run(
            generic_main,
            [
                "--model_name_or_path",
                str(st_model),
                "--max_seq_length",
                "150",
                "--interpolation_type",
                "quadratic",
                "--output_dir",
                str(tmp_path / "quad"),
            ],
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "64 -> 150 positions (cubic" in printed and "64 -> 128 positions (double" in printed
    assert "(quadratic" in printed
    for name, rows in (("spline", 150), ("double", 128), ("quad", 150)):
        assert json.loads((tmp_path / name / "config.json").read_text())["max_position_embeddings"] == rows


def test_cli_inspect_shows_table_window_and_drift(st_model, capsys):
    assert run(main, ["inspect", str(st_model)]) == 0
    shown = capsys.readouterr().out
    assert "embeddings.position_embeddings.weight  (64 x 32, float32)" in shown
    assert re.search(r"trained window +32\n", shown)
    assert run(main, ["inspect", str(st_model), "--to", "256", "--methods", "linear,pchip"]) == 0
    shown = capsys.readouterr().out
    assert "| linear |" in shown and "| pchip |" in shown and "| cubic keep<32 | 64 | 1.0000 | 1.0000 | 100% |" in shown
