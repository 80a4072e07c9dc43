#!/usr/bin/env bash
# RULER on SmolLM2-135M-Instruct (the packaged Q4_1 GGUF, dequantized to float32) at its window and at 2x:
# native at 8192, yarn (the default, x2) at 16384, STRING at 8192; the four subtasks of ruler_smollm2.sh
# (niah_single_1, niah_multikey_2, vt, cwe), 6 prompts each. One results file per run, merged at the end
# into bench/results/smollm2_ruler_2x.json (+ .png). About two hours on 2 CPU cores (2026-12-04: 82, 164
# and 52 seconds a prompt, the first two beside other jobs).
# Usage: bash bench/ruler_smollm2_2x.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
model=$(.venv/bin/python -c "import sys; sys.path.insert(0, 'bench'); import assets; print(assets.smollm2_gguf())")
out=bench/results/ruler_2x
mkdir -p "$out"
run() {  # NAME METHODS LENGTH
    .venv/bin/ctxext eval "$model" --task ruler --lengths "$3" --methods "$2" \
        --subtasks niah_single_1,niah_multikey_2,vt,cwe --samples 6 -o "$out/$1.json" --resume
}
run native_8k native 8192
run yarn_16k yarn 16384
run string_8k string 8192
# with the 4k run of bench/ruler_smollm2.sh (native and STRING at 4096)
.venv/bin/python bench/merge_results.py bench/results/smollm2_ruler.json "$out/native_8k.json" "$out/yarn_16k.json" \
    "$out/string_8k.json" -o bench/results/smollm2_ruler_2x.json --plot bench/results/smollm2_ruler_2x.png
