"""Encode one long text with an original and an extended Sentence-Transformers folder, side by side.

usage: python scripts/long_input.py ORIGINAL EXTENDED [--tokens N]
"""

import argparse
import time

import transformers
from sentence_transformers import SentenceTransformer

transformers.logging.set_verbosity_error()
transformers.logging.disable_progress_bar()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("original")
    parser.add_argument("extended")
    parser.add_argument("--tokens", type=int, default=2000)
    args = parser.parse_args()
    extended = SentenceTransformer(args.extended, device="cpu")
    words = (
        "It is a truth universally acknowledged, that a single man in possession of a good fortune, "
        "must be in want of a wife. "
    ).split() * 200
    while len(extended.tokenizer(" ".join(words))["input_ids"]) > args.tokens:
        words = words[:-5]
    text = " ".join(words)
    count = len(extended.tokenizer(text)["input_ids"])
    for name, path in (("original", args.original), ("extended", args.extended)):
        model = extended if name == "extended" else SentenceTransformer(path, device="cpu")
        model.max_seq_length = max(model.max_seq_length, count)
        start = time.perf_counter()
        try:
            vector = model.encode([text])
            print(
                f"{name:9} {count}-token text -> embedding of {vector.shape[1]} dims "
                f"in {time.perf_counter() - start:.2f} s"
            )
        except (RuntimeError, IndexError) as exc:
            print(f"{name:9} {count}-token text -> fails: {str(exc).splitlines()[0][:100]}")


if __name__ == "__main__":
    main()
