"""Run in a fresh process: reload extended folders with plain transformers / sentence-transformers while
ctxext cannot be imported, run each on the given ids, and save the outputs.

usage: python reload_plain.py JOBS.pt OUT.pt   (JOBS: list of {"folder", "ids", "sentence"})
"""

import io
import logging
import sys
import warnings


class _BlockCtxext:
    def find_spec(self, name, path=None, target=None):
        if name == "ctxext" or name.startswith("ctxext."):
            raise ImportError("ctxext is blocked in this process")
        return None


sys.meta_path.insert(0, _BlockCtxext())

import torch  # noqa: E402
import transformers  # noqa: E402

log_stream = io.StringIO()
transformers.logging.set_verbosity_warning()
transformers.logging.disable_progress_bar()
handler = logging.StreamHandler(log_stream)
transformers.logging.add_handler(handler)
logging.getLogger("sentence_transformers").addHandler(handler)

jobs = torch.load(sys.argv[1], weights_only=False)
results = []
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for job in jobs:
        with torch.inference_mode():
            if job.get("sentence"):
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(job["folder"], device="cpu")
                output = model.encode(job["texts"], convert_to_tensor=True)
                results.append({"output": output, "max_seq_length": model.max_seq_length})
            else:
                config = transformers.AutoConfig.from_pretrained(job["folder"])
                model_class = getattr(transformers, config.architectures[0])
                model = model_class.from_pretrained(job["folder"]).eval()
                out = model(input_ids=job["ids"])
                tensor = out.logits if hasattr(out, "logits") else out.last_hidden_state
                results.append({"output": tensor, "dtype": str(next(model.parameters()).dtype)})
messages = log_stream.getvalue() + "".join(str(w.message) + "\n" for w in caught)
torch.save({"results": results, "messages": messages, "ctxext_loaded": "ctxext" in sys.modules}, sys.argv[2])
