"""Train only the new position rows of all-MiniLM-L6-v2 (``ctxext train``) on three novels and compare it, on
two novels it never saw, with every zero-training baseline in one results file: truncation, chunk-and-mean-
pool, max-sim over chunks, the tiled table (``ctxext extend``'s default), late chunking with the tiled table,
and the trained model whole and late-chunked. Records training time and peak memory, and the trained model's
read-back (short inputs' largest difference from the original), and how close the trained model's whole-
document embeddings of the held-out chapters stay to the original model's chunk-and-mean ones (mean cosine:
what ``--distill`` is meant to keep high).

usage: python bench/encoder_training.py [--to 4096] [--steps 30] [--batch 8] [--lr 2e-3] [--distill 0]
       [--trained FOLDER] [--lengths 1024 2048 4096] [--baselines truncate,chunk,maxsim,tile,late]
       [-o bench/results/minilm_trained.json]
(``--trained`` reuses a model trained before instead of training again.)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import assets

from ctxext.eval.report import markdown, plot
from ctxext.eval.run import evaluate, write_results

CORPUS = Path(os.environ.get("CTXEXT_CORPUS", Path(__file__).parents[1] / ".." / "shared" / "corpus"))
TRAIN_BOOKS = ["emma.txt", "prideprejudice.txt", "sensesensibility.txt"]
HELD_OUT = ["persuasion.txt", "northangerabbey.txt"]


def train(model: Path, out: Path, args) -> dict:
    command = [
        *("/usr/bin/time", "-v", str(Path(sys.executable).with_name("ctxext")), "train", str(model)),
        *("--to", str(args.to), "--max-steps", str(args.steps), "--batch-size", str(args.batch)),
        *("--learning-rate", str(args.lr), "--distill", str(args.distill), "-o", str(out)),
        *("--data", *[str(CORPUS / b) for b in TRAIN_BOOKS]),
    ]
    start = time.time()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    return {"command": " ".join(command[2:]), "seconds": round(time.time() - start, 1), "peak_rss_gb": peak / 2**20}


def closeness_to_chunks(model: Path, trained: Path, books: list[str], lengths: list[int]) -> dict:
    """Mean cosine, over the held-out chapters cut at each length, between the trained model's whole-document
    embedding and the original model's chunk-and-mean one."""
    import torch

    from ctxext.eval.doc_embedding import embed_documents
    from ctxext.eval.models import load_model
    from ctxext.eval.tasks.retrieval import chapter_task
    from ctxext.texts import read_corpus

    original, ours = load_model(model), load_model(trained)
    chapters = chapter_task(original.tokenizer, [read_corpus(books)]).documents
    result = {}
    for length in lengths:
        chunked = embed_documents(original.embedder, chapters, "chunk", length, original.chunk_window)
        whole = embed_documents(ours.embedder, chapters, "extended", length, ours.chunk_window)
        result[length] = round(torch.cosine_similarity(whole.float(), chunked.float(), dim=-1).mean().item(), 4)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--to", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--distill", type=float, default=0.0)
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--trained", type=Path)
    parser.add_argument("--baselines", default="truncate,chunk,maxsim,tile,late", help="zero-training methods")
    parser.add_argument("-o", "--output", type=Path, default=Path("bench/results/minilm_trained.json"))
    args = parser.parse_args()
    model = assets.minilm()
    trained, training = args.trained, None
    if trained is None:
        trained = args.output.with_suffix("").with_name(args.output.stem + "_model")
        training = train(model, trained, args)
        print(f"trained in {training['seconds']} s, peak RSS {training['peak_rss_gb']:.2f} GB", flush=True)
    record = json.loads((trained / "ctxext.json").read_text())
    data = [str(CORPUS / book) for book in HELD_OUT]
    common = {"task": "retrieval", "lengths": args.lengths, "data": data, "to": args.to}
    baseline = evaluate(str(model), methods=args.baselines.split(","), **common)
    ours = evaluate(str(trained), methods=["native", "native+late"], **common)
    results = baseline["results"]["retrieval"]
    results["trained"] = ours["results"]["retrieval"]["native"]
    results["trained+late"] = ours["results"]["retrieval"]["native+late"]
    baseline["config"].update(
        {
            "methods": list(results),
            "trained_model": str(trained),
            "training": training,
            "train_books": TRAIN_BOOKS,
            "trained_loss": record["loss"],
            "trained_readback": record["verification"],
            "trained_setup": record.get("training"),
            "cosine_to_chunk_mean": closeness_to_chunks(model, trained, data, args.lengths),
        }
    )
    write_results(baseline, args.output)
    plot(baseline, args.output.with_suffix(".png"))
    print(markdown(baseline))
    print(f"short inputs: largest difference {record['verification']['short_input_max_difference']}")
    print(f"cosine to the original chunk-and-mean embedding by length: {baseline['config']['cosine_to_chunk_mean']}")


if __name__ == "__main__":
    main()
