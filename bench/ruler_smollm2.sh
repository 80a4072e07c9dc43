#!/usr/bin/env bash
# RULER on SmolLM2-135M-Instruct (the packaged Q4_1 GGUF, dequantized to float32) at 4096 tokens, inside its
# 8192-token window: native attention against STRING, four subtasks (retrieval: niah_single_1 and
# niah_multikey_2, tracing: vt, aggregation: cwe), 6 prompts each, no --data (the haystacks need none).
# Usage: bash bench/ruler_smollm2.sh [LENGTHS...]   (default 4096; about 25 minutes on 2 CPU cores)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
model=$(.venv/bin/python -c "import sys; sys.path.insert(0, 'bench'); import assets; print(assets.smollm2_gguf())")
lengths=("${@:-4096}")
.venv/bin/ctxext eval "$model" --task ruler --lengths "${lengths[@]}" --methods native,string \
    --subtasks niah_single_1,niah_multikey_2,vt,cwe --samples 6 \
    -o bench/results/smollm2_ruler.json --plot bench/results/smollm2_ruler.png --overwrite
