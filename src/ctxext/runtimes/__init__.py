"""The runtimes that read what ctxext writes, and how to reach the ones that live in environments of their own.

vLLM pins other library versions than ctxext, and llama-cpp-python is compiled from source, so each runs in
its own virtual environment (``scripts/setup-runtimes.sh`` creates ``.venv-vllm`` and ``.venv-llamacpp``);
ctxext talks to them through small standalone scripts and JSON. ``CTXEXT_VLLM_PYTHON`` /
``CTXEXT_LLAMACPP_PYTHON`` point at another environment's python.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CtxextError
from ..placement import Placement

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Runtime:
    name: str
    reads: str  # "folder" or "gguf"
    script: str | None  # standalone scorer run in the runtime's own environment; None: in this process
    venv: str | None = None
    env_var: str | None = None


RUNTIMES = {
    "transformers": Runtime("transformers", "folder", None),
    "vllm": Runtime("vllm", "folder", "score_vllm.py", ".venv-vllm", "CTXEXT_VLLM_PYTHON"),
    "llama.cpp": Runtime("llama.cpp", "gguf", "score_llamacpp.py", ".venv-llamacpp", "CTXEXT_LLAMACPP_PYTHON"),
}


@dataclass(frozen=True)
class Serving:
    """How a read-back or a conformance run computes: transformers' reference placed by ``place`` (device, dtype,
    device map), and vLLM's engine in the same dtype, over ``tensor_parallel`` GPUs, taking
    ``gpu_memory_utilization`` of each (None: vLLM's own default)."""

    place: Placement = field(default_factory=Placement)
    tensor_parallel: int = 1
    gpu_memory_utilization: float | None = None

    def engine(self) -> dict:
        """The settings ``score_vllm.py`` reads from a request."""
        settings = {"dtype": str(self.place.dtype).removeprefix("torch."), "tensor_parallel": self.tensor_parallel}
        if self.gpu_memory_utilization is not None:
            settings["gpu_memory_utilization"] = self.gpu_memory_utilization
        return settings


def install_roots() -> tuple[Path, ...]:
    """Where a runtime's environment may live: the source checkout ctxext runs from (where
    ``scripts/setup-runtimes.sh`` creates it) and the folder that holds ctxext's own environment. Never the
    current folder: an interpreter found there would run whatever anyone placed in it."""
    checkout = HERE.parents[2]
    roots = [checkout] if (checkout / "pyproject.toml").is_file() and (checkout / "src" / "ctxext").is_dir() else []
    roots.append(Path(sys.prefix).resolve().parent)
    return tuple(dict.fromkeys(roots))


def runtime_python(runtime: Runtime) -> Path | None:
    """The python of the runtime's environment: the environment variable, else its venv in one of
    ``install_roots()``."""
    if runtime.script is None:
        return Path(sys.executable)
    given = os.environ.get(runtime.env_var or "")
    if given:
        return Path(given)
    for root in install_roots():
        candidate = root / runtime.venv / "bin" / "python"
        if candidate.is_file():
            return candidate
    return None


def available(name: str) -> bool:
    return runtime_python(RUNTIMES[name]) is not None


def score_external(name: str, model: Path, tokens: list[int], score_from: int, timeout: float = 3600, **extra) -> dict:
    """Run the runtime's scorer on ``tokens``; {"nll", "count", "finite", "seconds"} or {"error"}."""
    return _run(name, model, {"tokens": tokens, "score_from": score_from, **extra}, timeout)


def score_windows_external(name: str, model: Path, windows: list[dict], timeout: float = 36000, **extra) -> dict:
    """Each window's per-target log-probabilities (``{"tokens", "score_from"}`` each) from one engine start;
    {"logprobs": [[...]...], "seconds"} or {"error"}."""
    return _run(name, model, {"windows": windows, **extra}, timeout)


def generate_external(
    name: str, model: Path, prompts: list[list[int]], max_tokens: int = 8, timeout=3600, **extra
) -> dict:
    """Greedy continuations of each prompt in the runtime; {"generated": [[ids]...], "seconds"} or {"error"}."""
    return _run(name, model, {"prompts": prompts, "max_tokens": max_tokens, **extra}, timeout)


def _run(name: str, model: Path, request: dict, timeout: float) -> dict:
    runtime = RUNTIMES[name]
    python = runtime_python(runtime)
    if python is None:
        raise CtxextError(
            f"{name} is not installed for ctxext: run scripts/setup-runtimes.sh, or set {runtime.env_var}"
        )
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"model": str(model), **request}, handle)
    try:
        done = subprocess.run(
            [str(python), str(HERE / runtime.script), handle.name],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
        )
    except subprocess.TimeoutExpired:
        return {"error": f"{name} did not finish in {timeout:.0f} s"}
    finally:
        os.unlink(handle.name)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:  # a result printed before a crash at shutdown (vLLM's worker teardown) still counts
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"{name} exited with {done.returncode}: {tail[:300]}"}
    return {**json.loads(lines[-1]), "exit_code": done.returncode}
