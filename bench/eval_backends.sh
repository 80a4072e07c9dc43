#!/usr/bin/env bash
# Time and peak memory of `ctxext eval --task ppl` at 16k (SmolLM2-135M, YaRN x2, one 16,384-token window (16,384 scored targets) of
# Persuasion) per backend and dtype, one after the other on the same machine: transformers fp32, transformers
# bf16, vLLM (CPU build) fp32. Prints one table; the results JSONs go to runs/backends/.
# usage: bash bench/eval_backends.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
corpus=${CTXEXT_CORPUS:-../shared/corpus}
work=runs/backends
mkdir -p "$work"
smollm2=$(.venv/bin/python -c "import sys; sys.path.insert(0, 'bench'); import assets; print(assets.smollm2_gguf())")
folder=runs/smollm2-hf
if [[ ! -d $folder ]]; then
  .venv/bin/python -c "import sys; from pathlib import Path; from ctxext.formats.gguf_to_hf import gguf_to_hf_folder; \
p = Path(sys.argv[2]); p.mkdir(parents=True); gguf_to_hf_folder(sys.argv[1], p)" "$smollm2" "$folder"
fi
common=(--task ppl --lengths 16384 --stride 16384 --max-tokens 16385 --to 16384 --methods yarn
        --data "$corpus/persuasion.txt" --overwrite)
echo "| backend | dtype | wall s | peak RSS GB | ppl |"
echo "|---|---|---|---|---|"
for run in "transformers fp32" "transformers bf16" "vllm fp32"; do
  set -- $run
  out="$work/$1_$2.json"
  /usr/bin/time -v -o "$work/$1_$2.time" .venv/bin/ctxext eval "$folder" "${common[@]}" --backend "$1" \
    --dtype "$2" --device cpu -o "$out" > "$work/$1_$2.log" 2>&1
  wall=$(grep "Elapsed (wall clock)" "$work/$1_$2.time" | awk '{print $NF}')
  rss=$(grep "Maximum resident set size" "$work/$1_$2.time" | awk '{printf "%.2f", $NF / 1048576}')
  ppl=$(.venv/bin/python -c "import json,sys; r=json.load(open(sys.argv[1])); print(round(r['results']['ppl']['yarn']['16384']['ppl'], 4))" "$out")
  echo "| $1 | $2 | $wall | $rss | $ppl |"
done
