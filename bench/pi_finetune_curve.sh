#!/usr/bin/env bash
# Position Interpolation (and YaRN) plus a short full fine-tune at 2x on SmolLM2-135M-Instruct: held-out perplexity
# at 16k on Persuasion after 0, 5, 10, 20 and 40 steps of `ctxext train` (one 16k sequence a step, lr 2e-5, Emma,
# Pride and Prejudice, Sense and Sensibility), against the native model at 8k on the same tokens (bench/rope_ppl.py).
# Sized for an accelerator: one 16k training step takes minutes on 2 CPU cores.
# usage: bash bench/pi_finetune_curve.sh   (TO=16384 STEPS=40 SAVE=5 WORK=runs/pi-finetune by default)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
corpus=${CTXEXT_CORPUS:-../shared/corpus}
to=${TO:-16384}
steps=${STEPS:-40}
save=${SAVE:-5}
work=${WORK:-runs/pi-finetune}
mkdir -p "$work" bench/results
smollm2=$(.venv/bin/python -c "import sys; sys.path.insert(0, 'bench'); import assets; print(assets.smollm2_gguf())")
folders=()
for method in linear yarn; do
  .venv/bin/ctxext extend "$smollm2" --to "$to" --method "$method" --format hf -o "$work/$method-0" --overwrite
  .venv/bin/ctxext train "$work/$method-0" --to "$to" --max-steps "$steps" --save-steps "$save" \
    --gradient-checkpointing --data "$corpus/emma.txt" "$corpus/prideprejudice.txt" "$corpus/sensesensibility.txt" \
    -o "$work/$method-$steps" --overwrite
  folders+=(--folder "$method+0=$work/$method-0")
  for checkpoint in "$work/$method-$steps.checkpoints"/checkpoint-*; do
    step=${checkpoint##*-}
    folders+=(--folder "$method+$step=$checkpoint")
  done
done
.venv/bin/python bench/rope_ppl.py --to "$to" --methods '' --skip-none "${folders[@]}" \
  --work "$work/score" --out bench/results/pi_finetune_curve.json
.venv/bin/python bench/plot_finetune_curve.py bench/results/pi_finetune_curve.json -o bench/results/pi_finetune_curve.png
