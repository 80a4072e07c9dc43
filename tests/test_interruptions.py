"""What a kill leaves: a training checkpoint cut off while it was written is never resumed from, and SIGTERM ends
every verb in one line with exit code 143, whatever it was doing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from ctxext.train.checkpoints import is_complete
from ctxext.train.trainer import train

CTXEXT = os.path.join(os.path.dirname(sys.executable), "ctxext")


@pytest.fixture(scope="module")
def setup(tiny_training):
    return tiny_training


@pytest.mark.parametrize("cut", ["state half-written", "state missing"])
def test_resume_skips_a_checkpoint_cut_off_while_written_and_completes(setup, tmp_path, cut):
    _, source, text = setup
    out = tmp_path / "out"
    first = train(source, out, 128, [str(text)], max_steps=4, learning_rate=1e-3, save_steps=2)
    checkpoints = tmp_path / "out.checkpoints"
    last = checkpoints / "checkpoint-4"
    assert first["steps"] == 4 and is_complete(last)
    state = last / "trainer_state.json"
    if cut == "state missing":  # killed before the Trainer wrote its state, which it writes last
        state.unlink()
    else:
        state.write_text(state.read_text()[: len(state.read_text()) // 2])
    assert not is_complete(last)
    second = train(
        source, out, 128, [str(text)], max_steps=6, learning_rate=1e-3, save_steps=2, resume=True, overwrite=True
    )
    assert second["resumed_from"] == 2 and second["steps"] == 6
    assert is_complete(checkpoints / "checkpoint-6") and is_complete(checkpoints / "checkpoint-4")


def test_resume_with_only_incomplete_checkpoints_is_one_line(setup, tmp_path, capsys):
    from ctxext.cli.main import main, run

    _, source, text = setup
    broken = tmp_path / "out.checkpoints" / "checkpoint-2"
    broken.mkdir(parents=True)
    (broken / "model.safetensors").write_bytes(b"\0" * 16)
    argv = ["train", str(source), "--to", "128", "--data", str(text), "--resume", "-o", str(tmp_path / "out")]
    assert run(main, argv) == 2
    assert "no complete checkpoint" in capsys.readouterr().err
    assert not broken.exists()


def _terminated_after(argv: list[str], seconds: float) -> subprocess.CompletedProcess:
    process = subprocess.Popen([CTXEXT, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(seconds)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(argv, process.returncode, "", err)


@pytest.mark.parametrize("seconds", [0.3, 1.0, 2.5, 5.0])
def test_sigterm_at_any_phase_is_one_line_and_exit_143(setup, tmp_path, seconds):
    root, source, text = setup
    argv = ["eval", str(source), "--task", "ppl", "--lengths", "32", "64", "--methods", "none,yarn,linear"]
    done = _terminated_after([*argv, "--to", "128", "--data", str(text), "-o", str(tmp_path / "r.json")], seconds)
    lines = [line for line in done.stderr.splitlines() if line.strip() and "it/s" not in line and "/s]" not in line]
    assert "Traceback" not in done.stderr
    if done.returncode != 0:  # 0: the run was done before the signal came
        assert done.returncode == 143 and lines[-1] == "ctxext: terminated", done.stderr[-2000:]


def test_sigterm_after_the_work_ends_at_once_in_one_line(tmp_path):
    script = (
        "import os, signal, time\n"
        "from ctxext.cli.main import run\n"
        "assert run(lambda argv: None, []) == 0\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "time.sleep(30)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 143 and done.stderr == "ctxext: terminated\n"
