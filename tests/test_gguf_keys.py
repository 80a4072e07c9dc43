"""The GGUF metadata ctxext writes is named and typed as llama.cpp reads it. The names below are copied from
llama.cpp's own table (src/llama-arch.cpp, LLM_KV_NAMES, and LLM_TENSOR_ROPE_FREQS), not from ctxext's or the
gguf package's, so a wrong key name fails here even when ctxext reads back what it wrote."""

from __future__ import annotations

import gguf
import pytest

import tiny_decoders
from ctxext.cli.main import main, run

LLAMA_CPP = {  # key -> the type llama.cpp's loader reads it as
    "%s.context_length": "UINT32",
    "%s.rope.dimension_count": "UINT32",
    "%s.rope.freq_base": "FLOAT32",
    "%s.rope.scale_linear": "FLOAT32",
    "%s.rope.scaling.type": "STRING",
    "%s.rope.scaling.factor": "FLOAT32",
    "%s.rope.scaling.attn_factor": "FLOAT32",
    "%s.rope.scaling.original_context_length": "UINT32",
    "%s.rope.scaling.finetuned": "BOOL",
    "%s.rope.scaling.yarn_log_multiplier": "FLOAT32",
}
SCALING_TYPES = ("none", "linear", "yarn", "longrope")  # llama.cpp's LLAMA_ROPE_SCALING_TYPES names
ROPE_FREQS = "rope_freqs.weight"  # LLM_TENSOR_ROPE_FREQS, "rope_freqs"


def _fields(path):
    reader = gguf.GGUFReader(str(path))
    return {name: field for name, field in reader.fields.items()}, [t.name for t in reader.tensors]


@pytest.mark.parametrize(
    "method,scaling",
    [("linear", "linear"), ("yarn", "yarn"), ("ntk", "none"), ("llama3", "none"), ("critical-base", "none")],
)
def test_rope_keys_are_llama_cpps_names_and_types(tmp_path, method, scaling):
    source = tiny_decoders.save_gguf(tmp_path / "in.gguf", context=2048)
    out = tmp_path / "out.gguf"
    assert run(main, ["extend", str(source), "--to", "8192", "--method", method, "-o", str(out)]) == 0
    before, _ = _fields(source)
    after, tensors = _fields(out)
    known = {template % "llama": kind for template, kind in LLAMA_CPP.items()}
    rope_keys = [name for name in after if name.startswith("llama.rope") or name == "llama.context_length"]
    for name in rope_keys:
        assert name in known, f"{name} is not a key llama.cpp reads"
        assert after[name].types[0].name == known[name], (name, after[name].types)
    assert after["llama.context_length"].contents() == 8192
    assert after["llama.rope.scaling.type"].contents() == scaling
    if scaling != "none":
        assert after["llama.rope.scaling.factor"].contents() == pytest.approx(4.0)
        assert after["llama.rope.scaling.original_context_length"].contents() == 2048
    if method in ("ntk", "critical-base"):
        assert after["llama.rope.freq_base"].contents() > before["llama.rope.freq_base"].contents()
    assert (ROPE_FREQS in tensors) == (method == "llama3")
    assert set(before) - set(after) <= {"llama.rope.scaling.factor", "llama.rope.scaling.original_context_length"}
