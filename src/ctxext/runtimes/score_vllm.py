"""Score tokens with vLLM: ``python score_vllm.py REQUEST.json`` in an environment that has vLLM.

Standalone on purpose (no ctxext import): it runs in vLLM's own environment, whose library versions differ
from ctxext's. The request names a model folder, the token ids, and the first target position to score;
the last line printed is a JSON object with the summed negative log-likelihood of the scored targets.
With ``windows`` (token lists, each with its own ``score_from``) it prints every scored target's
log-probability per window; with ``prompts`` (lists of token ids) it decodes each greedily for
``max_tokens`` tokens and prints the generated ids.
"""

import json
import math
import os
import sys
import time


def main() -> None:
    request = json.loads(open(sys.argv[1], encoding="utf-8").read())
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(request.get("kv_cache_gib", 4)))
    if "windows" in request or "prompts" in request:
        # a window of L inputs is L + 1 prompt tokens (the last only a target) + 1 output never read; a passkey
        # prompt of L tokens generates a few more: positions just past the window, as in transformers
        os.environ["VLLM_ALLOW_LONG_MAX_MODEL_LEN"] = "1"
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    started = time.perf_counter()
    # gpu_memory_utilization only where asked: otherwise vLLM's default share of each GPU
    memory = (
        {"gpu_memory_utilization": request["gpu_memory_utilization"]} if "gpu_memory_utilization" in request else {}
    )
    overrides = {"hf_overrides": request["hf_overrides"]} if "hf_overrides" in request else {}  # vllm-overrides files
    try:
        llm = LLM(
            model=request["model"],
            dtype=request.get("dtype", "auto"),  # auto: the model's own dtype, as served
            max_model_len=request.get("max_model_len"),  # None: what vLLM derives from the config, as users get
            max_num_seqs=request.get("batch", 1),
            tensor_parallel_size=request.get("tensor_parallel", 1),
            enforce_eager=True,
            skip_tokenizer_init=True,
            seed=0,
            **memory,
            **overrides,
        )
    except Exception as exc:  # vLLM refuses the config: that is a result, not a crash
        print(json.dumps({"error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:300]}"}))
        return
    if "prompts" in request:
        greedy = SamplingParams(max_tokens=request.get("max_tokens", 8), temperature=0.0, detokenize=False)
        outputs = llm.generate([TokensPrompt(prompt_token_ids=p) for p in request["prompts"]], greedy, use_tqdm=False)
        generated = [list(o.outputs[0].token_ids) for o in outputs]
        print(json.dumps({"generated": generated, "seconds": time.perf_counter() - started}), flush=True)
        return
    params = SamplingParams(max_tokens=1, prompt_logprobs=0, detokenize=False)
    if "windows" in request:  # many windows in one engine: every target's log-probability, per window
        prompts = [TokensPrompt(prompt_token_ids=w["tokens"]) for w in request["windows"]]
        outputs = llm.generate(prompts, params, use_tqdm=False)
        logprobs = [
            [o.prompt_logprobs[i][w["tokens"][i]].logprob for i in range(w["score_from"], len(w["tokens"]))]
            for o, w in zip(outputs, request["windows"], strict=True)
        ]
        print(json.dumps({"logprobs": logprobs, "seconds": time.perf_counter() - started}), flush=True)
        return
    tokens, first = request["tokens"], request["score_from"]
    output = llm.generate([TokensPrompt(prompt_token_ids=tokens)], params, use_tqdm=False)[0]
    logprobs = [output.prompt_logprobs[i][tokens[i]].logprob for i in range(first, len(tokens))]
    nll = -sum(logprobs)
    result = {
        "nll": nll if math.isfinite(nll) else None,
        "count": len(logprobs),
        "finite": all(math.isfinite(v) for v in logprobs),
        "seconds": time.perf_counter() - started,
        "max_model_len": llm.llm_engine.model_config.max_model_len,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
