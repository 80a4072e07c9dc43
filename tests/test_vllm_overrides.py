"""The vllm-overrides output format: a JSON file of vLLM's --max-model-len and --hf-overrides for the unchanged
model. Applied to the source config (as vLLM applies them), the overrides give the same model as the folder ctxext
writes: same rotary frequencies and the same logits beyond the original window; in vLLM itself, the same scores."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers

import tiny
import tiny_decoders
from ctxext import api
from ctxext.errors import CtxextError
from ctxext.runtimes import available, score_external

TARGET = 160
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "emma.txt"


def _patched_config(overrides_file: Path):
    written = json.loads(overrides_file.read_text())
    config = transformers.AutoConfig.from_pretrained(written["model"])
    for key, value in written["hf_overrides"].items():  # vLLM sets dict-valued overrides as attributes
        setattr(config, key, value)
    return written, config


@pytest.mark.parametrize("family", ["llama", "qwen2", "gemma3_text"])
@pytest.mark.parametrize("method", ["yarn", "ntk", "llama3"])
def test_overrides_make_the_model_ctxext_writes(tmp_path, family, method):
    source = tiny_decoders.save_decoder(family, tmp_path / family)
    api.extend(source, tmp_path / "overrides.json", TARGET, method, fmt="vllm-overrides")
    api.extend(source, tmp_path / "folder", TARGET, method)
    written, config = _patched_config(tmp_path / "overrides.json")
    assert written["max_model_len"] == TARGET and set(written["hf_overrides"]) <= {
        "rope_parameters",
        "max_position_embeddings",
        "head_dim",
    }
    assert f"--max-model-len {TARGET}" in written["command"] and "--hf-overrides" in written["command"]
    ids = tiny.input_ids(TARGET, seed=2)
    with torch.inference_mode():
        overridden = transformers.AutoModelForCausalLM.from_pretrained(source, config=config).eval()(ids).logits
        folder = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "folder").eval()(ids).logits
        plain = transformers.AutoModelForCausalLM.from_pretrained(source).eval()(ids).logits
    assert (overridden - folder).abs().max().item() == 0
    assert (overridden - plain).abs().max().item() > 1e-4  # the overrides change the model
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([family, "overrides.json", "folder"])


@pytest.mark.parametrize(
    "options,message",
    [
        ({"method": "dynamic"}, "does not compute 'dynamic'"),
        ({"runtimes": ("vllm",)}, "read by vLLM itself"),
        ({"dtype": "bfloat16"}, "its own dtype"),
        ({"out": "overrides.txt"}, ".json file"),
        ({"fmt": "vllm-overide"}, "did you mean 'vllm-overrides'"),
    ],
)
def test_bad_requests_are_refused_and_write_nothing(tmp_path, options, message):
    source = tiny_decoders.save_decoder("llama", tmp_path / "llama")
    out = tmp_path / options.pop("out", "overrides.json")
    arguments = {"fmt": "vllm-overrides", **options}
    with pytest.raises(CtxextError, match=message):
        api.extend(source, out, TARGET, arguments.pop("method", "yarn"), **arguments)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["llama"]


def test_a_gguf_input_is_refused_in_one_line(tmp_path):
    source = tiny_decoders.save_gguf(tmp_path / "in.gguf")
    ctxext = Path(sys.executable).with_name("ctxext")
    args = [str(ctxext), "extend", str(source), "--to", "8192", "--format", "vllm-overrides", "-o", "o.json"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "--format hf" in done.stderr


@pytest.mark.runtime
def test_vllm_serves_the_overrides_as_it_serves_the_written_folder(small_smollm2_gguf, tmp_path):
    if not available("vllm"):
        pytest.skip("vllm is not installed (scripts/setup-runtimes.sh)")
    from ctxext.conformance import tokens_from_text
    from ctxext.formats.gguf_to_hf import gguf_to_hf_folder

    source = tmp_path / "source"
    gguf_to_hf_folder(small_smollm2_gguf, source, "float32")
    api.extend(source, tmp_path / "overrides.json", 512, "yarn", fmt="vllm-overrides")
    api.extend(source, tmp_path / "folder", 512, "yarn")
    written = json.loads((tmp_path / "overrides.json").read_text())
    tokens = tokens_from_text(small_smollm2_gguf, [str(CORPUS)], 511)
    served = score_external(
        "vllm", source, tokens, 1, hf_overrides=written["hf_overrides"], max_model_len=written["max_model_len"]
    )
    folder = score_external("vllm", tmp_path / "folder", tokens, 1)
    assert served.get("finite") and folder.get("finite"), (served, folder)
    assert served["max_model_len"] == folder["max_model_len"] == 512
    assert served["nll"] == pytest.approx(folder["nll"], rel=1e-6)


def test_a_model_from_the_hub_is_named_by_its_hub_id_and_commit(tmp_path, monkeypatch):
    """What another machine serves: ``acme/tiny-llama`` at the commit read, not this machine's cache path."""
    from huggingface_hub import constants

    from ctxext.cli.main import main, run

    commit = "c" * 40
    repo = tmp_path / "hub" / "models--acme--tiny-llama"
    tiny_decoders.save_decoder("llama", repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    out = tmp_path / "overrides.json"
    assert (
        run(main, ["extend", "acme/tiny-llama", "--to", str(TARGET), "--format", "vllm-overrides", "-o", str(out)]) == 0
    )
    written = json.loads(out.read_text())
    assert (written["model"], written["revision"]) == ("acme/tiny-llama", commit)
    assert written["command"].startswith(f"vllm serve acme/tiny-llama --revision {commit} --max-model-len {TARGET}")
    local = tmp_path / "local"
    tiny_decoders.save_decoder("llama", local)
    api.extend(local, tmp_path / "local.json", TARGET, "yarn", fmt="vllm-overrides")
    assert json.loads((tmp_path / "local.json").read_text())["model"] == str(local.resolve())  # a folder: its path
