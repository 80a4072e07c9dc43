"""Where the model under evaluation runs: bf16, accelerate's device map with layers split (here: CPU and disk),
and the refusals for devices this machine does not have. Every path gives the fp32 CPU result (bf16 within
its rounding)."""

import json

import pytest
import torch

import tiny
import tiny_decoders
from ctxext.cli.main import main, run
from ctxext.errors import CtxextError
from ctxext.eval.models import load_model
from ctxext.eval.run import evaluate
from ctxext.placement import Placement, placement


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("placement")
    book = root / "book.txt"
    book.write_text(tiny.words(600, seed=4))
    return tiny_decoders.save_decoder("llama", root / "llama"), book


def _ppl(model, book, place, methods=("none", "yarn")):
    result = evaluate(str(model), "ppl", [32, 64], [str(book)], list(methods), 128, place=place)
    return {m: {k: v["ppl"] for k, v in rows.items()} for m, rows in result["results"]["ppl"].items()}, result


def test_bf16_matches_fp32_within_rounding(setup):
    model, book = setup
    fp32, _ = _ppl(model, book, Placement())
    bf16, result = _ppl(model, book, placement("cpu", "bf16"))
    assert result["placement"]["dtype"] == "bfloat16"
    loaded = load_model(model, placement("cpu", "bf16"))
    assert next(loaded.model.parameters()).dtype == torch.bfloat16
    for method, rows in fp32.items():
        for length, value in rows.items():
            assert bf16[method][length] == pytest.approx(value, rel=0.02)
            assert bf16[method][length] != value  # it really ran in bf16


def test_device_map_with_layers_split_gives_the_one_device_result(setup):
    model, book = setup
    size = sum(f.stat().st_size for f in model.glob("*.safetensors"))
    place = placement("cpu", "fp32", max_memory=f"cpu={size // 2000}KB")
    loaded = load_model(model, place)
    where = set(loaded.model.hf_device_map.values())
    assert where == {"cpu", "disk"}, loaded.model.hf_device_map
    assert _ppl(model, book, place)[0] == _ppl(model, book, Placement())[0]


def test_cli_eval_records_its_placement(setup, tmp_path):
    model, book = setup
    args = ["eval", str(model), "--task", "ppl", "--lengths", "32", "--data", str(book), "-o", str(tmp_path / "r.json")]
    assert run(main, [*args, "--device", "cpu", "--dtype", "bf16"]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["placement"]["dtype"] == "bfloat16"


@pytest.mark.parametrize(
    "words,message",
    [
        ({"device": "tpu"}, "choose auto"),
        ({"device_map": "balanced"}, "only 'auto'"),
        ({"max_memory": "cpu"}, "DEVICE=SIZE"),
        ({"attn": "flash_attention_2"}, "flash-attn"),
    ],
)
def test_placement_refusals(words, message):
    with pytest.raises(CtxextError, match=message):
        placement(**{"device": "cpu", **words})


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_asked_for_where_there_is_none():
    with pytest.raises(CtxextError, match="no CUDA"):
        placement("cuda")
    assert placement("auto").device in ("cpu", "mps")
