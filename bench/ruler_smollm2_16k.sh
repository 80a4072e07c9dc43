#!/usr/bin/env bash
# RULER on SmolLM2-135M-Instruct (the packaged Q4_1 GGUF, dequantized to float32) at 16384 tokens (2x its
# 8192-token window) for the methods bench/ruler_smollm2_2x.sh did not run there: the four subtasks of that
# script (niah_single_1, niah_multikey_2, vt, cwe), 6 prompts each. One `ctxext eval` per subtask, then the four
# merged into bench/results/ruler_2x/METHOD_16k.json (the files in by_subtask/ were made this way; one eval over
# the four would now do as well: eval saves after each subtask and --resume keeps the finished ones).
# Usage: bash bench/ruler_smollm2_16k.sh [METHOD...]   (default: self-extend ntk dca dynamic string+yarn)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
model=$(.venv/bin/python -c "import sys; sys.path.insert(0, 'bench'); import assets; print(assets.smollm2_gguf())")
out=bench/results/ruler_2x
mkdir -p "$out/by_subtask"
methods=("${@:-self-extend ntk dca dynamic string+yarn}")
subtasks=(niah_single_1 niah_multikey_2 vt cwe)
for method in ${methods[@]}; do
    parts=()
    for subtask in "${subtasks[@]}"; do
        part="$out/by_subtask/${method}_16k_${subtask}.json"
        .venv/bin/ctxext eval "$model" --task ruler --lengths 16384 --methods "$method" \
            --subtasks "$subtask" --samples 6 -o "$part" --resume
        parts+=("$part")
    done
    .venv/bin/python bench/merge_results.py "${parts[@]}" -o "$out/${method}_16k.json"
done
