"""Every bad input ends in one line on stderr, exit code 2, no traceback, and nothing left behind."""

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import tiny
from ctxext.cli.main import main, run
from ctxext.cli.seed import linear_main, spline_main


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    tiny.save("bert", root / "bert")
    tiny.save("roberta", root / "roberta")
    no_config = root / "no-config"
    no_config.mkdir()
    (no_config / "notes.txt").write_text("hello")
    broken_json = tiny.save("bert", root / "broken-json")
    (broken_json / "config.json").write_text("{ not json")
    corrupt = tiny.save("bert", root / "corrupt")
    data = (corrupt / "model.safetensors").read_bytes()
    (corrupt / "model.safetensors").write_bytes(data[: len(data) // 3])
    garbage = tiny.save("bert", root / "garbage-header")
    (garbage / "model.safetensors").write_bytes(b"\xff" * 64)
    no_weights = tiny.save("bert", root / "no-weights")
    (no_weights / "model.safetensors").unlink()
    unknown = tiny.save("bert", root / "unknown-family")
    config = json.loads((unknown / "config.json").read_text())
    (unknown / "config.json").write_text(json.dumps({**config, "model_type": "frobnicator"}))
    deberta = root / "deberta"
    deberta.mkdir()
    (deberta / "config.json").write_text(json.dumps({"model_type": "deberta-v2", "max_position_embeddings": 512}))
    llama = root / "llama"
    llama.mkdir()
    (llama / "config.json").write_text(
        json.dumps(
            {"model_type": "llama", "max_position_embeddings": 2048, "hidden_size": 64, "num_attention_heads": 4}
        )
    )
    _more_bad_models(root)
    a_file = root / "a-file.txt"
    a_file.write_text("not a folder")
    existing = root / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    return root


def _more_bad_models(root: Path) -> None:
    import torch

    import tiny_decoders

    binary = tiny.save("bert", root / "binary-config")
    (binary / "config.json").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    pickled = tiny.save("bert", root / "pickle-bin")
    (pickled / "model.safetensors").unlink()
    torch.save({"run": subprocess.Popen}, pickled / "pytorch_model.bin")  # a reference to code, not tensors
    tiny_decoders.save_decoder("llama", root / "tiny-llama")
    remote = tiny.save("bert", root / "remote-code")
    config = json.loads((remote / "config.json").read_text())
    (remote / "config.json").write_text(
        json.dumps({**config, "model_type": "my_bert", "auto_map": {"AutoModel": "modeling_my.MyModel"}})
    )
    wide = tiny.save("bert", root / "width-mismatch")
    config = json.loads((wide / "config.json").read_text())
    (wide / "config.json").write_text(json.dumps({**config, "hidden_size": config["hidden_size"] * 2}))
    rope = {"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4}
    for name, extra in {
        "zero-context": {"max_position_embeddings": 0},
        "string-theta": {"max_position_embeddings": 2048, "rope_theta": "10000"},
    }.items():
        (root / name).mkdir()
        (root / name / "config.json").write_text(json.dumps({**rope, **extra}))
    (root / "results-broken.json").write_text("{ nope")
    (root / "results-other.json").write_text(json.dumps([1, 2, 3]))
    (root / "existing.json").write_text("{}")
    (root / "existing.png").write_bytes(b"png")
    (root / "nemo-flow.yaml").write_text("{model: {max_position_embeddings: [}\n")


CASES = {
    "missing path": (["extend", "{root}/nowhere", "--to", "128", "-o", "{out}"], "no such file"),
    "path is a file": (["extend", "{root}/a-file.txt", "--to", "128", "-o", "{out}"], "not a model folder"),
    "folder with no model": (["extend", "{root}/no-config", "--to", "128", "-o", "{out}"], "no config.json"),
    "config not json": (["extend", "{root}/broken-json", "--to", "128", "-o", "{out}"], "not valid json"),
    "truncated safetensors": (["extend", "{root}/corrupt", "--to", "128", "-o", "{out}"], "corrupt"),
    "garbage safetensors": (["extend", "{root}/garbage-header", "--to", "128", "-o", "{out}"], "corrupt"),
    "no weights": (["extend", "{root}/no-weights", "--to", "128", "-o", "{out}"], "has no weights"),
    "target equal to original": (["extend", "{root}/bert", "--to", "64", "-o", "{out}"], "not above"),
    "target below original": (["extend", "{root}/bert", "--to", "10", "-o", "{out}"], "not above"),
    "non-integer target": (["extend", "{root}/bert", "--to", "2k", "-o", "{out}"], "whole number"),
    "negative target": (["extend", "{root}/bert", "--to=-5", "-o", "{out}"], "positive"),
    "missing target": (["extend", "{root}/bert", "-o", "{out}"], "--to"),
    "near-miss method": (
        ["extend", "{root}/bert", "--to", "128", "--method", "cubc", "-o", "{out}"],
        "did you mean 'cubic'",
    ),
    "rope method on a table": (
        ["extend", "{root}/bert", "--to", "128", "--method", "yarn", "-o", "{out}"],
        "for rope models",
    ),
    "wrong table path": (
        ["extend", "{root}/bert", "--to", "128", "--table", "embeddings.posit", "-o", "{out}"],
        "no position table",
    ),
    "offset beyond table": (["extend", "{root}/bert", "--to", "128", "--offset", "64", "-o", "{out}"], "offset 64"),
    "negative offset": (["extend", "{root}/bert", "--to", "128", "--offset=-1", "-o", "{out}"], "offset -1"),
    "unknown family": (["extend", "{root}/unknown-family", "--to", "128", "-o", "{out}"], "unknown model family"),
    "relative-position model": (["extend", "{root}/deberta", "--to", "1024", "-o", "{out}"], "relative positions"),
    "table method on a rope model": (
        ["extend", "{root}/llama", "--to", "4096", "--method", "cubic", "-o", "{out}"],
        "for learned position tables",
    ),
    "run-time attention method written to a folder": (
        ["extend", "{root}/llama", "--to", "4096", "--method", "dca", "-o", "{out}"],
        "no saved file can carry it",
    ),
    "attention method misspelt": (
        ["extend", "{root}/llama", "--to", "4096", "--method", "self-extnd", "-o", "{out}"],
        "did you mean 'self-extend'",
    ),
    "tune on an encoder": (
        ["extend", "{root}/bert", "--to", "128", "--tune", "{root}/a-file.txt", "-o", "{out}"],
        "applies to rope decoders",
    ),
    "existing output": (["extend", "{root}/bert", "--to", "128", "-o", "{root}/existing"], "already exists"),
    "output parent missing": (["extend", "{root}/bert", "--to", "128", "-o", "{root}/no/such/dir"], "does not exist"),
    "output under a file": (["extend", "{root}/bert", "--to", "128", "-o", "{root}/a-file.txt/out"], "does not exist"),
    "double to a wrong length": (
        ["extend", "{root}/bert", "--to", "100", "--method", "double", "-o", "{out}"],
        "doubles the table to 128",
    ),
    "keep-first too large": (
        ["extend", "{root}/bert", "--to", "128", "--keep-first", "64", "-o", "{out}"],
        "below the model",
    ),
    "keep-first not a number": (
        ["extend", "{root}/bert", "--to", "128", "--keep-first", "half", "-o", "{out}"],
        "--keep-first takes",
    ),
    "keep-first auto with no trained window": (
        ["extend", "{root}/bert", "--to", "128", "--keep-first", "auto", "-o", "{out}"],
        "trained window",
    ),
    "from-window not a number": (
        ["extend", "{root}/bert", "--to", "128", "--from-window", "most", "-o", "{out}"],
        "--from-window takes",
    ),
    "keep-first not below from-window": (
        ["extend", "{root}/bert", "--to", "128", "--keep-first", "32", "--from-window", "16", "-o", "{out}"],
        "below --from-window 16",
    ),
    "keep-cls on an offset model": (
        ["extend", "{root}/roberta", "--to", "128", "--keep-cls", "-o", "{out}"],
        "offset 0",
    ),
    "missing output flag": (["extend", "{root}/bert", "--to", "128"], "required"),
    "unknown verb": (["stretch", "{root}/bert"], "invalid choice"),
    "texts file missing": (
        ["extend", "{root}/bert", "--to", "128", "--texts", "{root}/none.txt", "-o", "{out}"],
        "cannot read texts",
    ),
}

EVAL = [
    "eval",
    "{root}/tiny-llama",
    "--task",
    "ppl",
    "--lengths",
    "64",
    "--data",
    "{root}/a-file.txt",
    "-o",
    "{out}.json",
]
MORE_CASES = {
    "binary config.json": (["extend", "{root}/binary-config", "--to", "128", "-o", "{out}"], "not utf-8"),
    "pickle .bin that is not tensors": (["extend", "{root}/pickle-bin", "--to", "128", "-o", "{out}"], "only tensors"),
    "config that needs remote code": (["extend", "{root}/remote-code", "--to", "128", "-o", "{out}"], "own python"),
    "table width not the config's": (["extend", "{root}/width-mismatch", "--to", "128", "-o", "{out}"], "wide"),
    "encoder target beyond memory": (["extend", "{root}/bert", "--to", str(10**9), "-o", "{out}"], "gib"),
    "max_position_embeddings 0": (["extend", "{root}/zero-context", "--to", "128", "-o", "{out}"], "positive"),
    "rope_theta as a string": (["extend", "{root}/string-theta", "--to", "4096", "-o", "{out}"], "rope_theta"),
    "negative --original": (["extend", "{root}/llama", "--to", "4096", "--original=-5", "-o", "{out}"], "positive"),
    "output inside the input": (["extend", "{root}/bert", "--to", "128", "-o", "{root}/bert/out"], "inside"),
    "dtype on a folder": (["extend", "{root}/llama", "--to", "4096", "--dtype", "bfloat16", "-o", "{out}"], "dtype"),
    "a gguf written from a folder": (
        ["extend", "{root}/llama", "--to", "4096", "--format", "gguf", "-o", "{out}.gguf"],
        "convert_hf_to_gguf",
    ),
    "near-miss rope method": (["extend", "{root}/llama", "--to", "4096", "--method", "yarm", "-o", "{out}"], "yarn"),
    "train --to 0": (["train", "{root}/llama", "--to", "0", "--data", "{root}/a-file.txt", "-o", "{out}"], "positive"),
    "train --max-steps 0": (
        ["train", "{root}/llama", "--to", "64", "--max-steps", "0", "--data", "{root}/a-file.txt", "-o", "{out}"],
        "positive",
    ),
    "train an encoder on too little text": (
        ["train", "{root}/bert", "--to", "128", "--data", "{root}/a-file.txt", "-o", "{out}"],
        "needs at least",
    ),
    "train an encoder with --lora": (
        ["train", "{root}/bert", "--to", "128", "--lora", "--data", "{root}/a-file.txt", "-o", "{out}"],
        "is for decoders",
    ),
    "train an encoder with --train-length": (
        ["train", "{root}/bert", "--to", "128", "--train-length", "64", "--data", "{root}/a-file.txt", "-o", "{out}"],
        "--train-length is for decoders",
    ),
    "train an encoder with a batch of one": (
        ["train", "{root}/bert", "--to", "128", "--batch-size", "1", "--data", "{root}/a-file.txt", "-o", "{out}"],
        "at least 2",
    ),
    "train an encoder with a negative --distill": (
        ["train", "{root}/bert", "--to", "128", "--distill=-1", "--data", "{root}/a-file.txt", "-o", "{out}"],
        "cannot be negative",
    ),
    "train a decoder with --distill": (
        ["train", "{root}/llama", "--to", "64", "--distill", "1", "--data", "{root}/a-file.txt", "-o", "{out}"],
        "--distill is for encoders",
    ),
    "eval --backend vllm for drift": ([*EVAL[:3], "drift", *EVAL[4:], "--backend", "vllm"], "measures passkey and ppl"),
    "eval --backend vllm on a file": (
        ["eval", "{root}/a-file.txt", "--task", "ppl", "--lengths", "32", "--backend", "vllm", "-o", "{out}.json"],
        "reads model folders",
    ),
    "eval --max-memory without sizes": ([*EVAL, "--max-memory", "cpu"], "DEVICE=SIZE"),
    "eval --device that is not one": ([*EVAL, "--device", "tpu"], "choose auto"),
    "eval --trials 0": ([*EVAL[:3], "passkey", *EVAL[4:], "--trials", "0"], "positive"),
    "eval --trials -1": ([*EVAL[:3], "passkey", *EVAL[4:], "--trials=-1"], "positive"),
    "eval --depths 1.5": ([*EVAL[:3], "passkey", *EVAL[4:], "--depths", "1.5"], "between 0 and 1"),
    "eval --stride 0": ([*EVAL, "--stride", "0"], "positive"),
    "eval --lengths 0": ([*EVAL[:5], "0", *EVAL[6:]], "positive"),
    "eval output exists": ([*EVAL[:-1], "{root}/existing.json"], "already exists"),
    "eval plot exists": ([*EVAL, "--plot", "{root}/existing.png"], "already exists"),
    "eval data path that does not exist": (
        [*EVAL[:7], "{root}/books/ch1.txt", *EVAL[8:]],
        "no such file",
    ),
    "plot of malformed json": (["plot", "{root}/results-broken.json", "-o", "{out}.png"], "cannot read results"),
    "plot of json that is not results": (["plot", "{root}/results-other.json", "-o", "{out}.png"], "not a ctxext"),
    "plot output exists": (["plot", "{root}/results-broken.json", "-o", "{root}/existing.png"], "already exists"),
    "conform with an unknown runtime": (
        ["conform", "{root}/llama", "--to", "4096", "--data", "{root}/a-file.txt", "--runtimes", "tgi", "-o", "{out}"],
        "unknown runtime",
    ),
    "yaml in flow style that does not parse": (
        ["extend", "{root}/nemo-flow.yaml", "--to", "4096", "-o", "{out}.yaml"],
        "not valid yaml",
    ),
}
CASES.update(MORE_CASES)


def fill(argv, root, out):
    return [arg.format(root=root, out=out) for arg in argv]


def listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_and_exit_2(models, tmp_path, capsys, name):
    argv, fragment = CASES[name]
    out = tmp_path / "out"
    before, before_here = listing(models), listing(tmp_path)
    code = run(main, fill(argv, models, out))
    captured = capsys.readouterr()
    assert code == 2
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("ctxext: error: ")
    assert fragment.lower() in lines[0].lower()
    assert "Traceback" not in captured.err
    assert not out.exists()
    assert listing(models) == before and listing(tmp_path) == before_here


def test_seed_drop_in_bad_input_is_one_line(models, tmp_path, capsys):
    code = run(
        spline_main,
        ["--model_name_or_path", str(models / "bert"), "--max_seq_length", "32", "--output_dir", str(tmp_path / "o")],
        prog="extend-context-spline",
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "not above" in err
    code = run(linear_main, ["--model_name_or_path", str(models / "bert")], prog="extend-context-linear")
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--output_dir" in err


def test_installed_command_has_no_traceback(models, tmp_path):
    """Through the real console script, in its own process."""
    ctxext = Path(sys.executable).with_name("ctxext")
    result = subprocess.run(
        [str(ctxext), "extend", str(models / "corrupt"), "--to", "128", "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "corrupt" in result.stderr, result.stderr
    assert not (tmp_path / "o").exists()


def test_failure_after_writing_started_leaves_nothing(models, tmp_path, monkeypatch):
    """A failure inside the atomic write (here: the check of the written model) removes the staging folder."""
    import ctxext.extend.encoder_folder as encoder
    from ctxext.errors import CtxextError

    def failing_verify(*args, **kwargs):
        raise CtxextError("simulated failure while checking the written model")

    monkeypatch.setattr(encoder, "verify", failing_verify)
    before = listing(tmp_path)
    assert run(main, ["extend", str(models / "bert"), "--to", "128", "-o", str(tmp_path / "out")]) == 2
    assert listing(tmp_path) == before


def test_existing_output_is_replaced_only_with_overwrite(models, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    assert run(main, ["extend", str(models / "bert"), "--to", "128", "-o", str(out), "--no-check", "--overwrite"]) == 0
    assert not (out / "old.txt").exists() and (out / "model.safetensors").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_bad_inputs_in_a_real_process_print_one_line(models, tmp_path):
    """The issue's cases through the installed console script: one stderr line, exit 2, nothing written."""
    ctxext = Path(sys.executable).with_name("ctxext")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    def one(item):
        name, (argv, fragment) = item
        out = tmp_path / name.replace(" ", "-")
        done = subprocess.run(
            [str(ctxext), *fill(argv, models, out)], capture_output=True, text=True, env=env, timeout=300
        )
        return name, out, done, fragment

    before = listing(models)
    with ThreadPoolExecutor(2) as pool:
        for name, out, done, fragment in pool.map(one, MORE_CASES.items()):
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            assert done.returncode == 2 and len(lines) == 1, (name, done.stderr[-2000:])
            assert fragment.lower() in lines[0].lower(), (name, lines[0])
            assert not out.exists(), name
    assert listing(models) == before
