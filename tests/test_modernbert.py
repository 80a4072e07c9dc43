"""ModernBERT, a RoPE encoder whose global layers (base 160,000) and sliding-window layers (base 10,000) rotate
differently: ctxext scales the global layers only, and the folder loads in plain transformers and
sentence-transformers (ctxext blocked) with the same outputs as the model scaled in memory."""

import json

import pytest
import torch
import transformers

import tiny
from ctxext import api
from ctxext.decoders.rope_in_memory import apply_rope_in_memory
from ctxext.decoders.rope_plan import plan_rope
from ctxext.formats.hf_folder import open_model_folder
from ctxext.methods.rope import default_inv_freq, ntk_base, scaled_inv_freq

WINDOW, TARGET, GLOBAL_BASE, LOCAL_BASE = 64, 256, 160000.0, 10000.0


def save_modernbert(folder, legacy=False):
    """A tiny ModernBERT Sentence-Transformers folder; ``legacy``: config.json spelled as on the hub (global_rope_theta
    and local_rope_theta, no rope_parameters)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers import models as st_models

    config = transformers.ModernBertConfig(
        vocab_size=tiny.VOCAB,
        hidden_size=64,
        num_attention_heads=4,
        num_hidden_layers=3,
        intermediate_size=96,
        max_position_embeddings=WINDOW,
        global_attn_every_n_layers=3,
        local_attention=16,
        global_rope_theta=GLOBAL_BASE,
        local_rope_theta=LOCAL_BASE,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        cls_token_id=0,
        sep_token_id=2,
    )
    torch.manual_seed(0)
    raw = folder.with_name(folder.name + "-raw")
    transformers.ModernBertModel(config).save_pretrained(raw)
    tiny.tokenizer(WINDOW).save_pretrained(raw)
    if legacy:
        written = json.loads((raw / "config.json").read_text())
        written.pop("rope_parameters")
        written.update(global_rope_theta=GLOBAL_BASE, local_rope_theta=LOCAL_BASE)
        (raw / "config.json").write_text(json.dumps(written))
    transformer = st_models.Transformer(str(raw), max_seq_length=WINDOW)
    pooling = st_models.Pooling(transformer.get_embedding_dimension(), "mean")
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(folder))
    return folder


@pytest.fixture(scope="module", params=[False, True], ids=["v5-config", "hub-config"])
def extended(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("modernbert")
    source = save_modernbert(root / "source", legacy=request.param)
    cases = {}
    for method in ("yarn", "ntk"):
        out = root / method
        api.extend(source, out, TARGET, method)
        cases[method] = out
    return source, cases


def _rotary(folder):
    config = transformers.AutoConfig.from_pretrained(folder)
    return config, transformers.models.modernbert.modeling_modernbert.ModernBertRotaryEmbedding(config)


@pytest.mark.parametrize("method", ["yarn", "ntk"])
def test_only_the_global_layers_are_scaled(extended, method):
    _, cases = extended
    config, rotary = _rotary(cases[method])
    factor = TARGET / WINDOW
    expected, attention = scaled_inv_freq(method, 16, GLOBAL_BASE, WINDOW, factor)
    torch.testing.assert_close(rotary.full_attention_inv_freq.double(), expected, rtol=1e-6, atol=0)
    assert rotary.full_attention_attention_scaling == pytest.approx(attention)
    torch.testing.assert_close(
        rotary.sliding_attention_inv_freq.double(), default_inv_freq(16, LOCAL_BASE), rtol=1e-6, atol=0
    )
    assert rotary.sliding_attention_attention_scaling == 1.0
    assert config.layer_types == ["full_attention", "sliding_attention", "sliding_attention"]
    written = json.loads((cases[method] / "config.json").read_text())
    assert "rope_scaling" not in written  # ModernBertConfig would apply it to the sliding layers too
    assert written["global_rope_theta"] == pytest.approx(
        ntk_base(16, GLOBAL_BASE, factor) if method == "ntk" else GLOBAL_BASE
    )
    assert written["max_position_embeddings"] == TARGET


def test_sentence_transformers_reads_the_new_length(extended):
    _, cases = extended
    for out in cases.values():
        assert json.loads((out / "sentence_bert_config.json").read_text())["max_seq_length"] == TARGET
        assert json.loads((out / "tokenizer_config.json").read_text())["model_max_length"] == TARGET


def test_plain_libraries_reload_it_with_the_outputs_of_the_model_scaled_in_memory(extended, tmp_path):
    source, cases = extended
    ids = tiny.input_ids(200, seed=4)
    text = tiny.words(150, seed=5)
    jobs, expected = [], []
    for method, out in cases.items():
        model = transformers.AutoModel.from_pretrained(source).eval()
        apply_rope_in_memory(model, plan_rope(open_model_folder(source).config, str(source), TARGET, method))
        with torch.inference_mode():
            expected.append(model(input_ids=ids).last_hidden_state)
        jobs += [{"folder": str(out), "ids": ids}, {"folder": str(out), "sentence": True, "texts": [text]}]
    reloaded = tiny.reload_in_fresh_process(jobs, tmp_path)
    assert not reloaded["ctxext_loaded"]
    for word in ("unexpected", "missing", "newly initialized", "warning"):
        assert word not in reloaded["messages"].lower(), reloaded["messages"]
    for index, want in enumerate(expected):
        hidden, sentence = reloaded["results"][2 * index], reloaded["results"][2 * index + 1]
        assert (hidden["output"] - want).abs().max().item() <= 1e-5
        assert sentence["max_seq_length"] == TARGET and torch.isfinite(sentence["output"]).all()


def test_in_memory_scaling_changes_the_global_layers_only(extended):
    source, _ = extended
    model = transformers.AutoModel.from_pretrained(source).eval()
    sliding = model.rotary_emb.sliding_attention_inv_freq.clone()
    apply_rope_in_memory(model, plan_rope(open_model_folder(source).config, str(source), TARGET, "linear"))
    rotary = model.rotary_emb  # rebuilt from the new config
    torch.testing.assert_close(rotary.sliding_attention_inv_freq, sliding, rtol=0, atol=0)
    expected = default_inv_freq(16, GLOBAL_BASE) / 4
    torch.testing.assert_close(rotary.full_attention_inv_freq.double(), expected, rtol=1e-6, atol=0)


def test_inspect_leaves_out_the_decoders_run_time_attention(tmp_path, capsys):
    from ctxext.cli.main import main, run

    folder = save_modernbert(tmp_path / "mb")
    assert run(main, ["inspect", str(folder), "--to", str(4 * WINDOW)]) == 0
    printed = capsys.readouterr().out
    assert "yarn" in printed and "run-time attention" not in printed
