"""Models by hub id: resolved through huggingface_hub's cache with the network off (HF_HUB_OFFLINE=1), a cache laid
out here as the hub lays it out (models--org--name/snapshots/<commit>/, refs/<branch>)."""

from __future__ import annotations

import json
import shutil

import pytest
from huggingface_hub import constants

import tiny
from ctxext.cli.main import main, run
from ctxext.cli.seed import spline_main

MAIN, V1 = "a" * 40, "b" * 40


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    repo = cache / "models--acme--tiny-bert"
    for commit, family in ((MAIN, "bert"), (V1, "roberta")):  # two revisions that inspect tells apart
        tiny.save(family, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(MAIN)
    (repo / "refs" / "v1").write_text(V1)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    assert constants.HF_HUB_OFFLINE  # conftest turns the network off
    return repo


def test_a_hub_id_resolves_from_the_local_cache(hub_cache, tmp_path, capsys):
    assert run(main, ["inspect", "acme/tiny-bert", "--to", "128"]) == 0
    printed = capsys.readouterr().out
    assert str(hub_cache / "snapshots" / MAIN) in printed and "bert" in printed and "roberta" not in printed
    assert run(main, ["inspect", "acme/tiny-bert", "--revision", "v1", "--to", "128"]) == 0
    assert "roberta" in capsys.readouterr().out
    out = tmp_path / "out"
    assert run(main, ["extend", "acme/tiny-bert", "--to", "128", "-o", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["max_position_embeddings"] == 128


def test_the_seed_drop_in_takes_a_hub_id(hub_cache, tmp_path):
    out = tmp_path / "seed-out"
    argv = ["--model_name_or_path", "acme/tiny-bert", "--max_seq_length", "128", "--output_dir", str(out)]
    assert run(spline_main, argv, prog="extend-context-spline") == 0
    assert json.loads((out / "config.json").read_text())["max_position_embeddings"] == 128


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["inspect", "acme/missing"], "nor a model in the local cache"),
        (["inspect", "acme/tiny-bert", "--revision", "v9"], "nor a model in the local cache"),
    ],
)
def test_a_hub_id_not_in_the_cache_is_one_line(hub_cache, capsys, argv, fragment):
    assert run(main, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err


def test_revision_on_a_local_path_is_refused(hub_cache, tmp_path, capsys):
    local = tmp_path / "local"
    shutil.copytree(hub_cache / "snapshots" / MAIN, local)
    assert run(main, ["inspect", str(local), "--revision", "v1"]) == 2
    assert "--revision applies to a hub id" in capsys.readouterr().err


def test_a_hub_id_fetches_only_what_the_verbs_read(monkeypatch, tmp_path):
    """Llama-3.1's repository also holds its original 16 GB checkpoint; a download of it is never asked for."""
    import fnmatch

    import huggingface_hub

    from ctxext.hub import resolve_model

    asked = {}
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda name, **kw: asked.update(kw) or str(tmp_path))
    assert resolve_model("meta-llama/Llama-3.1-8B") == str(tmp_path)
    skipped = asked["ignore_patterns"]
    for unread in ("original/consolidated.00.pth", "flax_model.msgpack", "onnx/model.onnx"):
        assert any(fnmatch.fnmatch(unread, pattern) for pattern in skipped), unread
    for read in ("model-00001-of-00004.safetensors", "config.json", "tokenizer.json", "tokenizer.model"):
        assert not any(fnmatch.fnmatch(read, pattern) for pattern in skipped), read
