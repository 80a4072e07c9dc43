#!/usr/bin/env bash
# longrope at 2x (16k) on SmolLM2-135M-Instruct with divisors and attention factor searched (`ctxext extend
# --tune`) on Emma, against YaRN on held-out Persuasion (perplexity, bench/rope_ppl.py) and on RULER's four
# subtasks of bench/ruler_smollm2_2x.sh (6 prompts each, the YaRN row's prompts); and what it costs inputs
# inside the original window (2k and 8k windows of Persuasion, against the native model).
# Usage: bash bench/longrope_tune_16k.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
corpus=${CTXEXT_CORPUS:-../shared/corpus}
model=$(.venv/bin/python -c "import sys; sys.path.insert(0, 'bench'); import assets; print(assets.smollm2_gguf())")
tuned=runs/longrope-tuned-16k
if [[ ! -d $tuned ]]; then
  # the three seeds (YaRN ramp, linear, NTK divisors), then 4 attention factors; 1 needle prompt each
  .venv/bin/ctxext extend "$model" --to 16384 --tune "$corpus/emma.txt" --tune-evals 3 --tune-needles 1 \
    --tune-attention 4 --format hf -o "$tuned"
fi
.venv/bin/python bench/rope_ppl.py --to 16384 --methods yarn --folder longrope-tuned="$tuned" --skip-none \
  --skip-native --out bench/results/smollm2_longrope_tuned_16k.json
# what the searched attention factor (applied at every length) costs inputs inside the original window
for name in tuned native; do
  path=$tuned; out=bench/results/smollm2_longrope_tuned_16k_short.json
  [[ $name == native ]] && path=$model && out=bench/results/smollm2_native_short_2k_8k.json
  .venv/bin/ctxext eval "$path" --task ppl --lengths 2048 8192 --methods native --data "$corpus/persuasion.txt" \
    --stride 2048 --max-tokens 16384 -o "$out" --overwrite
done
.venv/bin/ctxext eval "$tuned" --task ruler --lengths 16384 --methods native \
  --subtasks niah_single_1,niah_multikey_2,vt,cwe --samples 6 -o bench/results/ruler_2x/longrope-tuned_16k.json --resume
