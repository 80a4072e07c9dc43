"""Score tokens with llama.cpp (llama-cpp-python): ``python score_llamacpp.py REQUEST.json``.

Standalone on purpose (no ctxext import): it runs in the environment where llama-cpp-python was compiled.
The request names a GGUF file, the token ids and the first target position to score; the last line printed
is a JSON object with the summed negative log-likelihood of the scored targets. With ``prompts`` instead, it
decodes each greedily for ``max_tokens`` tokens and prints the generated ids. RoPE settings are left to the
file (freq base, scaling type, factor, original context, rope_freqs), as a user's llama.cpp would.
"""

import json
import math
import sys
import time

import numpy as np


def main() -> None:
    request = json.loads(open(sys.argv[1], encoding="utf-8").read())
    from llama_cpp import Llama

    generate = "prompts" in request
    tokens, first = request.get("tokens", []), request.get("score_from", 0)
    n_ctx = max(len(p) for p in request["prompts"]) + request.get("max_tokens", 8) if generate else len(tokens)
    started = time.perf_counter()
    try:
        llm = Llama(
            model_path=request["model"],
            n_ctx=request.get("n_ctx") or n_ctx,
            n_batch=512,
            n_ubatch=512,
            n_threads=request.get("threads", 2),
            logits_all=not generate,
            verbose=False,
        )
    except Exception as exc:  # llama.cpp refuses the file: that is a result, not a crash
        print(json.dumps({"error": f"{type(exc).__name__}: {str(exc).strip()[:300]}"}))
        return
    if generate:
        generated = []
        for prompt in request["prompts"]:
            llm.reset()
            ids = []
            for token in llm.generate(prompt, temp=0.0, top_k=1, reset=True):
                ids.append(int(token))
                if len(ids) >= request.get("max_tokens", 8):
                    break
            generated.append(ids)
        print(json.dumps({"generated": generated, "seconds": time.perf_counter() - started}), flush=True)
        return
    llm.eval(tokens[:-1])
    nll = 0.0
    finite = True
    for position in range(first, len(tokens)):
        row = np.asarray(llm.scores[position - 1], dtype=np.float64)
        top = row.max()
        value = top + math.log(np.exp(row - top).sum()) - row[tokens[position]]
        finite = finite and math.isfinite(value)
        nll += value
    print(
        json.dumps(
            {
                "nll": nll if finite else None,
                "count": len(tokens) - first,
                "finite": finite,
                "seconds": time.perf_counter() - started,
            }
        )
    )


if __name__ == "__main__":
    main()
