"""What ctxext writes, scored on the same tokens in the runtimes users serve it with: transformers, vLLM (CPU
build) and llama.cpp (llama-cpp-python), each in its own environment (scripts/setup-runtimes.sh).

The model is a float32 cut of the real SmolLM2-135M (two layers, context 256), extended to 512. The runtime
agrees when its perplexity is within 0.05% of transformers on the written folder; every method is also at
least 0.2% from every other, so a runtime that read the file as another method would fail.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from ctxext import api
from ctxext.conformance import conform, tokens_from_text
from ctxext.errors import CtxextError
from ctxext.runtimes import RUNTIMES, available, score_external
from ctxext.runtimes.scoring import score_transformers

FP32 = {"dtype": "float32"}  # vLLM's "auto" did not compute this float32 folder in float32 here (0.4% apart)
AGREE = 5e-4
APART = 2e-3
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "emma.txt"


def _need(runtime: str) -> None:
    if not available(runtime):
        message = f"{runtime} is not installed (scripts/setup-runtimes.sh)"
        if os.environ.get("CTXEXT_REQUIRE_RUNTIMES"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def small(small_smollm2_gguf, tmp_path_factory):
    gguf = small_smollm2_gguf
    root = tmp_path_factory.mktemp("runtimes")
    return {"gguf": gguf, "root": root, "tokens": tokens_from_text(gguf, [str(CORPUS)], 511)}


def _by_method(rows, runtime):
    return {row["method"]: row for row in rows if row["runtime"] == runtime}


def _assert_conforms(rows, runtime, methods):
    reference, runtime_rows = _by_method(rows, "transformers"), _by_method(rows, runtime)
    for method in methods:
        got = runtime_rows[method]
        assert got.get("finite") and "error" not in got, got
        assert abs(got["vs_transformers"]) < AGREE, (method, got)
        for other in methods:
            if other != method:  # the tolerance tells methods apart
                assert abs(got["ppl"] / reference[other]["ppl"] - 1) > APART, (method, other)


@pytest.mark.runtime
def test_llama_cpp_computes_what_transformers_computes_for_every_gguf_method(small):
    _need("llama.cpp")
    methods = ["none", "yarn", "linear", "ntk", "llama3", "longrope"]
    rows = conform(
        small["gguf"],
        512,
        [*methods, "dynamic"],
        small["tokens"],
        256,
        ["transformers", "llama.cpp"],
        small["root"] / "llamacpp",
    )
    _assert_conforms(rows, "llama.cpp", methods)
    dynamic = _by_method(rows, "llama.cpp")["dynamic"]
    assert dynamic["error"].startswith("refused: llama.cpp has no dynamic NTK scaling")


def test_an_aligned_64_gguf_stays_aligned_and_loads_in_llama_cpp(small, tmp_path):
    import gguf

    _need("llama.cpp")
    out = tmp_path / "yarn.gguf"
    api.extend(small["gguf"], out, 512, "yarn")
    reader = gguf.GGUFReader(str(out))
    assert reader.fields["general.alignment"].contents() == 64
    assert reader.data_offset % 64 == 0
    assert all((t.data_offset - reader.data_offset) % 64 == 0 for t in reader.tensors)
    result = score_external("llama.cpp", out, small["tokens"], 256)
    assert result.get("finite") and result["count"] == 255, result


@pytest.mark.runtime
def test_vllm_computes_what_transformers_computes(small):
    """(dynamic in vLLM: see the --check-runtime test, which refuses it)"""
    _need("vllm")
    rows = conform(
        small["gguf"],
        512,
        ["yarn", "llama3", "longrope"],
        small["tokens"],
        256,
        ["transformers", "vllm"],
        small["root"] / "vllm",
    )
    _assert_conforms(rows, "vllm", ["yarn", "llama3", "longrope"])


@pytest.mark.runtime
def test_longrope_inside_the_window_is_exact_in_transformers_but_not_in_vllm(small):
    """The runtime note for longrope: vLLM uses the long divisors at every length once max_model_len > L."""
    _need("vllm")
    folder = small["root"] / "vllm" / "longrope"
    if not folder.exists():
        pytest.skip("needs the folder written by the vLLM conformance test")
    short = small["tokens"][:200]
    exact = score_transformers(small["root"] / "vllm" / "source", short, 100)
    ours = score_transformers(folder, short, 100)
    served = score_external("vllm", folder, short, 100)
    assert ours["nll"] == pytest.approx(exact["nll"], rel=1e-6)
    assert served["max_model_len"] == 512 and abs(served["nll"] / exact["nll"] - 1) > 1e-3


@pytest.mark.runtime
def test_a_searched_attention_factor_is_read_alike_by_every_runtime(small, tmp_path, monkeypatch):
    """A tuned longrope (NTK's divisors and m = 1.1 standing in for a search) scores the same in transformers,
    llama.cpp (rope.scaling.attn_factor) and vLLM (short_mscale / long_mscale), and unlike m = 1."""
    import dataclasses

    from ctxext.decoders import rope_search

    _need("llama.cpp")
    _need("vllm")
    chosen = {"attention": 1.1}

    def fixed(plan, model_path, text, **kwargs):
        divisors = tuple(rope_search.seeds(plan)["ntk"].tolist())
        return dataclasses.replace(plan, searched=divisors, searched_attention=chosen["attention"])

    monkeypatch.setattr(rope_search, "tune_plan", fixed)
    tune, tokens = {"text": str(CORPUS)}, small["tokens"]
    api.extend(small["gguf"], tmp_path / "tuned.gguf", 512, "longrope", tune=tune)
    api.extend(small["gguf"], tmp_path / "tuned", 512, "longrope", fmt="hf", tune=tune)
    chosen["attention"] = None
    api.extend(small["gguf"], tmp_path / "plain", 512, "longrope", fmt="hf", tune=tune)

    def ppl(result):
        return math.exp(result["nll"] / result["count"])

    reference = ppl(score_transformers(tmp_path / "tuned", tokens, 256))
    assert abs(ppl(score_transformers(tmp_path / "plain", tokens, 256)) / reference - 1) > APART
    for runtime, path, engine in (("llama.cpp", tmp_path / "tuned.gguf", {}), ("vllm", tmp_path / "tuned", FP32)):
        served = score_external(runtime, path, tokens, 256, **engine)
        assert served.get("finite") and abs(ppl(served) / reference - 1) < AGREE, (runtime, served, reference)


def test_every_runtime_named_in_a_spec_is_one_ctxext_can_score():
    from ctxext.methods.rope import ROPE_REGISTRY

    for spec in ROPE_REGISTRY.values():
        assert set(spec.runtimes) == set(RUNTIMES), spec.name


@pytest.mark.runtime
def test_check_runtime_reads_the_written_folder_back_in_vllm_and_refuses_dynamic(small, tmp_path):
    _need("vllm")
    report = api.extend(small["gguf"], tmp_path / "yarn", 512, "yarn", fmt="hf", runtimes=("vllm",))
    assert any(note.startswith("vllm reads it back") for note in report.notes), report.notes
    with pytest.raises(CtxextError, match="vllm"):
        api.extend(small["gguf"], tmp_path / "dynamic", 512, "dynamic", fmt="hf", runtimes=("vllm",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["yarn"]


def test_check_runtime_reads_the_written_gguf_back_in_llama_cpp(small, tmp_path):
    _need("llama.cpp")
    report = api.extend(small["gguf"], tmp_path / "llama3.gguf", 512, "llama3", runtimes=("llama.cpp",))
    assert any(note.startswith("llama.cpp reads it back") for note in report.notes), report.notes


def test_conform_command_writes_one_row_per_method_and_runtime(tmp_path, capsys):
    import json

    import tiny_decoders
    from ctxext.cli.main import main, run

    folder = tiny_decoders.save_decoder("llama", tmp_path / "llama")
    text = tmp_path / "text.txt"
    text.write_text(" ".join(["alpha beta gamma delta"] * 100))
    out = tmp_path / "conform.json"
    argv = ["conform", str(folder), "--to", "128", "--methods", "none,yarn,linear", "--runtimes", "transformers"]
    assert run(main, [*argv, "--data", str(text), "-o", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["tokens"] == 127 and record["score_from"] == 63
    ppl = {row["method"]: row["ppl"] for row in record["rows"]}
    assert set(ppl) == {"none", "yarn", "linear"} and len(set(ppl.values())) == 3
    assert "| linear | transformers |" in capsys.readouterr().out


@pytest.mark.runtime
def test_eval_backend_vllm_measures_what_the_transformers_backend_does(small, tmp_path):
    """ppl on the same windows within 0.05%, passkey on the same prompts with the same answers."""
    _need("vllm")
    from ctxext.eval.run import evaluate
    from ctxext.formats.gguf_to_hf import gguf_to_hf_folder

    folder = tmp_path / "small"
    folder.mkdir()
    gguf_to_hf_folder(small["gguf"], folder)
    book = tmp_path / "book.txt"
    book.write_text(CORPUS.read_text(encoding="utf-8")[:20000])
    common = {"to": 512, "stride": 128, "max_tokens": 1200}
    here = evaluate(str(folder), "ppl", [128, 256], [str(book)], ["native", "yarn"], **common)["results"]["ppl"]
    served = evaluate(str(folder), "ppl", [128, 256], [str(book)], ["yarn"], backend="vllm", **common)
    served = served["results"]["ppl"]["yarn"]
    for length in (128, 256):
        assert served[length]["tokens"] == here["yarn"][length]["tokens"]
        assert served[length]["ppl"] == pytest.approx(here["yarn"][length]["ppl"], rel=AGREE)
        assert served[length]["ppl"] != pytest.approx(here["native"][length]["ppl"], rel=APART)
    passkey = {"methods": ["native"], "depths": [0.2, 0.8], "trials": 2}
    here = evaluate(str(folder), "passkey", [200], **passkey)["results"]["passkey"]["native"][200]
    served = evaluate(str(folder), "passkey", [200], backend="vllm", **passkey)["results"]["passkey"]["native"][200]
    assert served == here


@pytest.mark.runtime
def test_eval_backend_vllm_runs_ruler_on_the_same_prompts_to_the_same_answers(small, tmp_path):
    """RULER's prompts decoded greedily in vLLM give the tokens transformers gives, up to the first step where
    transformers' two best logits are within 1e-3 (this two-layer model meets such near-ties, which rounding
    decides, within a few tokens);
    `eval --task ruler --backend vllm` then scores the same cells to the same rows (YaRN to 1,024 tokens: the small
    model's own window, 256, holds no RULER prompt with its answer)."""
    _need("vllm")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ctxext.eval.run import evaluate
    from ctxext.eval.tasks.ruler import Builder, read_qa
    from ctxext.runtimes import generate_external
    from test_ruler import write_qa

    yarn = tmp_path / "yarn"
    api.extend(small["gguf"], yarn, 1024, "yarn", fmt="hf")
    qa = write_qa(tmp_path / "qa.jsonl")
    tokenizer = AutoTokenizer.from_pretrained(yarn)
    builder = Builder(tokenizer, qa=read_qa(qa))
    names = ["niah_single_1", "vt", "qa_1"]
    cases = [(name, builder.sample(name, 400, index)) for name in names for index in range(2)]
    model = AutoModelForCausalLM.from_pretrained(yarn, dtype=torch.float32)
    prompts = [case.ids for _, case in cases]
    answer = generate_external("vllm", yarn, prompts, max_tokens=8, max_model_len=528, dtype="float32")
    assert "error" not in answer, answer
    compared = 0
    for (_, case), served in zip(cases, answer["generated"], strict=True):
        out = model.generate(
            torch.tensor([case.ids]),
            max_new_tokens=8,
            do_sample=False,
            output_scores=True,
            return_dict_in_generate=True,
        )
        tokens = out.sequences[0, 400:].tolist()
        margins = [float(step[0].topk(2).values.diff().abs()) for step in out.scores]
        decided = next((t for t, margin in enumerate(margins) if margin < 1e-3), len(tokens))
        assert served[:decided] == tokens[:decided], (served, tokens, margins)
        compared += decided
    assert compared >= 3 * len(cases)
    options = {"subtasks": names, "samples": 2, "jsonl": str(qa), "methods": ["yarn"], "to": 1024}
    rows = evaluate(str(yarn), "ruler", [400], **{**options, "methods": ["native"]})["results"]["ruler"]["native"]
    vllm = evaluate(str(yarn), "ruler", [400], backend="vllm", **{**options, "methods": ["native"]})
    vllm = vllm["results"]["ruler"]["native"]

    def scored(tasks: dict) -> dict:  # what decides the rows (the continuations' text and the seconds may differ)
        return {name: (t["accuracy"], t["ci95"], [o["score"] for o in t["outputs"]]) for name, t in tasks.items()}

    assert scored(vllm[400]["tasks"]) == scored(rows[400]["tasks"]) and vllm[400]["average"] == rows[400]["average"]
    assert set(rows[400]["tasks"]) == set(names) and all(t["samples"] == 2 for t in rows[400]["tasks"].values())
