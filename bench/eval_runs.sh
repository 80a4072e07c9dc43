#!/usr/bin/env bash
# Real evaluation runs recorded in BENCHMARKS.md (minutes each on 2 CPU cores; not part of CI).
# usage: bash bench/eval_runs.sh [smollm2-ppl|smollm2-passkey|minilm-retrieval|minilm-drift|all]
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
corpus=${CTXEXT_CORPUS:-../shared/corpus}
out=bench/results
mkdir -p "$out"
smollm2=$(.venv/bin/python -c "import sys; sys.path.insert(0, 'bench'); import assets; print(assets.smollm2_gguf())")
minilm=$(.venv/bin/python -c "import sys; sys.path.insert(0, 'bench'); import assets; print(assets.minilm())")
what=${1:-all}

if [[ $what == smollm2-ppl || $what == all ]]; then
  .venv/bin/ctxext eval "$smollm2" --task ppl --lengths 2048 4096 8192 --data "$corpus/persuasion.txt" \
    --stride 2048 --max-tokens 12289 -o "$out/smollm2_ppl.json" --plot "$out/smollm2_ppl.png"
fi
if [[ $what == smollm2-passkey || $what == all ]]; then
  .venv/bin/ctxext eval "$smollm2" --task passkey --lengths 2048 4096 8192 --depths 0.1 0.5 0.9 --trials 2 \
    -o "$out/smollm2_passkey.json" --plot "$out/smollm2_passkey.png"
fi
if [[ $what == minilm-retrieval || $what == all ]]; then
  .venv/bin/ctxext eval "$minilm" --task retrieval --lengths 512 1024 2048 4096 \
    --methods truncate,chunk,linear,cubic,cubic+keep --data "$corpus/persuasion.txt" "$corpus/northangerabbey.txt" \
    -o "$out/minilm_retrieval.json" --plot "$out/minilm_retrieval.png"
fi
if [[ $what == minilm-drift || $what == all ]]; then
  for to in 1024 2048 4096; do
    .venv/bin/ctxext eval "$minilm" --task drift --lengths "$to" --methods linear,cubic,pchip,cubic+keep --to "$to" \
      -o "$out/minilm_drift_$to.json"
  done
fi
