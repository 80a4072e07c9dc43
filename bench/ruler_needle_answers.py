"""Which needle each answer of a RULER niah run came from: the prompts are rebuilt from the results file's seed
(they are deterministic), and each number or UUID a continuation gives is looked up among the prompt's needles.

    python bench/ruler_needle_answers.py bench/results/ruler_2x/by_subtask/dca_16k_niah_multikey_2.json

Needs a results file that keeps its continuations (``outputs``), the model's tokenizer at the recorded path, and,
for essay haystacks, the same ``--data``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from transformers import AutoTokenizer

from ctxext.eval.tasks.ruler import NEEDLE, Builder
from ctxext.texts import read_corpus

VALUE = r"(\d{7}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path)
    args = parser.parse_args()
    record = json.loads(args.results.read_text())
    config, model = record["config"], Path(record["model"])
    if model.suffix == ".gguf":
        tokenizer = AutoTokenizer.from_pretrained(str(model.parent), gguf_file=model.name)
    else:
        tokenizer = AutoTokenizer.from_pretrained(str(model))
    text = read_corpus(config["data"]) if config.get("data") else None
    builder = Builder(tokenizer, text, config.get("chat", False))
    needle = re.compile(
        re.escape(NEEDLE).replace(r"\{kind\}", r"\w+").replace(r"\{key\}", r"(\S+)").replace(r"\{value\}", VALUE)
    )
    for method, rows in record["results"]["ruler"].items():
        for length, row in rows.items():
            for name, task in row["tasks"].items():
                if not name.startswith("niah") or "outputs" not in task:
                    continue
                for index, output in enumerate(task["outputs"]):
                    sample = builder.sample(name, int(length), index, config.get("seed", 0))
                    values = [value for _, value in needle.findall(tokenizer.decode(sample.ids))]
                    asked = [values.index(answer) for answer in output["answers"] if answer in values]
                    given = list(dict.fromkeys(re.findall(VALUE, output["prediction"])))
                    found = [values.index(value) if value in values else None for value in given]
                    print(f"{method} {length} {name} #{index}: {len(values)} needles, asked {asked}, answered {found}")


if __name__ == "__main__":
    main()
