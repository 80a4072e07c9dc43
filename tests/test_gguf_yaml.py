"""GGUF and NeMo / Cerebras YAML outputs, and every decoder-specific bad input."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import gguf
import numpy as np
import pytest

import tiny_decoders
from ctxext import api
from ctxext.cli.main import main, run
from ctxext.extend import gguf as gguf_pipeline
from ctxext.formats.gguf_file import read_metadata


def fields(path: Path) -> dict:
    reader = gguf.GGUFReader(str(path))
    return {name: field.contents() for name, field in reader.fields.items() if not name.startswith("GGUF.")}


@pytest.fixture(scope="module")
def small_gguf(tmp_path_factory):
    return tiny_decoders.save_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.mark.parametrize(
    "method,expected",
    [
        (
            "yarn",
            {
                "llama.rope.scaling.type": "yarn",
                "llama.rope.scaling.factor": 4.0,
                "llama.rope.scaling.original_context_length": 2048,
            },
        ),
        (
            "linear",
            {
                "llama.rope.scaling.type": "linear",
                "llama.rope.scaling.factor": 4.0,
                "llama.rope.scaling.original_context_length": 2048,
            },
        ),
        ("ntk", {"llama.rope.scaling.type": "none"}),
        ("llama3", {"llama.rope.scaling.type": "none"}),
    ],
)
def test_gguf_metadata_and_untouched_tensors(small_gguf, tmp_path, method, expected):
    out = tmp_path / "out.gguf"
    api.extend(small_gguf, out, 8192, method)
    written = fields(out)
    assert written["llama.context_length"] == 8192
    for key, value in expected.items():
        assert written[key] == pytest.approx(value) if isinstance(value, float) else written[key] == value
    if method == "ntk":
        assert written["llama.rope.freq_base"] == pytest.approx(10000 * 4 ** (16 / 14), rel=1e-6)
    before, after = gguf.GGUFReader(str(small_gguf)), gguf.GGUFReader(str(out))
    old = {t.name: t for t in before.tensors}
    for tensor in after.tensors:
        if tensor.name == "rope_freqs.weight":
            assert method == "llama3" and tensor.data.shape == (8,) and tensor.data[0] == 1.0 and tensor.data[-1] == 4.0
            continue
        assert tensor.tensor_type == old[tensor.name].tensor_type
        assert np.array_equal(tensor.data, old[tensor.name].data)
    unchanged = {k: v for k, v in fields(small_gguf).items() if "context_length" not in k and "freq_base" not in k}
    assert all(written[k] == v for k, v in unchanged.items())


def test_real_smollm2_gguf_to_gguf(tmp_path):
    import assets

    try:
        source = assets.smollm2_gguf()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    out = tmp_path / "smollm2-16k.gguf"
    assert run(main, ["extend", str(source), "--to", "16384", "--method", "yarn", "-o", str(out)]) == 0
    written = read_metadata(out, "llama.")
    assert written["llama.context_length"] == 16384
    assert written["llama.rope.scaling.type"] == "yarn"
    assert written["llama.rope.scaling.factor"] == 2.0
    assert written["llama.rope.scaling.original_context_length"] == 8192
    assert written["llama.rope.freq_base"] == 100000.0
    assert out.stat().st_size >= source.stat().st_size


NEMO = textwrap.dedent("""\
    # NeMo Megatron GPT config
    trainer:
      devices: 1
    model:
      encoder_seq_length: 2048  # training window
      max_position_embeddings: 2048
      position_embedding_type: rope
      rotary_percentage: 1.0
      seq_len_interpolation_factor: null  # set for PI
      hidden_size: 4096
""")
CEREBRAS = textwrap.dedent("""\
    model:
      # rotary decoder
      max_position_embeddings: 2048
      position_embedding_type: rotary
      rotary_dim: 128
    optimizer:
      learning_rate: 1.0e-4
""")


@pytest.mark.parametrize("flavour,text", [("nemo", NEMO), ("cerebras", CEREBRAS)])
def test_yaml_configs_get_pi_settings_and_keep_comments(tmp_path, flavour, text):
    import yaml

    source = tmp_path / f"{flavour}.yaml"
    source.write_text(text)
    out = tmp_path / f"{flavour}-32k.yaml"
    assert run(main, ["extend", str(source), "--to", "32768", "--method", "linear", "-o", str(out)]) == 0
    written = out.read_text()
    model = yaml.safe_load(written)["model"]
    assert model["max_position_embeddings"] == 32768
    key = "seq_len_interpolation_factor" if flavour == "nemo" else "pos_scaling_factor"
    assert model[key] == 16.0
    if flavour == "nemo":
        assert model["encoder_seq_length"] == 32768
        assert "# training window" in written and "# set for PI" in written
    else:
        assert "# rotary decoder" in written and yaml.safe_load(written)["optimizer"]["learning_rate"] == 1e-4
    assert written.splitlines()[0] == text.splitlines()[0]


def test_yaml_already_interpolated_is_extended_from_its_original(tmp_path):
    import yaml

    source = tmp_path / "pi.yaml"
    source.write_text(CEREBRAS.replace("rotary_dim: 128", "rotary_dim: 128\n  pos_scaling_factor: 4.0"))
    out = tmp_path / "out.yaml"
    assert run(main, ["extend", str(source), "--to", "16384", "--method", "linear", "-o", str(out)]) == 0
    assert yaml.safe_load(out.read_text())["model"]["pos_scaling_factor"] == 32.0  # 16384 / (2048 / 4)


@pytest.fixture(scope="module")
def bad(tmp_path_factory, small_gguf):
    root = tmp_path_factory.mktemp("bad-decoders")
    tiny_decoders.save_decoder("llama", root / "llama")
    tiny_decoders.save_decoder(
        "llama",
        root / "longrope",
        rope={
            "rope_type": "longrope",
            "short_factor": [1.0] * 8,
            "long_factor": [2.0] * 8,
            "original_max_position_embeddings": 32,
            "factor": 2.0,
        },
    )
    tiny_decoders.save_decoder("llama", root / "scaled-linear", rope={"rope_type": "linear", "factor": 2.0})
    data = small_gguf.read_bytes()
    (root / "truncated.gguf").write_bytes(data[: len(data) // 2])
    (root / "garbage.gguf").write_bytes(b"GGUF" + b"\x00" * 40)
    (root / "text.gguf").write_text("not a gguf")
    tiny_decoders.save_gguf(root / "bloom.gguf", arch="bloom")
    tiny_decoders.save_gguf(root / "gemma3.gguf", arch="gemma3")
    (root / "small.gguf").write_bytes(data)
    api.extend(small_gguf, root / "llama3.gguf", 8192, "llama3")
    (root / "no-positions.yaml").write_text("model:\n  hidden_size: 4096\n")
    (root / "broken.yaml").write_text("model: [unclosed\n")
    (root / "nemo.yaml").write_text(NEMO)
    return root


DECODER_CASES = {
    "target below the original": (["{root}/llama", "--to", "32"], "not above"),
    "target equal to the original": (["{root}/llama", "--to", "64"], "not above"),
    "near-miss rope method": (["{root}/llama", "--to", "128", "--method", "yarm"], "did you mean 'yarn'"),
    "near-miss llama3": (["{root}/llama", "--to", "128", "--method", "lama3"], "did you mean 'llama3'"),
    "learned-table method on rope": (["{root}/llama", "--to", "128", "--method", "pchip"], "learned position tables"),
    "existing longrope": (["{root}/longrope", "--to", "128"], "longrope"),
    "existing scaling without original": (["{root}/scaled-linear", "--to", "256"], "--original"),
    "truncated gguf": (["{root}/truncated.gguf", "--to", "4096", "-o", "{out}.gguf"], "gguf"),
    "garbage gguf": (["{root}/garbage.gguf", "--to", "4096", "-o", "{out}.gguf"], "gguf"),
    "text named gguf": (["{root}/text.gguf", "--to", "4096", "-o", "{out}.gguf"], "gguf"),
    "gguf of an unknown architecture": (["{root}/bloom.gguf", "--to", "4096", "-o", "{out}.gguf"], "'bloom'"),
    "gguf with per-layer rope": (["{root}/gemma3.gguf", "--to", "4096", "-o", "{out}.gguf"], "'gemma3'"),
    "missing gguf": (["{root}/none.gguf", "--to", "4096", "-o", "{out}.gguf"], "no such file"),
    "gguf already llama3-scaled": (["{root}/llama3.gguf", "--to", "16384", "-o", "{out}.gguf"], "rope_freqs"),
    "dynamic into gguf": (
        ["{root}/small.gguf", "--to", "4096", "--method", "dynamic", "-o", "{out}.gguf"],
        "no dynamic",
    ),
    "gguf output without .gguf": (["{root}/small.gguf", "--to", "4096", "-o", "{out}"], "needs a .gguf name"),
    "yaml with no position settings": (
        ["{root}/no-positions.yaml", "--to", "4096", "-o", "{out}.yaml"],
        "no position settings",
    ),
    "broken yaml": (["{root}/broken.yaml", "--to", "4096", "-o", "{out}.yaml"], "not valid yaml"),
    "yarn into a nemo config": (
        ["{root}/nemo.yaml", "--to", "4096", "--method", "yarn", "-o", "{out}.yaml"],
        "--method linear",
    ),
    "gguf format from a folder": (["{root}/llama", "--to", "128", "--format", "gguf"], "convert_hf_to_gguf"),
    "near-miss format": (["{root}/llama", "--to", "128", "--format", "hff"], "did you mean 'hf'"),
}


def listing(root: Path) -> set:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("name", list(DECODER_CASES))
def test_decoder_bad_input_is_one_line_and_exit_2(bad, tmp_path, capsys, name):
    argv, fragment = DECODER_CASES[name]
    out = tmp_path / "out"
    argv = [a.format(root=bad, out=out) for a in argv]
    if "-o" not in argv:
        argv += ["-o", str(out)]
    before, here = listing(bad), listing(tmp_path)
    code = run(main, ["extend", *argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert fragment.lower() in lines[0].lower(), lines[0]
    assert listing(bad) == before and listing(tmp_path) == here


def test_inspect_decoder_lists_pairs_per_method(capsys, bad):
    assert run(main, ["inspect", str(bad / "llama"), "--to", "256"]) == 0
    shown = capsys.readouterr().out
    assert "rotary dimension  16" in shown and "original context  64" in shown
    for method in ("linear", "ntk", "dynamic", "yarn", "llama3"):
        assert f"| {method} |" in shown
    assert "| linear | interpolated 0-7 | 1.0000 |" in shown
    assert "| yarn |" in shown and "1.1386" in shown


def test_installed_console_script_on_a_truncated_gguf(bad, tmp_path):
    ctxext = Path(sys.executable).with_name("ctxext")
    result = subprocess.run(
        [str(ctxext), "inspect", str(bad / "truncated.gguf")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_real_smollm2_gguf_to_hf_folder_loads_and_answers(tmp_path):
    """SmolLM2-135M GGUF -> HF folder with YaRN x2: plain transformers loads it and still knows Paris."""
    import assets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        source = assets.smollm2_gguf()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    out = tmp_path / "smollm2-16k"
    report = api.extend(source, out, 16384, "yarn", fmt="hf")
    assert any("reads back the same frequencies" in note for note in report.notes)
    import json

    config = json.loads((out / "config.json").read_text())
    assert config["max_position_embeddings"] == 16384 and config["rope_scaling"]["rope_type"] == "yarn"
    assert "quantization_config" not in config
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    ids = tokenizer("The capital of France is", return_tensors="pt").input_ids
    with torch.inference_mode():
        generated = model.generate(ids, max_new_tokens=3, do_sample=False)
    assert "Paris" in tokenizer.decode(generated[0, ids.shape[1] :])


def test_method_left_out_is_chosen_by_what_is_written(tmp_path, small_gguf, monkeypatch):
    """yarn for folders at any factor and for GGUF (the same numbers in transformers, vLLM and llama.cpp),
    linear for YAML."""
    import yaml

    folder = tiny_decoders.save_decoder("llama", tmp_path / "llama")
    for to, expected in ((128, "yarn"), (256, "yarn")):
        assert run(main, ["extend", str(folder), "--to", str(to), "-o", str(tmp_path / f"f{to}")]) == 0
        rope = json.loads((tmp_path / f"f{to}" / "config.json").read_text())["rope_parameters"]
        assert rope["rope_type"] == expected and rope["factor"] == to / tiny_decoders.CONTEXT

    assert run(main, ["extend", str(small_gguf), "--to", "4096", "-o", str(tmp_path / "g.gguf")]) == 0
    assert read_metadata(tmp_path / "g.gguf", "llama.")["llama.rope.scaling.type"] == "yarn"
    chosen = []  # the tiny GGUF has no tokenizer, so its folder conversion is not run here
    monkeypatch.setattr(
        gguf_pipeline, "write_output", lambda writer, *rest: chosen.append((writer.folder, writer.plan.method))
    )
    api.extend(small_gguf, tmp_path / "h", 4096, fmt="hf")
    api.extend(small_gguf, tmp_path / "h", 8192, fmt="hf")
    assert chosen == [(True, "yarn"), (True, "yarn")]

    (tmp_path / "nemo.yaml").write_text(NEMO)
    assert run(main, ["extend", str(tmp_path / "nemo.yaml"), "--to", "4096", "-o", str(tmp_path / "n.yaml")]) == 0
    assert yaml.safe_load((tmp_path / "n.yaml").read_text())["model"]["seq_len_interpolation_factor"] == 2.0


def test_flow_style_and_anchored_yaml_are_scaled(tmp_path):
    import yaml

    flow = tmp_path / "flow.yaml"
    flow.write_text("model: {max_position_embeddings: 2048, encoder_seq_length: 2048, position_embedding_type: rope}\n")
    anchored = tmp_path / "anchored.yaml"
    anchored.write_text(
        "defaults: &defaults\n  max_position_embeddings: 2048\n"
        "model:\n  <<: *defaults\n  encoder_seq_length: 2048\n  seq_len_interpolation_factor: null\n"
    )
    for source in (flow, anchored):
        out = tmp_path / f"out-{source.name}"
        assert run(main, ["extend", str(source), "--to", "4096", "-o", str(out)]) == 0
        model = yaml.safe_load(out.read_text())["model"]
        assert model["max_position_embeddings"] == 4096 and model["encoder_seq_length"] == 4096
        assert model["seq_len_interpolation_factor"] == 2.0


def test_yaml_edit_changes_only_the_model_sections_position_lines(tmp_path):
    """Four-space indents, quotes, a flow mapping, a block sequence and a same-named key in another section: the
    written file differs from the source in the model's position lines only (plus the added factor)."""
    source = tmp_path / "nemo.yaml"
    source.write_text(
        textwrap.dedent("""\
        # NeMo Megatron GPT config
        trainer:
            precision: bf16-mixed   # mixed
        data:
            max_position_embeddings: 999   # not the model's
        model:
            encoder_seq_length: 2048  # training window
            max_position_embeddings: 2048
            position_embedding_type: rope
            tokenizer:
                library: 'megatron'
                type: "GPT2BPETokenizer"
            data_prefix:
                - 0.5
                - /data/a_text_document
            optim: {name: fused_adam, lr: 2.0e-4}
        """)
    )
    out = tmp_path / "out.yaml"
    assert run(main, ["extend", str(source), "--to", "8192", "--method", "linear", "-o", str(out)]) == 0
    before, after = source.read_text().splitlines(), out.read_text().splitlines()
    expected = [
        line.replace("2048", "8192")
        if "encoder_seq_length" in line or line.strip().startswith("max_position_embeddings: 2048")
        else line
        for line in before
    ]
    expected.insert(expected.index("    max_position_embeddings: 8192") + 1, "    seq_len_interpolation_factor: 4.0")
    assert after == expected
