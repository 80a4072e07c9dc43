"""What ctxext never runs or trusts: interpreters planted in the current folder."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ctxext import runtimes
from ctxext.errors import CtxextError


def _plant_interpreter(folder: Path, venv: str) -> Path:
    """A fake interpreter that leaves a mark when anyone runs it."""
    python = folder / venv / "bin" / "python"
    python.parent.mkdir(parents=True)
    mark = folder / "ran"
    python.write_text(f"#!/bin/sh\ntouch {mark}\necho '{{}}'\n")
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    return mark


@pytest.mark.parametrize("name", ["vllm", "llama.cpp"])
def test_runtime_interpreter_is_never_taken_from_the_current_folder(tmp_path, monkeypatch, name):
    runtime = runtimes.RUNTIMES[name]
    mark = _plant_interpreter(tmp_path, runtime.venv)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(runtime.env_var, raising=False)
    monkeypatch.setattr(runtimes, "install_roots", lambda: (tmp_path / "elsewhere",))
    assert runtimes.runtime_python(runtime) is None
    with pytest.raises(CtxextError, match="not installed"):
        runtimes.score_external(name, tmp_path, [1, 2, 3], 1)
    assert not mark.exists()


def test_install_roots_are_the_checkout_and_ctxexts_environment_not_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    roots = runtimes.install_roots()
    assert tmp_path not in roots
    assert Path(__file__).resolve().parents[1] in roots  # the checkout these tests run from


def test_runtime_interpreter_from_its_setting_is_used(tmp_path, monkeypatch):
    runtime = runtimes.RUNTIMES["vllm"]
    mark = _plant_interpreter(tmp_path, "chosen")
    monkeypatch.setenv(runtime.env_var, str(tmp_path / "chosen" / "bin" / "python"))
    runtimes.score_external("vllm", tmp_path, [1, 2, 3], 1)
    assert mark.exists()
