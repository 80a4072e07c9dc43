#!/usr/bin/env bash
# SmolLM2-135M perplexity and passkey at 16k (2x) and 32k (4x) on an accelerator, in bf16, each method
# applied in memory (transformers backend), written to bench/results/gpu_*.json. Minutes on one GPU, where the
# same runs take hours on 2 CPU cores. Needs .venv (scripts/setup.sh; on a CUDA machine install the CUDA
# torch wheel first). With a vLLM GPU build in .venv-vllm (or CTXEXT_VLLM_PYTHON), BACKENDS="transformers vllm"
# also measures the served folders.
# Then the PI + fine-tune curve (bench/pi_finetune_curve.sh).
# usage: bash bench/gpu.sh   (DEVICE=cuda DTYPE=bf16 BACKENDS=transformers by default)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
corpus=${CTXEXT_CORPUS:-../shared/corpus}
out=bench/results
device=${DEVICE:-cuda}
dtype=${DTYPE:-bf16}
mkdir -p "$out" runs
smollm2=$(.venv/bin/python -c "import sys; sys.path.insert(0, 'bench'); import assets; print(assets.smollm2_gguf())")
folder=runs/smollm2-hf
if [[ ! -d $folder ]]; then
  # the vLLM backend reads folders: the GGUF dequantized once into a plain folder (8k context, no scaling)
  .venv/bin/python -c "import sys; from pathlib import Path; from ctxext.formats.gguf_to_hf import gguf_to_hf_folder; \
p = Path(sys.argv[2]); p.mkdir(parents=True); gguf_to_hf_folder(sys.argv[1], p)" "$smollm2" "$folder"
fi
for backend in ${BACKENDS:-transformers}; do
  attention=",self-extend,dca"  # run-time attention: transformers only
  [[ $backend == vllm ]] && attention=""
  for to in 16384 32768; do
    .venv/bin/ctxext eval "$folder" --task ppl --lengths 8192 $to --to $to --methods "none,yarn,longrope,linear$attention" \
      --data "$corpus/persuasion.txt" --stride 2048 --device "$device" --dtype "$dtype" --backend "$backend" \
      -o "$out/gpu_ppl_${backend}_${to}.json" --overwrite
    .venv/bin/ctxext eval "$folder" --task passkey --lengths 8192 $to --to $to --methods "yarn,longrope$attention" \
      --depths 0.1 0.3 0.5 0.7 0.9 --trials 5 --device "$device" --dtype "$dtype" --backend "$backend" \
      -o "$out/gpu_passkey_${backend}_${to}.json" --overwrite
  done
done
# PI and YaRN plus 0-40 fine-tuning steps at 16k (the curve of bench/pi_finetune_curve.sh)
bash bench/pi_finetune_curve.sh
