"""What a user on GPUs sets reaches the work: --device/--dtype place ``extend --tune``, the read-back of
``--check-runtime`` and ``conform``'s transformers reference; vLLM gets the same dtype, the tensor-parallel size
and the memory share; folders written only for a runtime to read link to the source's weights."""

from __future__ import annotations

import json
import os
import stat

import pytest
import torch

from ctxext import api
from ctxext.cli.main import main, run
from ctxext.eval.backend_vllm import served_folder


@pytest.fixture
def fake_vllm(tmp_path, monkeypatch):
    """An interpreter standing in for vLLM's: it keeps each request it is given and answers a perplexity of e."""
    requests = tmp_path / "requests"
    requests.mkdir()
    script = tmp_path / "python"
    script.write_text(
        "#!/bin/sh\n"
        f'cp "$2" "{requests}/$(date +%s%N).json"\n'
        'echo \'{"nll": 10.0, "count": 10, "finite": true, "seconds": 0.0}\'\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("CTXEXT_VLLM_PYTHON", str(script))
    return lambda: [json.loads(p.read_text()) for p in sorted(requests.iterdir())]


def test_conform_passes_dtype_tensor_parallel_and_memory_share_to_vllm(decoder, book, tmp_path, fake_vllm):
    out = tmp_path / "conform.json"
    argv = ["conform", str(decoder), "--to", "128", "--methods", "yarn", "--data", str(book), "--runtimes", "vllm"]
    argv += ["--dtype", "bf16", "--tensor-parallel", "2", "--gpu-memory-utilization", "0.6", "-o", str(out)]
    assert run(main, argv) == 0
    (request,) = fake_vllm()
    assert (request["dtype"], request["tensor_parallel"], request["gpu_memory_utilization"]) == ("bfloat16", 2, 0.6)


def test_vllm_computes_in_fp32_without_a_gpu_unless_told(decoder, book, tmp_path, fake_vllm):
    """dtype auto resolves here, where transformers' reference runs, not in vLLM (whose auto is the model's own)."""
    argv = ["conform", str(decoder), "--to", "128", "--methods", "yarn", "--data", str(book), "--runtimes", "vllm"]
    assert run(main, [*argv, "-o", str(tmp_path / "c.json")]) == 0
    (request,) = fake_vllm()
    assert request["dtype"] == ("bfloat16" if torch.cuda.is_available() else "float32")
    assert "gpu_memory_utilization" not in request  # vLLM's own default unless asked


def test_check_runtime_reads_back_in_the_dtype_asked(decoder, tmp_path, monkeypatch):
    from ctxext.runtimes import readback

    seen = {}

    def reference(folder, tokens, score_from, place=None):
        seen["place"] = place
        return {"nll": 10.0, "count": 10, "finite": True}

    def runtime(name, folder, tokens, score_from, **engine):
        seen["engine"] = engine
        return {"nll": 10.0, "count": 10, "finite": True}

    monkeypatch.setattr(readback, "score_transformers", reference)
    monkeypatch.setattr(readback, "score_external", runtime)
    argv = ["extend", str(decoder), "--to", "128", "--check-runtime", "vllm", "--dtype", "bf16", "--device", "cpu"]
    assert run(main, [*argv, "--tensor-parallel", "4", "-o", str(tmp_path / "out")]) == 0
    assert seen["place"].dtype == torch.bfloat16 and seen["place"].device == "cpu"
    assert seen["engine"] == {"dtype": "bfloat16", "tensor_parallel": 4}


def test_tune_loads_the_model_where_and_as_asked(decoder, book, tmp_path, monkeypatch):
    """--tune on a 70B model in fp32 on the CPU would take 280 GB of RAM and hours per candidate."""
    import ctxext.loading

    places, load = [], ctxext.loading.load_causal_lm
    monkeypatch.setattr(
        ctxext.loading, "load_causal_lm", lambda path, place=None: places.append(place) or load(path, place)
    )
    argv = ["extend", str(decoder), "--to", "128", "--tune", str(book), "--tune-evals", "3", "--dtype", "bf16"]
    assert run(main, [*argv, "--device", "cpu", "-o", str(tmp_path / "tuned")]) == 0
    assert [(p.device, p.dtype) for p in places] == [("cpu", torch.bfloat16)]


def test_dtype_on_a_folder_without_tune_or_check_runtime_is_refused(decoder, tmp_path, capsys):
    assert run(main, ["extend", str(decoder), "--to", "128", "--dtype", "bf16", "-o", str(tmp_path / "o")]) != 0
    assert "a folder keeps its own dtype" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_folder_written_for_a_runtime_links_the_weights(decoder):
    with served_folder(decoder, "yarn", 128) as folder:
        weights = folder / "model.safetensors"
        assert weights.is_symlink() and weights.resolve() == (decoder / "model.safetensors").resolve()
        assert json.loads((folder / "config.json").read_text())["rope_parameters"]["rope_type"] == "yarn"
        assert not (decoder / "config.json").samefile(folder / "config.json")


def test_a_users_output_holds_its_own_weights(decoder, tmp_path):
    api.extend(decoder, tmp_path / "out", 128, "yarn")
    weights = tmp_path / "out" / "model.safetensors"
    assert not weights.is_symlink() and not os.path.samefile(weights, decoder / "model.safetensors")
