#!/usr/bin/env bash
# Encoder levers on all-MiniLM-L6-v2 (table 512, trained window 256): chapter retrieval (queries are
# sentences beyond token 600 of ~50 chapters of two Austen novels), synthetic passkey and needle, at
# 1024 / 2048 / 4096, against truncation and chunk-and-mean-pool, then short-text drift per lever.
# truncate, chunk, linear, cubic and cubic+keep at the same settings come from `bench/eval_runs.sh minilm-retrieval`.
# usage: bash bench/encoder_levers.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
corpus=${CTXEXT_CORPUS:-../shared/corpus}
out=bench/results
mkdir -p "$out"
minilm=$(.venv/bin/python -c "import sys; sys.path.insert(0, 'bench'); import assets; print(assets.minilm())")
levers=pchip,cubic+trained,cubic+keep128+trained,tile,group,tile+logn,cubic+keep+logn
.venv/bin/ctxext eval "$minilm" --task retrieval --lengths 1024 2048 4096 --to 4096 --methods "$levers" \
  --data "$corpus/persuasion.txt" "$corpus/northangerabbey.txt" \
  -o "$out/minilm_levers_retrieval.json" --plot "$out/minilm_levers_retrieval.png"
for to in 2048 4096; do
  .venv/bin/ctxext eval "$minilm" --task drift --lengths "$to" --to "$to" \
    --methods cubic+trained,cubic+keep128+trained,tile,group \
    -o "$out/minilm_levers_drift_$to.json"
done
