#!/usr/bin/env bash
# Position Interpolation (and YaRN) plus a short full fine-tune at 2x on SmolLM2-135M-Instruct: held-out
# perplexity at 16k on Persuasion after 0, 5, 10, 20 and 40 steps of `ctxext train` (LR=1e-4 constant, one
# sequence a step; Emma, Pride and Prejudice, Sense and Sensibility), against the native model at 8k on the same
# tokens (bench/rope_ppl.py).
# A control arm fine-tunes the native model the same way inside its own window and scores it at 8k, so what the
# new length buys is told apart from what the Austen text alone buys.
# TRAIN_LENGTH=2048 (default) trains 2,048-token sequences whose positions skip across the window (PoSE,
# `--train-length`; about 20 s a step on 2 CPU cores); TRAIN_LENGTH=$TO trains whole 16k sequences (the PI
# paper's recipe; minutes a step on a CPU, sized for an accelerator).
# usage: bash bench/pi_finetune_curve.sh   (TO=16384 STEPS=40 SCORED="5 10 20 40" WORK=runs/pi-finetune;
#        DRY=echo prints the scoring command instead of running it)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
corpus=${CTXEXT_CORPUS:-../shared/corpus}
to=${TO:-16384}
steps=${STEPS:-40}
scored=${SCORED:-5 10 20 40}
train_length=${TRAIN_LENGTH:-2048}
learning_rate=${LR:-1e-4}
work=${WORK:-runs/pi-finetune}
out=${OUT:-bench/results/pi_finetune_curve}
mkdir -p "$work" bench/results
smollm2=$(.venv/bin/python -c "import sys; sys.path.insert(0, 'bench'); import assets; print(assets.smollm2_gguf())")
data=("$corpus/emma.txt" "$corpus/prideprejudice.txt" "$corpus/sensesensibility.txt")
[ -f "$work/native/config.json" ] || .venv/bin/python -c "
import sys; from pathlib import Path; from ctxext.formats.gguf_to_hf import gguf_to_hf_folder
Path(sys.argv[2]).mkdir(parents=True, exist_ok=True); gguf_to_hf_folder(Path(sys.argv[1]), Path(sys.argv[2]))" \
  "$smollm2" "$work/native"
native_length=$(.venv/bin/python -c "import json,sys; print(json.load(open(sys.argv[1]))['max_position_embeddings'])" \
  "$work/native/config.json")

# train ARM SOURCE LENGTH: fine-tune SOURCE at LENGTH, checkpoint every 5 steps, keep the weights of the scored steps
train() {
  local arm=$1 source=$2 length=$3 skip=()
  [ "$train_length" -lt "$length" ] && skip=(--train-length "$train_length")
  [ -d "$work/$arm-$steps" ] || /usr/bin/time -v .venv/bin/ctxext train "$source" --to "$length" "${skip[@]}" \
    --max-steps "$steps" --learning-rate "$learning_rate" --save-steps 5 --data "${data[@]}" -o "$work/$arm-$steps" --overwrite \
    2> >(tee "$work/$arm.time" | grep -E "Elapsed|Maximum resident" >&2)
  for checkpoint in "$work/$arm-$steps.checkpoints"/checkpoint-*; do
    step=${checkpoint##*-}
    if [[ " $scored " == *" $step "* ]]; then
      rm -f "$checkpoint"/optimizer.pt "$checkpoint"/scheduler.pt "$checkpoint"/rng_state.pth
    else
      rm -rf "$checkpoint"
    fi
  done
}

folders=()
for method in linear yarn; do
  [ -d "$work/$method-0" ] || .venv/bin/ctxext extend "$smollm2" --to "$to" --method "$method" --format hf \
    -o "$work/$method-0"
  train "$method" "$work/$method-0" "$to"
  folders+=(--folder "$method+0=$work/$method-0")
  for step in $scored; do folders+=(--folder "$method+$step=$work/$method-$steps.checkpoints/checkpoint-$step"); done
done
train native "$work/native" "$native_length"
for step in $scored; do
  folders+=(--folder "native+$step@$native_length=$work/native-$steps.checkpoints/checkpoint-$step")
done
${DRY:-} .venv/bin/python bench/rope_ppl.py --gguf "$smollm2" --to "$to" --methods '' --skip-none "${folders[@]}" \
  --work "$work" --out "$out.json"
${DRY:-} .venv/bin/python bench/plot_finetune_curve.py "$out.json" -o "$out.png"
