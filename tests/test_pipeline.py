"""The one write path: re-extension of YaRN models, GGUF -> folder dtypes and read-back, staging left by killed
runs, SIGTERM, and outputs that would land inside their input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import tiny_decoders
from ctxext import api
from ctxext.cli.main import main, run
from ctxext.errors import CtxextError
from ctxext.formats.staging import STAGING_MARK, sweep_stale

DEEPSEEK_STYLE = {
    "rope_type": "yarn",
    "factor": 2.0,
    "original_max_position_embeddings": 32,
    "beta_fast": 16.0,
    "beta_slow": 2.0,
    "truncate": False,
    "mscale": 0.707,
    "mscale_all_dim": 1.0,
}


def test_re_extending_yarn_keeps_its_options_and_transformers_reads_them(tmp_path):
    source = tiny_decoders.save_decoder("llama", tmp_path / "src", DEEPSEEK_STYLE)
    report = api.extend(source, tmp_path / "out", 256, "yarn")
    params = json.loads((tmp_path / "out" / "config.json").read_text())["rope_parameters"]
    for key in ("beta_fast", "beta_slow", "truncate", "mscale", "mscale_all_dim"):
        assert params[key] == DEEPSEEK_STYLE[key], key
    assert params["factor"] == 8.0 and params["original_max_position_embeddings"] == 32
    import math

    expected = (0.1 * 0.707 * math.log(8) + 1) / (0.1 * 1.0 * math.log(8) + 1)
    assert params["attention_factor"] == pytest.approx(expected)
    assert any("reads back the same frequencies" in note for note in report.notes)


def test_a_yarn_attention_factor_with_no_rule_is_refused(tmp_path):
    source = tiny_decoders.save_decoder("llama", tmp_path / "src", {**DEEPSEEK_STYLE, "attention_factor": 1.5})
    with pytest.raises(CtxextError, match="attention_factor 1.5"):
        api.extend(source, tmp_path / "out", 256, "yarn")
    assert not (tmp_path / "out").exists()


@pytest.fixture
def small_gguf(small_smollm2_gguf):
    return small_smollm2_gguf


@pytest.mark.parametrize("dtype,expected", [("bfloat16", torch.bfloat16), ("float16", torch.float16)])
def test_gguf_to_folder_in_the_dtype_asked(small_gguf, tmp_path, dtype, expected):
    from safetensors import safe_open

    assert (
        run(
            main,
            ["extend", str(small_gguf), "--to", "512", "--format", "hf", "--dtype", dtype, "-o", str(tmp_path / "out")],
        )
        == 0
    )
    with safe_open(str(tmp_path / "out" / "model.safetensors"), "pt") as handle:
        assert {handle.get_tensor(key).dtype for key in handle.keys()} == {expected}


def test_gguf_to_folder_fails_on_a_bad_read_back_and_leaves_nothing(small_gguf, tmp_path, monkeypatch):
    import ctxext.extend.decoder_folder

    monkeypatch.setattr(
        ctxext.extend.decoder_folder,
        "transformers_readback",
        lambda folder, plan: {"max_relative_error": 0.5, "attention_factor": 1.0, "ours": 1.0},
    )
    with pytest.raises(CtxextError, match="different frequencies"):
        api.extend(small_gguf, tmp_path / "out", 512, "yarn", fmt="hf")
    assert os.listdir(tmp_path) == []


def test_output_inside_the_input_is_refused(tmp_path, capsys):
    source = tiny_decoders.save_decoder("llama", tmp_path / "src")
    assert run(main, ["extend", str(source), "--to", "128", "-o", str(source / "inside")]) == 2
    assert "inside the input" in capsys.readouterr().err
    assert not (source / "inside").exists()


def test_staging_of_a_dead_process_is_swept_and_a_live_one_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".out{STAGING_MARK}{dead.stdout.strip()}-abc123"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"x" * 100)
    alive = tmp_path / f".other{STAGING_MARK}{os.getppid()}-def456"
    alive.mkdir()
    assert sweep_stale(tmp_path) == [stale]
    assert not stale.exists() and alive.exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_extend_leaves_no_output_and_no_staging_after_the_next_run(tmp_path, sig):
    """The extend is killed while the read-back loads the model; SIGTERM cleans up itself, SIGKILL's
    staging is swept by the next run in the same folder."""
    source = tiny_decoders.save_decoder("llama", tmp_path / "src")
    ctxext = os.path.join(os.path.dirname(sys.executable), "ctxext")
    out = tmp_path / "out"
    process = subprocess.Popen(
        [ctxext, "extend", str(source), "--to", "128", "-o", str(out)], stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 60
    while not list(tmp_path.glob(f".out{STAGING_MARK}*/config.json")) and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(sig)
    process.wait(timeout=60)
    assert not out.exists()
    if sig == signal.SIGTERM:
        assert process.returncode == 143 and "terminated" in process.stderr.read()
        assert not list(tmp_path.glob(f".*{STAGING_MARK}*"))
    assert run(main, ["extend", str(source), "--to", "128", "-o", str(tmp_path / "next")]) == 0
    assert not list(tmp_path.glob(f".*{STAGING_MARK}*"))
