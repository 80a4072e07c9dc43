"""RULER (Hsieh et al. 2024, "RULER: What's the Real Context Size of Your Long-Context Language Models?"): effective
context measured by retrieval in several forms, multi-hop tracing and aggregation, rather than one passkey.

The subtasks, templates and scoring follow RULER's synthetic set (NVIDIA/RULER ``scripts/data/synthetic``:
niah.py, variable_tracking.py, common_words_extraction.py, freq_words_extraction.py, and synthetic.yaml),
generated here offline and deterministically from a seed:
  niah_single_1/2/3   one needle; noise / essay / essay haystack; number / number / UUID values
  niah_multikey_1     essay haystack, four needles of which one is asked
  niah_multikey_2/3   a haystack of needles (word keys and numbers / UUID keys and UUIDs), one asked
  niah_multivalue     one key with four values, all asked
  niah_multiquery     four keys, all asked
  vt                  variable tracking: a chain of four assignments (five variables) in noise
  cwe                 common words: ten words 30 times each among words three times each
  fwe                 frequent words: coded words drawn from Zipf(2), the three most frequent asked
  qa_1 / qa_2         a question over documents (qa.py; RULER draws them from SQuAD and HotpotQA): the gold
                      documents among distractors from the other questions, from the user's ``--jsonl``
"essay" haystacks are the ``--data`` texts (RULER uses Paul Graham's essays). A prompt is assembled from token
ids (instruction, haystack cut to fit with needles at sentence starts, question, answer prefix), so it is
exactly the asked number of tokens; ``chat`` wraps it in the model's chat template. RULER's string_match_all
scores a sample by the share of expected answers found, case-insensitively, in the greedy continuation
(string_match_part, for qa: 1 if any is found). A 95%
interval is Wilson's over the samples (:mod:`ctxext.eval.intervals`). A method's effective length is the longest
tested length up to which its average stays at or above a threshold: RULER's 85.6 (Llama-2-7B at 4k), or a
share (0.9) of the model's own average at its native window, which is what a small model can be held to.
"""

from __future__ import annotations

import json
import random
import re
import string
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ...errors import CtxextError, did_you_mean
from ...memory import prompt_batch
from ...texts import default_short_texts
from ..intervals import average_interval, wilson_interval
from ..registry import Task, TaskInput, register
from .passkey import continuations

NOISE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
NIAH_HEAD = (
    "Some special magic {kind} are hidden within the following text. Make sure to memorize it. "
    "I will quiz you about the {kind} afterwards.\n"
)
NIAH_QUESTION = "\nWhat are all the special magic {kind} for {query} mentioned in the provided text?"
NIAH_ANSWER = " The special magic {kind} for {query} mentioned in the provided text are"
NEEDLE = "One of the special magic {kind} for {key} is: {value}."
VT_HEAD = "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n"
VT_QUESTION = "\nQuestion: Find all variables that are assigned the value {value} in the text above."
VT_ANSWER = (
    " Answer: According to the chain(s) of variable assignment in the text above, 5 variables are assigned the "
    "value {value}, they are: "
)
CWE_HEAD = (
    "Below is a numbered list of words. In these words, some appear more often than others. "
    "Memorize the ones that appear most often.\n"
)
CWE_QUESTION = "\nQuestion: What are the 10 most common words in the above list?"
CWE_ANSWER = " Answer: The top 10 words that appear most often in the list are:"
FWE_HEAD = (
    "Read the following coded text and track the frequency of each coded word. Find the three most frequently "
    "appeared coded words. "
)
FWE_QUESTION = (
    "\nQuestion: Do not provide any explanation. What are the three most frequently appeared words in the above "
    "coded text?"
)
FWE_ANSWER = " Answer: According to the coded text above, the three most frequently appeared words are:"
QA_RULE = "Answer the question based on the given documents. Only give me the answer and do not output any other words."
QA_HEAD = QA_RULE + "\n\nThe following are given documents.\n\n"
QA_QUESTION = "\n\n" + QA_RULE + "\n\nQuestion: {query}"
QA_ANSWER = " Answer:"
QA_DOCUMENT = "Document {number}:\n{document}"
QA_FORM = (
    'one JSON object per line: {"query": "...", "outputs": ["answer", ...], "context": ["gold document", ...]}, '
    'optionally "more_context" (related documents) and "subtask" ("qa_1" or "qa_2"; absent: both)'
)


@dataclass(frozen=True)
class Spec:
    family: str  # niah, vt, cwe, fwe
    haystack: str = "noise"  # noise, essay, needles
    keys: str = "words"  # words or uuids
    values: str = "numbers"  # numbers or uuids
    needles: int = 1  # keys written
    values_per_key: int = 1
    queries: int = 1
    new_tokens: int = 128  # RULER's tokens_to_generate
    metric: str = "all"  # string_match_all, or "part" (any one answer)


SUBTASKS = {
    "niah_single_1": Spec("niah", "noise"),
    "niah_single_2": Spec("niah", "essay"),
    "niah_single_3": Spec("niah", "essay", values="uuids"),
    "niah_multikey_1": Spec("niah", "essay", needles=4),
    "niah_multikey_2": Spec("niah", "needles"),
    "niah_multikey_3": Spec("niah", "needles", keys="uuids", values="uuids"),
    "niah_multivalue": Spec("niah", "essay", values_per_key=4),
    "niah_multiquery": Spec("niah", "essay", needles=4, queries=4),
    "vt": Spec("vt", new_tokens=30),
    "cwe": Spec("cwe", new_tokens=120),
    "fwe": Spec("fwe", new_tokens=50),
    "qa_1": Spec("qa", "documents", new_tokens=32, metric="part"),
    "qa_2": Spec("qa", "documents", new_tokens=32, metric="part"),
}


@dataclass
class Sample:
    ids: list[int]
    answers: list[str]
    needle_starts: list[int] = field(default_factory=list)  # token index where each needle begins


def check_subtasks(names: list[str] | None, has_data: bool, has_qa: bool = False) -> list[str]:
    """The subtasks to run (default: all that the given --data and --jsonl allow); unknown names refused with a
    near miss, and those without their input."""
    default = [
        name
        for name, spec in SUBTASKS.items()
        if (spec.haystack != "essay" or has_data) and (spec.haystack != "documents" or has_qa)
    ]
    names = list(names or default)
    for name in names:
        if name not in SUBTASKS:
            raise CtxextError(f"unknown RULER subtask {name!r}{did_you_mean(name, SUBTASKS)}")
        if SUBTASKS[name].haystack == "essay" and not has_data:
            raise CtxextError(f"{name} takes its haystack from texts: pass --data FILE [FILE ...]")
        if SUBTASKS[name].haystack == "documents" and not has_qa:
            raise CtxextError(f"{name} takes its questions and documents from --jsonl FILE: {QA_FORM}")
    return names


def read_qa(path: str | Path) -> dict[str, list[dict]]:
    """qa_1's and qa_2's questions from a JSONL file in RULER's QA form (its read_squad / read_hotpotqa records,
    with the documents written out instead of indexed)."""
    by_subtask: dict[str, list[dict]] = {"qa_1": [], "qa_2": []}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise CtxextError(f"--jsonl {path}: {error.strerror or error}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise CtxextError(f"--jsonl {path} line {number} is not JSON; expected {QA_FORM}") from None
        fields = (item.get("query"), item.get("outputs"), item.get("context"), item.get("more_context", []))
        if not (
            isinstance(fields[0], str)
            and all(isinstance(f, list) and all(isinstance(x, str) for x in f) for f in fields[1:])
            and fields[1]
            and fields[2]
            and item.get("subtask", "qa_1") in by_subtask
        ):
            raise CtxextError(f"--jsonl {path} line {number} is not a question; expected {QA_FORM}")
        for name in [item["subtask"]] if "subtask" in item else list(by_subtask):
            by_subtask[name].append(item)
    return by_subtask


class Builder:
    """Prompts of exactly ``length`` tokens for one tokenizer; the essay haystack comes from ``text``."""

    def __init__(self, tokenizer, text: str | None = None, chat: bool = False, qa: dict | None = None):
        self.tokenizer, self.chat, self.qa = tokenizer, chat, qa or {}
        self.noise = [self._ids(" " + s.strip() + ".") for s in NOISE.split(".") if s.strip()]
        sentences = re.split(r"(?<=[.!?])\s+", " ".join((text or "").split()))
        self.essay = [self._ids(" " + s) for s in sentences if len(s.split()) >= 3]
        words = {w.lower() for t in default_short_texts() for w in re.findall(r"[A-Za-z]{4,}", t)}
        self.words = sorted(words)
        self.newline = self._ids("\n")[-1:]
        self.chat_parts = self._chat_parts() if chat else ("", "")

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _chat_parts(self) -> tuple[str, str]:
        marker = "\x00RULER\x00"
        if not getattr(self.tokenizer, "chat_template", None):
            raise CtxextError("--chat: the model's tokenizer has no chat template")
        rendered = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": marker}], tokenize=False, add_generation_prompt=True
        )
        before, _, after = rendered.partition(marker)
        return before, after

    def _head(self, text: str) -> list[int]:
        return self.tokenizer(self.chat_parts[0] + text, add_special_tokens=not self.chat)["input_ids"]

    def _tail(self, question: str, answer_prefix: str) -> list[int]:
        """The question closes the user's turn; RULER's answer prefix opens the model's (after the chat template's
        assistant header with ``chat``)."""
        return self._ids(question + self.chat_parts[1] + answer_prefix)

    def key(self, rng: random.Random, kind: str) -> str:
        return str(uuid.UUID(int=rng.getrandbits(128))) if kind == "uuids" else "-".join(rng.sample(self.words, 2))

    @staticmethod
    def value(rng: random.Random, kind: str) -> str:
        return str(uuid.UUID(int=rng.getrandbits(128))) if kind == "uuids" else str(rng.randint(1_000_000, 9_999_999))

    def sample(self, name: str, length: int, index: int, seed: int = 0, depths: list[float] | None = None) -> Sample:
        rng = random.Random(f"{seed}:{name}:{length}:{index}")
        spec = SUBTASKS[name]
        if spec.family == "qa":
            sample = self._qa(name, length, rng, index, seed)
        else:
            build = {"niah": self._niah, "vt": self._vt, "cwe": self._cwe, "fwe": self._fwe}[spec.family]
            sample = build(spec, length, rng, depths)
        if len(sample.ids) != length:  # a bug, not an input: every builder fills its budget exactly
            raise AssertionError(f"{name} prompt has {len(sample.ids)} tokens, not {length}")
        return sample

    def _niah(self, spec: Spec, length: int, rng: random.Random, depths) -> Sample:
        kind = "numbers" if spec.values == "numbers" else "uuids"
        keys = [self.key(rng, spec.keys) for _ in range(spec.needles)]
        values = {key: [self.value(rng, spec.values) for _ in range(spec.values_per_key)] for key in keys}
        needles = [NEEDLE.format(kind=kind, key=key, value=value) for key in keys for value in values[key]]
        rng.shuffle(needles)
        asked = keys[: spec.queries]
        query = ", ".join(asked[:-1]) + f" and {asked[-1]}" if len(asked) > 1 else asked[0]
        head = self._head(NIAH_HEAD.format(kind=kind))
        tail = self._tail(NIAH_QUESTION.format(kind=kind, query=query), NIAH_ANSWER.format(kind=kind, query=query))
        if spec.haystack == "needles":

            def pool():
                while True:
                    key = self.key(rng, spec.keys)
                    yield self._ids(" " + NEEDLE.format(kind=kind, key=key, value=self.value(rng, spec.values)))

            haystack = pool()
        else:
            haystack = self._cycle(self.essay if spec.haystack == "essay" else self.noise, rng)
        answers = [value for key in asked for value in values[key]]
        return self._assemble(head, tail, [self._ids(" " + n) for n in needles], haystack, length, rng, depths, answers)

    def _vt(self, spec: Spec, length: int, rng: random.Random, depths) -> Sample:
        names = ["".join(rng.choices(string.ascii_uppercase, k=5)) for _ in range(5)]
        value = str(rng.randint(10000, 99999))
        chain = [f"VAR {names[0]} = {value}."] + [f"VAR {b} = VAR {a}." for a, b in zip(names, names[1:], strict=False)]
        head, tail = self._head(VT_HEAD), self._tail(VT_QUESTION.format(value=value), VT_ANSWER.format(value=value))
        needles = [self._ids(" " + line) for line in chain]
        return self._assemble(head, tail, needles, self._cycle(self.noise, rng), length, rng, depths, names)

    def _cwe(self, spec: Spec, length: int, rng: random.Random, depths) -> Sample:
        head, tail = self._head(CWE_HEAD), self._tail(CWE_QUESTION, CWE_ANSWER)
        budget = length - len(head) - len(tail)
        pool = rng.sample(self.words, len(self.words))
        common, rest = pool[:10], pool[10:]
        item = max(len(self._ids(f"\n{n}. {w}")) for n, w in ((999, common[0]), (1, rest[0])))
        fits = budget // item
        common_times = max(2, min(30, fits // 20))
        rare_times = 3 if common_times >= 10 else 1
        rare = rest[: max(0, (fits - 10 * common_times) // rare_times)]
        items = common * common_times + rare * rare_times
        rng.shuffle(items)
        body = []
        for number, word in enumerate(items, 1):
            piece = self._ids(f"\n{number}. {word}")
            if len(body) + len(piece) > budget:
                break
            body += piece
        if len(body) < 10 * common_times:
            raise CtxextError(f"{length} tokens cannot hold the cwe word list")
        body += self.newline * (budget - len(body))
        return Sample(head + body + tail, common)

    def _fwe(self, spec: Spec, length: int, rng: random.Random, depths) -> Sample:
        head, tail = self._head(FWE_HEAD), self._tail(FWE_QUESTION, FWE_ANSWER)
        budget = length - len(head) - len(tail)
        vocabulary = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 6))) for _ in range(800)]
        weights = [1 / (rank**2) for rank in range(1, len(vocabulary) + 1)]  # Zipf, alpha 2
        body, counts = [], Counter()
        while True:
            word = rng.choices(vocabulary, weights)[0]
            piece = self._ids(" " + word)
            if len(body) + len(piece) > budget:
                break
            body += piece
            counts[word] += 1
        top = counts.most_common(4)
        if len(top) < 4 or top[2][1] == top[3][1]:
            raise CtxextError(f"{length} tokens are too few for fwe's three most frequent words to stand apart")
        body += self.newline * (budget - len(body))
        return Sample(head + body + tail, [word for word, _ in top[:3]])

    def _qa(self, name: str, length: int, rng: random.Random, index: int, seed: int) -> Sample:
        """The question's gold (and related) documents among distractors from the other questions, as many as fit,
        shuffled and numbered as RULER's qa.py does; newlines fill what no whole document fills."""
        pool = self.qa.get(name) or []
        if not pool:
            raise CtxextError(f"{name}: the --jsonl file holds no question for it")
        order = random.Random(f"{seed}:{name}").sample(range(len(pool)), len(pool))
        item = pool[order[index % len(pool)]]
        head = self._head(QA_HEAD)
        tail = self._tail(QA_QUESTION.format(query=item["query"]), QA_ANSWER)
        budget = length - len(head) - len(tail)
        gold = list(dict.fromkeys(item["context"] + item.get("more_context", [])))
        others = sorted({d for other in pool for d in other["context"] + other.get("more_context", [])} - set(gold))
        rng.shuffle(others)
        separator = self._ids("\n\n")
        widest = len(str(len(gold) + len(others)))

        def cost(document: str) -> int:  # with the widest number it may get
            return len(self._ids(QA_DOCUMENT.format(number="9" * widest, document=document))) + len(separator)

        chosen, used = list(gold), sum(cost(d) for d in gold)
        if used > budget + len(separator):
            raise CtxextError(f"{length} tokens cannot hold {name}'s documents for {item['query']!r}")
        for document in others:
            if used + cost(document) <= budget + len(separator):
                chosen.append(document)
                used += cost(document)
        while True:
            order = chosen[:]
            rng.shuffle(order)
            pieces = [self._ids(QA_DOCUMENT.format(number=i, document=d)) for i, d in enumerate(order, 1)]
            body = [token for piece in pieces for token in separator + piece][len(separator) :]
            if len(body) <= budget or len(chosen) == len(gold):
                break
            chosen.pop()  # the last distractor chosen: its number's tokens ran over
        if len(body) > budget:
            raise CtxextError(f"{length} tokens cannot hold {name}'s documents for {item['query']!r}")
        return Sample(head + body + self.newline * (budget - len(body)) + tail, list(item["outputs"]))

    @staticmethod
    def _cycle(sentences: list[list[int]], rng: random.Random):
        if not sentences:
            raise CtxextError("the --data texts hold no sentences for an essay haystack")
        start = rng.randrange(len(sentences))
        while True:
            for offset in range(len(sentences)):
                yield sentences[(start + offset) % len(sentences)]

    @staticmethod
    def _assemble(head, tail, needles, haystack, length, rng, depths, answers) -> Sample:
        """head + haystack (cut to fit) with each needle at a sentence start nearest its depth + tail."""
        budget = length - len(head) - len(tail) - sum(len(n) for n in needles)
        if budget < 0:
            raise CtxextError(f"{length} tokens cannot hold the prompt ({length - budget} needed without haystack)")
        body, starts = [], [0]
        while len(body) < budget:
            body += next(haystack)
            starts.append(len(body))
        body = body[:budget]
        starts = [s for s in starts if s <= budget]
        depths = sorted(depths if depths is not None else [rng.random() for _ in needles])
        cuts = [min(starts, key=lambda s, d=d: abs(s - d * budget)) for d in depths]
        ids, placed, previous = list(head), [], 0
        for cut, needle in zip(cuts, needles, strict=True):
            ids += body[previous:cut]
            placed.append(len(ids))
            ids += needle
            previous = cut
        return Sample(ids + body[previous:] + tail, answers, placed)


def string_match_all(prediction: str, answers: list[str]) -> float:
    """RULER's score: the share of answers found in the prediction, case-insensitively."""
    return sum(answer.lower() in prediction.lower() for answer in answers) / len(answers)


def string_match_part(prediction: str, answers: list[str]) -> float:
    """RULER's qa score: 1 if any one of the answers is found in the prediction, case-insensitively."""
    return float(any(answer.lower() in prediction.lower() for answer in answers))


def score(name: str, prediction: str, answers: list[str]) -> float:
    return (string_match_part if SUBTASKS[name].metric == "part" else string_match_all)(prediction, answers)


def builder_for(tokenizer, text: str | None, options: dict) -> tuple[Builder, list[str]]:
    """The prompt builder for ``options`` (chat, jsonl) and the subtasks to run."""
    qa = read_qa(options["jsonl"]) if options.get("jsonl") else None
    names = check_subtasks(options.get("subtasks"), text is not None, qa is not None)
    return Builder(tokenizer, text, options.get("chat", False), qa), names


@dataclass
class Cell:
    """One subtask at one length: each sample's continuation, expected answers and score, and the seconds taken."""

    outputs: list[dict]  # {"prediction", "answers", "score"} per sample, kept in the results for inspection
    seconds: float

    @property
    def scores(self) -> list[float]:
        return [output["score"] for output in self.outputs]


def cell_of(name: str, predictions: list[str], cases: list[Sample], seconds: float) -> Cell:
    outputs = [
        {"prediction": prediction, "answers": case.answers, "score": score(name, prediction, case.answers)}
        for prediction, case in zip(predictions, cases, strict=True)
    ]
    return Cell(outputs, seconds)


def kept_cell(earlier: dict | None, length: int, name: str, samples: int) -> Cell | None:
    """The cell an earlier, cut-off run of the same settings finished (its rows by length), if it did."""
    row = ((earlier or {}).get(length) or {}).get("tasks", {}).get(name)
    if not row or "outputs" not in row or len(row["outputs"]) != samples:
        return None
    return Cell(row["outputs"], row["seconds"])


def ruler_rows(cells: dict, samples: int) -> dict:
    """results[length] from each (length, subtask)'s :class:`Cell`: per task accuracy with Wilson's interval, the
    continuations and seconds, the average with its interval, and seconds per sample."""
    rows = {}
    for length in dict.fromkeys(length for length, _ in cells):
        mine = {name: cell for (n, name), cell in cells.items() if n == length}
        shares = {name: sum(cell.scores) / len(cell.scores) for name, cell in mine.items()}
        intervals = {name: wilson_interval(sum(cell.scores), len(cell.scores)) for name, cell in mine.items()}
        tasks = {
            name: {
                "accuracy": 100 * shares[name],
                "ci95": [100 * x for x in intervals[name]],
                "samples": samples,
                "seconds": cell.seconds,
                "outputs": cell.outputs,
            }
            for name, cell in mine.items()
        }
        rows[length] = {
            "average": sum(t["accuracy"] for t in tasks.values()) / len(tasks),
            "ci95": [100 * x for x in average_interval(list(shares.values()), list(intervals.values()))],
            "seconds_per_sample": sum(cell.seconds for cell in mine.values()) / (samples * len(mine)),
            "tasks": tasks,
        }
    return rows


def run(inp: TaskInput, label: str, mode: str) -> dict:
    """Every (length, subtask) cell in turn; each finished cell is reported (``inp.report``), and cells an earlier
    cut-off run finished (``inp.earlier``) are kept, not run again."""
    loaded, options = inp.loaded, inp.options
    builder, names = builder_for(loaded.tokenizer, inp.text, options)
    samples, batch, seed = options.get("samples") or 8, options.get("batch") or 1, options.get("seed", 0)
    bar = tqdm(total=len(inp.lengths) * len(names) * samples, desc=f"ruler {label}", unit="prompt")
    cells = {}
    for length in inp.lengths:
        for name in names:
            kept = kept_cell(inp.earlier, length, name, samples)
            if kept:
                cells[length, name] = kept
                bar.update(samples)
                continue
            started = time.perf_counter()
            try:
                cases = [builder.sample(name, length, index, seed) for index in range(samples)]
            except CtxextError:
                bar.close()  # the refusal then starts a line of its own, not the bar's
                raise
            predictions = []
            together = prompt_batch(loaded.model, length + SUBTASKS[name].new_tokens, batch)
            for begin in range(0, samples, together):
                prompts = torch.tensor([case.ids for case in cases[begin : begin + together]])
                predictions += continuations(loaded.model, loaded.tokenizer, prompts, SUBTASKS[name].new_tokens)
                bar.update(len(prompts))
            cells[length, name] = cell_of(name, predictions, cases, time.perf_counter() - started)
            if inp.report:
                inp.report(ruler_rows(cells, samples))
    bar.close()
    return ruler_rows(cells, samples)


def effective_lengths(by_method: dict, native_window: int, threshold: float = 85.6, share: float = 0.9) -> dict:
    """Per method: the longest tested length up to which the average stays at or above ``threshold``, and at or
    above ``share`` x native's average at its longest length within ``native_window`` (None where the first
    length already falls below)."""
    by_method = {method: {int(n): row["average"] for n, row in rows.items()} for method, rows in by_method.items()}
    native = by_method.get("native") or by_method.get("none") or {}
    inside = [n for n in native if n <= native_window]
    reference = share * native[max(inside)] if inside else None
    summary = {}
    for method, rows in by_method.items():
        lengths = sorted(rows)
        averages = [rows[n] for n in lengths]
        summary[method] = {
            "absolute": _longest_above(lengths, averages, threshold),
            "relative": None if reference is None else _longest_above(lengths, averages, reference),
        }
    return {"threshold": threshold, "relative_threshold": reference, "effective_length": summary}


def _longest_above(lengths: list[int], averages: list[float], bar: float) -> int | None:
    longest = None
    for length, average in zip(lengths, averages, strict=True):
        if average < bar:
            break
        longest = length
    return longest


def check(options: dict, has_data: bool) -> None:
    check_subtasks(options.get("subtasks"), has_data, bool(options.get("jsonl")))
    if options.get("jsonl"):
        read_qa(options["jsonl"])
    threshold, share = options.get("threshold", 85.6), options.get("relative_threshold", 0.9)
    if not 0 < threshold <= 100:
        raise CtxextError(f"--threshold is an accuracy in percent: above 0 and at most 100, not {threshold:g}")
    if not 0 < share <= 1:
        raise CtxextError(f"--relative-threshold is a share of native's average: in (0, 1], not {share:g}")


def summarize(by_method: dict, record: dict) -> dict:
    config = record["config"]
    return effective_lengths(
        by_method, record["original_context"], config.get("threshold", 85.6), config.get("relative_threshold", 0.9)
    )


register(
    Task(
        "ruler",
        "decoder",
        run,
        backends=("transformers", "vllm"),
        main_metric="average",
        summarize=summarize,
        check=check,
    )
)
