"""Values are checked before any work: config fields, GGUF metadata and YAML values of the wrong type or range,
command-line values a verb cannot use, results files of the wrong shape, remote code and pickles. Each ends in
one line, exit code 2, no traceback and nothing written."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

import tiny
import tiny_decoders
from ctxext.cli.main import main, run
from ctxext.decoders.long_attention import SelfExtend, smallest_group
from ctxext.methods.rope import ROPE_REGISTRY, register

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "emma.txt"
NEMO = "model:\n  encoder_seq_length: 2048\n  max_position_embeddings: {value}\n  position_embedding_type: rope\n"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("validation")
    tiny.save("bert", root / "bert")
    tiny_decoders.save_decoder("llama", root / "llama")
    tiny_decoders.save_gguf(root / "tiny.gguf")
    (root / "empty-keep").mkdir()
    full = root / "full-keep"
    full.mkdir()
    (full / "old.txt").write_text("an earlier run")
    (root / "binary.json").write_bytes(b"\x00\x01\xff\xfe")
    return root


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def refused(argv: list[str], fragment: str, capsys, *watched: Path) -> None:
    """``argv`` ends in one line holding ``fragment``, exit 2, and leaves every watched folder as it was."""
    before = [_listing(folder) for folder in watched]
    code = run(main, argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("ctxext: error: "), err
    assert fragment.lower() in lines[0].lower(), lines[0]
    assert [_listing(folder) for folder in watched] == before


def _with_config(root: Path, family: str, work: Path, **changes) -> Path:
    folder = work / f"{family}-changed"
    shutil.copytree(root / family, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **changes}))
    return folder


CONFIG_CASES = [
    ("bert", {"hidden_size": "384"}, "hidden_size must be a positive whole number"),
    ("bert", {"max_position_embeddings": "512"}, "max_position_embeddings must be a positive whole number"),
    ("bert", {"max_position_embeddings": True}, "max_position_embeddings must be a positive whole number"),
    ("bert", {"num_attention_heads": 0}, "num_attention_heads must be a positive whole number"),
    ("bert", {"num_hidden_layers": -1}, "num_hidden_layers must be a positive whole number"),
    ("bert", {"hidden_size": 33}, "not a multiple of num_attention_heads"),
    ("llama", {"rope_theta": "abc"}, "rope_theta must be a positive finite number"),
    ("llama", {"rope_theta": math.inf}, "rope_theta must be a positive finite number"),
    ("llama", {"partial_rotary_factor": 2}, "partial_rotary_factor must be a fraction"),
    ("llama", {"rope_scaling": {"rope_type": "linear", "factor": 0}}, "factor must be a positive finite number"),
    ("llama", {"rope_scaling": "linear"}, "rope_scaling must be a JSON object"),
]


@pytest.mark.parametrize("family,changes,fragment", CONFIG_CASES, ids=[str(c[1]) for c in CONFIG_CASES])
@pytest.mark.parametrize("verb", ["extend", "inspect"])
def test_config_fields_of_the_wrong_type_or_range_are_one_line(root, tmp_path, capsys, family, changes, fragment, verb):
    model = _with_config(root, family, tmp_path, **changes)
    argv = [verb, str(model), "--to", "256"] + (["-o", str(tmp_path / "out")] if verb == "extend" else [])
    refused(argv, fragment, capsys, tmp_path)


WRONG_WHOLE = st.one_of(
    st.text(max_size=6),
    st.booleans(),
    st.integers(max_value=0),
    st.floats(allow_nan=True, allow_infinity=True).filter(lambda x: not float(x).is_integer()),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=1),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    field=st.sampled_from(["hidden_size", "num_attention_heads", "num_hidden_layers", "max_position_embeddings"]),
    family=st.sampled_from(["bert", "llama"]),
    value=WRONG_WHOLE,
)
def test_fuzzed_config_fields_are_refused_before_any_work(root, tmp_path_factory, capsys, field, family, value):
    work = tmp_path_factory.mktemp("fuzz")
    model = _with_config(root, family, work, **{field: value})
    refused(["extend", str(model), "--to", "256", "-o", str(work / "out")], field, capsys, work)


def _gguf_with_context(path: Path, kind: str, value) -> Path:
    import gguf

    writer = gguf.GGUFWriter(str(path), arch="llama")
    getattr(writer, f"add_{kind}")("llama.context_length", value)
    writer.add_embedding_length(64)
    writer.add_block_count(1)
    writer.add_head_count(4)
    writer.add_rope_dimension_count(16)
    writer.add_tensor("token_embd.weight", torch.zeros(8, 64).numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    stored=st.one_of(
        st.tuples(st.just("string"), st.text(min_size=1, max_size=6)),
        st.tuples(st.just("float32"), st.floats(width=32, allow_nan=True, allow_infinity=True)),
        st.tuples(st.just("int32"), st.integers(min_value=-(2**31), max_value=0)),
        st.tuples(st.just("bool"), st.booleans()),
    )
)
def test_fuzzed_gguf_context_length_is_refused(tmp_path_factory, capsys, stored):
    work = tmp_path_factory.mktemp("gguf")
    model = _gguf_with_context(work / "m.gguf", *stored)
    refused(["extend", str(model), "--to", "4096", "-o", str(work / "out.gguf")], "context_length", capsys, work)


@pytest.mark.parametrize("value", ["true", "abc", "-1", "0", "1.5", "[2048]"])
def test_yaml_lengths_of_the_wrong_type_are_refused(tmp_path, capsys, value):
    source = tmp_path / "nemo.yaml"
    source.write_text(NEMO.format(value=value))
    argv = ["extend", str(source), "--to", "8192", "--method", "linear", "-o", str(tmp_path / "out.yaml")]
    refused(argv, "max_position_embeddings", capsys, tmp_path)


CLI_CASES = {
    "an empty --method": (["extend", "{root}/bert", "--to", "128", "--method", "", "-o", "{out}"], "needs a name"),
    "a negative learning rate": (
        ["train", "{root}/llama", "--to", "128", "--learning-rate", "-1", "--data", "{corpus}", "-o", "{out}"],
        "--learning-rate",
    ),
    "a learning rate of nan": (
        ["train", "{root}/llama", "--to", "128", "--learning-rate", "nan", "--data", "{corpus}", "-o", "{out}"],
        "--learning-rate",
    ),
    "an infinite --distill": (
        ["train", "{root}/bert", "--to", "128", "--distill", "inf", "--data", "{corpus}", "-o", "{out}"],
        "--distill",
    ),
    "--dtype on an encoder": (["extend", "{root}/bert", "--to", "128", "--dtype", "bfloat16", "-o", "{out}"], "dtype"),
    "--original on an encoder": (["extend", "{root}/bert", "--to", "128", "--original", "32", "-o", "{out}"], "origin"),
    "a GGUF longer than uint32": (["extend", "{root}/tiny.gguf", "--to", str(2**32), "-o", "{out}.gguf"], "32-bit"),
    "a plot name matplotlib cannot write": (
        ["eval", "{root}/llama", "--task", "ppl", "--lengths", "32", "--data", "{corpus}", "-o", "{out}.json"]
        + ["--plot", "{out}.txt"],
        "plot named",
    ),
    "an unknown method after native": (
        ["eval", "{root}/llama", "--task", "ppl", "--lengths", "32", "64", "--methods", "native,yarnn"]
        + ["--data", "{corpus}", "-o", "{out}.json"],
        "did you mean 'yarn'",
    ),
    "--max-memory naming a GPU the machine lacks": (
        ["eval", "{root}/llama", "--task", "ppl", "--lengths", "32", "--data", "{corpus}", "-o", "{out}.json"]
        + ["--max-memory", "7=1GiB"],
        "no GPU 7",
    ),
    "conform with an unknown method": (
        ["conform", "{root}/llama", "--to", "128", "--methods", "bogus", "--data", "{corpus}", "-o", "{out}.json"],
        "unknown method 'bogus'",
    ),
    "conform keeping into a folder with files": (
        ["conform", "{root}/llama", "--to", "128", "--methods", "yarn", "--data", "{corpus}", "-o", "{out}.json"]
        + ["--keep", "{root}/full-keep"],
        "already holds files",
    ),
    "--resume from a binary file": (
        ["eval", "{root}/llama", "--task", "ppl", "--lengths", "32", "--data", "{corpus}", "-o", "{root}/binary.json"]
        + ["--resume"],
        "cannot read results",
    ),
}


@pytest.mark.parametrize("name", list(CLI_CASES))
def test_command_line_values_are_checked_before_any_work(root, tmp_path, capsys, name):
    argv, fragment = CLI_CASES[name]
    out = tmp_path / "out"
    refused([a.format(root=root, out=out, corpus=CORPUS) for a in argv], fragment, capsys, root, tmp_path)


RESULT_SHAPES = {
    "a list of results": ({"results": []}, "results must be an object of tasks"),
    "a task that is no object": ({"results": {"ppl": []}}, "results.ppl must be an object of methods"),
    "a length that is no number": ({"results": {"ppl": {"yarn": {"x": {"ppl": 3}}}}}, "a length in tokens"),
    "a perplexity of 0": ({"results": {"ppl": {"yarn": {"32": {"ppl": 0}}}}}, "positive number"),
    "a perplexity that is text": ({"results": {"ppl": {"yarn": {"32": {"ppl": "3"}}}}}, "positive number"),
    "passkey without depths": ({"results": {"passkey": {"yarn": {"32": {"accuracy": 0.5}}}}}, "depths"),
    "passkey accuracy above 1": (
        {"results": {"passkey": {"yarn": {"32": {"accuracy": 2, "depths": {}, "trials": 1}}}}},
        "between 0 and 1",
    ),
    "an original context that is text": (
        {"results": {"ppl": {"yarn": {"32": {"ppl": 3}}}}, "original_context": "2k"},
        "original_context",
    ),
}


@pytest.mark.parametrize("name", list(RESULT_SHAPES))
def test_plot_names_the_first_wrong_field(tmp_path, capsys, name):
    data, fragment = RESULT_SHAPES[name]
    results = tmp_path / "r.json"
    results.write_text(json.dumps(data))
    refused(["plot", str(results), "-o", str(tmp_path / "p.png")], fragment, capsys, tmp_path)


def test_a_folder_with_code_of_its_own_is_refused_unless_its_base_class_is_asked_for(root, tmp_path, capsys):
    from transformers import AutoModelForCausalLM

    model = _with_config(root, "llama", tmp_path, auto_map={"AutoModelForCausalLM": "modeling_x.XForCausalLM"})
    mark = tmp_path / "ran"
    (model / "modeling_x.py").write_text(f"open({str(mark)!r}, 'w').close()\n")
    out = tmp_path / "out"
    refused(["extend", str(model), "--to", "256", "-o", str(out)], "code of its own", capsys, tmp_path)
    refused(["inspect", str(model)], "--base-class", capsys, tmp_path)
    evaluate = ["eval", str(model), "--task", "ppl", "--lengths", "32", "--data", str(CORPUS), "-o", f"{out}.json"]
    refused(evaluate, "never runs", capsys, tmp_path)
    assert run(main, ["extend", str(model), "--to", "256", "--base-class", "-o", str(out)]) == 0
    assert not list(out.glob("*.py")) and "auto_map" not in json.loads((out / "config.json").read_text())
    assert json.loads((out / "ctxext.json").read_text())["remote_code_dropped"] == ["auto_map", "modeling_x.py"]
    AutoModelForCausalLM.from_pretrained(out)
    assert not mark.exists()


def test_an_encoder_with_code_of_its_own_extends_as_its_base_class_without_the_code(root, tmp_path, capsys):
    model = tmp_path / "bert-code"
    shutil.copytree(root / "bert", model)
    (model / "modeling_custom.py").write_text("raise SystemExit('ran')\n")
    out = tmp_path / "out"
    refused(["extend", str(model), "--to", "128", "-o", str(out)], "modeling_custom.py", capsys, tmp_path)
    assert run(main, ["extend", str(model), "--to", "128", "--base-class", "-o", str(out)]) == 0
    assert not list(out.rglob("*.py"))
    assert json.loads((out / "ctxext.json").read_text())["remote_code_dropped"] == ["modeling_custom.py"]


def test_base_class_is_refused_where_it_means_nothing(root, tmp_path, capsys):
    argv = ["extend", str(root / "tiny.gguf"), "--to", "4096", "--base-class", "-o", str(tmp_path / "o.gguf")]
    refused(argv, "--base-class applies", capsys, tmp_path)


class _Marks:
    """A pickled object that would leave a file behind if anything unpickled it."""

    def __init__(self, mark: Path):
        self.mark = mark

    def __reduce__(self):
        return (open, (str(self.mark), "w"))


@pytest.mark.parametrize("family", ["bert", "llama"])
def test_pickled_weights_are_refused_in_one_line_by_eval(root, tmp_path, capsys, family):
    model = tmp_path / family
    shutil.copytree(root / family, model)
    state = load_file(model / "model.safetensors")
    (model / "model.safetensors").unlink()
    mark = tmp_path / "unpickled"
    torch.save({**state, "extra": _Marks(mark)}, model / "pytorch_model.bin")
    task = ["--task", "drift", "--lengths", "32"] if family == "bert" else ["--task", "ppl", "--lengths", "32"]
    argv = ["eval", str(model), *task, "--data", str(CORPUS), "-o", str(tmp_path / "r.json")]
    refused(argv, "holds more than tensors", capsys, tmp_path)
    assert not mark.exists()


def test_a_legacy_tensors_only_bin_is_read(root, tmp_path):
    legacy = tmp_path / "legacy"
    shutil.copytree(root / "bert", legacy)
    state = load_file(legacy / "model.safetensors")
    (legacy / "model.safetensors").unlink()
    torch.save(state, legacy / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    for source, out in ((legacy, tmp_path / "from-bin"), (root / "bert", tmp_path / "from-safetensors")):
        assert run(main, ["extend", str(source), "--to", "128", "-o", str(out)]) == 0
    from_bin, from_safetensors = (
        load_file(tmp_path / "from-bin" / "model.safetensors"),
        load_file(tmp_path / "from-safetensors" / "model.safetensors"),
    )
    assert from_bin.keys() == from_safetensors.keys()
    assert all(from_bin[key].equal(from_safetensors[key]) for key in from_bin)


def test_a_position_table_holding_nan_is_refused(root, tmp_path, capsys):
    from safetensors.torch import save_file

    model = tmp_path / "nan"
    shutil.copytree(root / "bert", model)
    state = load_file(model / "model.safetensors")
    key = next(k for k in state if k.endswith("position_embeddings.weight"))
    state[key][5, 3] = float("nan")
    save_file(state, str(model / "model.safetensors"))
    refused(["extend", str(model), "--to", "128", "-o", str(tmp_path / "out")], "non-finite", capsys, tmp_path)


def _linear_group(window: int, context: int, target: int) -> int:
    group = 2
    while SelfExtend(window, group).largest_distance(target) >= context:
        group += 1
    return group


@settings(max_examples=300, deadline=None)
@given(st.integers(2, 400).flatmap(lambda c: st.tuples(st.just(c), st.integers(1, c - 1), st.integers(1, 50_000))))
def test_self_extend_group_is_the_smallest_that_fits(case):
    context, window, target = case
    assert smallest_group(window, context, target) == _linear_group(window, context, target)


def test_self_extend_group_for_a_huge_target_is_found_without_a_long_search():
    group = smallest_group(2048, 8192, 10**12)
    assert SelfExtend(2048, group).largest_distance(10**12) < 8192
    assert SelfExtend(2048, group - 1).largest_distance(10**12) >= 8192


def test_no_registry_takes_a_name_twice():
    from ctxext import api
    from ctxext.extend import outputs
    from ctxext.methods import ape

    with pytest.raises(ValueError, match="already registered"):
        register(ROPE_REGISTRY["yarn"])
    with pytest.raises(ValueError, match="already registered"):
        ape.register(ape.APE_REGISTRY["cubic"])
    with pytest.raises(ValueError, match="already registered"):
        outputs.register(api.OUTPUT_FORMATS["hf"])
    with pytest.raises(ValueError, match="already registered"):
        outputs.register(outputs.OutputFormat("same", "the input's own form", {}))


def test_help_lists_every_registered_method_and_format(monkeypatch):
    from ctxext import api
    from ctxext.cli.args import build_parser
    from ctxext.methods.ape import APE_REGISTRY

    monkeypatch.setenv("COLUMNS", "1000")  # no line breaks inside hyphenated names
    text = build_parser()._subparsers._group_actions[0].choices["extend"].format_help()
    for name in [*ROPE_REGISTRY, *APE_REGISTRY, *api.OUTPUT_FORMATS]:
        assert name in text, name
    for output in api.OUTPUT_FORMATS.values():
        assert f"read by {', '.join(output.runtimes)}" in text, output.name


def test_one_dtype_vocabulary_for_every_verb():
    from ctxext.cli.args import DTYPE_NAMES, build_parser
    from ctxext.placement import DTYPES, dtype_word

    assert DTYPE_NAMES == tuple(DTYPES)
    parser = build_parser()
    for short, long in (("bf16", "bfloat16"), ("fp16", "float16"), ("fp32", "float32")):
        assert dtype_word(short) == dtype_word(long) == long
        for spelling in (short, long):
            assert (
                parser.parse_args(["extend", "m.gguf", "--to", "8", "-o", "o", "--dtype", spelling]).dtype == spelling
            )
            evaluate = ["eval", "m", "--task", "ppl", "--lengths", "8", "-o", "r.json", "--dtype", spelling]
            assert parser.parse_args(evaluate).dtype == spelling
