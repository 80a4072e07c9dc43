#!/usr/bin/env bash
# RULER on SmolLM2-135M-Instruct (the packaged Q4_1 GGUF, dequantized to float32) at 16384 tokens (2x its
# 8192-token window) for the methods bench/ruler_smollm2_2x.sh did not run there: the four subtasks of that
# script (niah_single_1, niah_multikey_2, vt, cwe), 6 prompts each, one results file per method in
# bench/results/ruler_2x/, written after each cell (--resume picks a cut run up where it stopped).
# Usage: bash bench/ruler_smollm2_16k.sh [METHOD...]   (default: self-extend ntk dca dynamic longrope)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
model=$(.venv/bin/python -c "import sys; sys.path.insert(0, 'bench'); import assets; print(assets.smollm2_gguf())")
out=bench/results/ruler_2x
mkdir -p "$out"
methods=("${@:-self-extend ntk dca dynamic longrope}")
for method in ${methods[@]}; do
    .venv/bin/ctxext eval "$model" --task ruler --lengths 16384 --methods "$method" \
        --subtasks niah_single_1,niah_multikey_2,vt,cwe --samples 6 -o "$out/${method}_16k.json" --resume
done
