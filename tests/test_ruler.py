"""The RULER task: prompts deterministic by seed and exactly the asked length, needles where the depths say,
RULER's scoring, intervals and effective lengths on known values, bad input in one line, and a whole run of
``ctxext eval --task ruler`` on a tiny decoder whose answers are planted."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from ctxext.cli.main import main, run
from ctxext.eval.intervals import average_interval, wilson_interval
from ctxext.eval.registry import Task, register
from ctxext.eval.report import MAIN_METRIC
from ctxext.eval.run import TASKS  # every task registered
from ctxext.eval.tasks.ruler import (
    SUBTASKS,
    Builder,
    check_subtasks,
    effective_lengths,
    read_qa,
    string_match_all,
    string_match_part,
)

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "emma.txt"


def write_qa(path: Path) -> Path:
    """Questions in RULER's QA form: qa_1's with one gold paragraph of Emma holding a planted fact, qa_2's with
    two (the fact split over them, HotpotQA's two hops); every other paragraph a distractor."""
    paragraphs = [p.strip() for p in CORPUS.read_text(encoding="utf-8")[:120_000].split("\n\n") if len(p) > 400]
    lines = []
    for number in range(12):
        town, keeper = f"Town{number:02d}", f"Keeper{number:02d}"
        first = paragraphs[2 * number] + f" The bell of {town} is kept by {keeper}."
        lines.append(
            {"query": f"Who keeps the bell of {town}?", "outputs": [keeper], "context": [first], "subtask": "qa_1"}
        )
        second = paragraphs[2 * number + 1] + f" {keeper} was born in the year {1700 + number}."
        lines.append(
            {
                "query": f"In which year was the keeper of the bell of {town} born?",
                "outputs": [str(1700 + number)],
                "context": [first, second],
                "subtask": "qa_2",
            }
        )
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


@pytest.fixture(scope="module")
def qa_file(tmp_path_factory):
    return write_qa(tmp_path_factory.mktemp("qa") / "qa.jsonl")


@pytest.fixture(scope="module")
def tokenizer(small_smollm2_gguf):
    return AutoTokenizer.from_pretrained(str(small_smollm2_gguf.parent), gguf_file=small_smollm2_gguf.name)


@pytest.fixture(scope="module")
def builder(tokenizer, qa_file):
    return Builder(tokenizer, CORPUS.read_text(encoding="utf-8")[:300_000], qa=read_qa(qa_file))


@pytest.mark.parametrize("name", list(SUBTASKS))
@pytest.mark.parametrize("length", [700, 2048])
def test_prompts_are_exactly_the_asked_length_and_deterministic_by_seed(builder, name, length):
    first = builder.sample(name, length, index=3, seed=7)
    assert len(first.ids) == length
    assert builder.sample(name, length, index=3, seed=7) == first
    assert builder.sample(name, length, index=3, seed=8).ids != first.ids
    assert builder.sample(name, length, index=4, seed=7).answers != first.answers


DEPTHS = {
    "niah_single_1": [0.3],
    "niah_single_2": [0.8],
    "niah_multikey_2": [0.6],
    "niah_multivalue": [0.1, 0.4, 0.6, 0.9],
    "vt": [0.1, 0.3, 0.5, 0.7, 0.9],
}


@pytest.mark.parametrize("name", list(DEPTHS))
def test_needles_sit_at_the_asked_depths_and_hold_the_answers(builder, tokenizer, name):
    sample = builder.sample(name, 3000, 0, depths=DEPTHS[name])
    text = tokenizer.decode(sample.ids)
    for answer in sample.answers:
        assert answer in text
    assert len(sample.needle_starts) == len(DEPTHS[name])
    for start, depth in zip(sample.needle_starts, DEPTHS[name], strict=True):
        assert abs(start / len(sample.ids) - depth) < 0.08, (start, depth)
        needle = tokenizer.decode(sample.ids[start : start + 12])
        assert needle.strip().startswith(("One of the special magic", "VAR ")), needle


def test_with_chat_the_question_closes_the_user_turn_and_the_answer_prefix_opens_the_models(tokenizer):
    chat = Builder(tokenizer, chat=True)
    sample = chat.sample("niah_single_1", 600, 0)
    text = tokenizer.decode(sample.ids)
    assert len(sample.ids) == 600 and text.startswith(chat.chat_parts[0].split("user")[0])
    question = text.index("mentioned in the provided text?")
    assistant = text.index(chat.chat_parts[1].strip(), question)
    assert text.rstrip().endswith("mentioned in the provided text are") and assistant < len(text) - 80


def test_chat_without_a_chat_template_is_refused(tokenizer):
    import tiny
    from ctxext.errors import CtxextError

    with pytest.raises(CtxextError, match="no chat template"):
        Builder(tiny.tokenizer(), chat=True)


def test_aggregation_answers_are_the_most_frequent_words(builder, tokenizer):
    cwe = builder.sample("cwe", 4096, 0)
    words = tokenizer.decode(cwe.ids).split("\n")
    listed = [line.split(". ", 1)[1] for line in words if ". " in line and line.split(". ", 1)[0].isdigit()]
    counts = {word: listed.count(word) for word in set(listed)}
    assert all(counts[word] > max(c for w, c in counts.items() if w not in cwe.answers) for word in cwe.answers)
    fwe = builder.sample("fwe", 4096, 0)
    body = tokenizer.decode(fwe.ids).split("coded words.")[1].split("\nQuestion")[0].split()
    ranked = sorted(set(body), key=body.count, reverse=True)
    assert ranked[:3] == fwe.answers


def test_string_match_all_is_the_share_of_answers_found():
    assert string_match_all("the numbers are 123 and 456", ["123", "456"]) == 1.0
    assert string_match_all("only 123 here", ["123", "456"]) == 0.5
    assert string_match_all("ABCDE, fghij", ["abcde", "FGHIJ", "KLMNO"]) == pytest.approx(2 / 3)


def test_average_interval_combines_the_subtasks_standard_errors():
    lo, hi = average_interval([0.5, 0.5], [[0.3, 0.7], [0.3, 0.7]])
    assert lo == pytest.approx(0.5 - 0.2 / 2**0.5) and hi == pytest.approx(0.5 + 0.2 / 2**0.5)
    assert average_interval([1.0, 1.0], [wilson_interval(6, 6)] * 2)[0] < 1.0  # 6 of 6 is no certainty


def test_wilson_interval_matches_its_formula_at_known_points():
    assert wilson_interval(0, 10) == pytest.approx([0.0, 0.2775], abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx([0.7225, 1.0], abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx([0.2366, 0.7634], abs=1e-4)
    assert wilson_interval(50, 100)[1] - wilson_interval(50, 100)[0] < 0.2


def test_effective_length_is_the_longest_length_up_to_which_the_average_holds():
    rows = {
        "native": {"1024": {"average": 90.0}, "2048": {"average": 80.0}, "4096": {"average": 10.0}},
        "yarn": {"1024": {"average": 88.0}, "2048": {"average": 86.0}, "4096": {"average": 75.0}},
        "dca": {"1024": {"average": 70.0}, "2048": {"average": 90.0}, "4096": {"average": 90.0}},
    }
    summary = effective_lengths(rows, native_window=2048)
    assert summary["relative_threshold"] == pytest.approx(72.0)  # 0.9 x native's 80 at its window
    found = summary["effective_length"]
    assert found["native"] == {"absolute": 1024, "relative": 2048}
    assert found["yarn"] == {"absolute": 2048, "relative": 4096}
    assert found["dca"] == {"absolute": None, "relative": None}  # falls below at the first length


def test_every_task_has_one_entry_and_its_main_metric_is_the_reports():
    assert {name: task.main_metric for name, task in TASKS.items() if task.main_metric} == MAIN_METRIC
    with pytest.raises(ValueError, match="already registered"):
        register(Task("ruler", "decoder", lambda *a: {}))


BAD = {
    "an unknown subtask": (["--subtasks", "niah_singel_1"], "did you mean 'niah_single_1'"),
    "an essay subtask without texts": (["--subtasks", "niah_single_2"], "pass --data"),
    "a qa subtask without questions": (["--subtasks", "qa_2"], "qa_2 takes its questions and documents from --jsonl"),
    "a questions file that is not there": (["--subtasks", "qa_1", "--jsonl", "absent.jsonl"], "--jsonl absent.jsonl"),
    "a threshold above 100": (["--threshold", "120"], "--threshold"),
    "a relative threshold of 0": (["--relative-threshold", "0"], "--relative-threshold"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_ruler_bad_input_is_one_line(small_smollm2_gguf, tmp_path, capsys, name):
    extra, fragment = BAD[name]
    out = tmp_path / "r.json"
    argv = ["eval", str(small_smollm2_gguf), "--task", "ruler", "--lengths", "300", "-o", str(out), *extra]
    assert run(main, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
    assert not out.exists()


def test_a_ruler_run_writes_accuracies_intervals_and_effective_lengths(small_smollm2_gguf, tmp_path, capsys):
    out, plot = tmp_path / "r.json", tmp_path / "r.png"
    argv = ["eval", str(small_smollm2_gguf), "--task", "ruler", "--lengths", "200", "256", "--samples", "2"]
    argv += ["--subtasks", "niah_single_1,vt", "--methods", "native,yarn", "--to", "512", "-o", str(out)]
    assert run(main, [*argv, "--plot", str(plot)]) == 0
    printed = capsys.readouterr().out
    results = json.loads(out.read_text())
    rows = results["results"]["ruler"]
    assert set(rows) == {"native", "yarn"} and set(rows["native"]) == {"200", "256"}
    cell = rows["yarn"]["256"]
    assert set(cell["tasks"]) == {"niah_single_1", "vt"} and cell["tasks"]["vt"]["samples"] == 2
    for task in cell["tasks"].values():
        assert 0 <= task["ci95"][0] <= task["accuracy"] <= task["ci95"][1] <= 100
    assert cell["average"] == pytest.approx(sum(t["accuracy"] for t in cell["tasks"].values()) / 2)
    for task in cell["tasks"].values():  # each continuation is kept with its answers and score
        assert len(task["outputs"]) == 2 and all(set(o) == {"prediction", "answers", "score"} for o in task["outputs"])
        assert task["accuracy"] == pytest.approx(100 * sum(o["score"] for o in task["outputs"]) / 2)
    assert set(results["summary"]["effective_length"]) == {"native", "yarn"}
    assert results["config"]["samples"] == 2
    assert "effective length" in printed and "niah_single_1" in printed
    assert plot.stat().st_size > 10_000


def test_subtasks_that_need_no_data_run_by_default():
    assert check_subtasks(None, False) == ["niah_single_1", "niah_multikey_2", "niah_multikey_3", "vt", "cwe", "fwe"]
    assert "qa_1" not in check_subtasks(None, True) and "niah_single_2" in check_subtasks(None, True)
    assert check_subtasks(None, True, True) == list(SUBTASKS)


@pytest.mark.parametrize("name", ["qa_1", "qa_2"])
def test_qa_prompts_hold_the_gold_documents_numbered_among_distractors(builder, tokenizer, qa_file, name):
    asked = {json.loads(line)["query"]: json.loads(line) for line in qa_file.read_text().splitlines()}
    for index in range(3):
        sample = builder.sample(name, 4000, index)
        text = tokenizer.decode(sample.ids)
        item = asked[text.split("Question: ")[-1].split(" Answer:")[0]]
        assert item["subtask"] == name and sample.answers == item["outputs"]
        assert all(document in text for document in item["context"])
        numbers = [int(n) for n in re.findall(r"Document (\d+):\n", text)]
        assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) > len(item["context"])
        assert text.rstrip().endswith("Answer:")


def test_string_match_part_scores_any_one_answer():
    assert string_match_part("He was born in 1703.", ["1703", "1704"]) == 1.0
    assert string_match_part("keeper07", ["Keeper08", "KEEPER07"]) == 1.0
    assert string_match_part("nobody", ["Keeper08"]) == 0.0


def test_a_qa_file_not_in_rulers_form_is_refused_with_its_line(tmp_path, small_smollm2_gguf, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "outputs": ["a"], "context": ["d"]}\n{"question": "q", "answer": "a"}\n')
    argv = ["eval", str(small_smollm2_gguf), "--task", "ruler", "--lengths", "300", "--subtasks", "qa_1"]
    assert run(main, [*argv, "--jsonl", str(bad), "-o", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert f"--jsonl {bad} line 2 is not a question; expected one JSON object per line" in err
    assert err.count("\n") == 0 and not (tmp_path / "r.json").exists()


def test_a_refusal_met_while_measuring_starts_its_own_line(small_smollm2_gguf, tmp_path, capsys):
    """fwe cannot fit in 120 tokens: found only when its prompts are built, after the progress bar has begun."""
    out = tmp_path / "r.json"
    argv = ["eval", str(small_smollm2_gguf), "--task", "ruler", "--lengths", "120", "--subtasks", "fwe"]
    assert run(main, [*argv, "-o", str(out)]) == 2
    last = capsys.readouterr().err.rstrip("\n").split("\n")[-1]
    assert "too few for fwe's three most frequent words" in last and "ruler native" not in last
    assert not out.exists()


def test_a_ruler_plot_of_many_methods_wraps_its_panels_into_rows(tmp_path):
    from matplotlib.image import imread

    from ctxext.eval.report import RULER_COLUMNS, plot

    cell = {"average": 50.0, "ci95": [30.0, 70.0], "tasks": {"vt": {"accuracy": 50.0, "ci95": [20, 80], "samples": 6}}}
    methods = [f"method{i}" for i in range(2 * RULER_COLUMNS - 1)]  # with the average panel: two full rows
    results = {"model": "m", "original_context": 8192, "results": {"ruler": {m: {"8192": cell} for m in methods}}}
    height, width = imread(plot(results, tmp_path / "r.png")).shape[:2]
    assert 1.5 < width / height < 2.5  # RULER_COLUMNS panels across, two down (one row would be 8:1)


def test_a_cut_off_ruler_run_keeps_each_finished_cell_and_resumes_from_the_next(
    small_smollm2_gguf, tmp_path, monkeypatch
):
    import ctxext.eval.tasks.ruler as ruler

    out, whole = tmp_path / "r.json", tmp_path / "whole.json"
    argv = ["eval", str(small_smollm2_gguf), "--task", "ruler", "--lengths", "200", "256", "--samples", "2"]
    argv += ["--subtasks", "niah_single_1,vt", "--methods", "native,yarn", "--to", "512"]
    assert run(main, [*argv, "-o", str(whole)]) == 0
    real, calls = ruler.continuations, []

    def dies_on_the_sixth_cell(*args, **kwargs):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt  # killed inside yarn's second cell (each cell is one batch of 2 prompts)
        return real(*args, **kwargs)

    monkeypatch.setattr(ruler, "continuations", dies_on_the_sixth_cell)
    with pytest.raises(KeyboardInterrupt):
        main([*argv, "-o", str(out)])
    partial = json.loads(out.read_text())
    assert partial["complete"] is False and partial["finished"] == ["native"]
    assert list(partial["results"]["ruler"]["yarn"]) == ["200"]
    assert list(partial["results"]["ruler"]["yarn"]["200"]["tasks"]) == ["niah_single_1"]
    planted = partial["results"]["ruler"]["yarn"]["200"]["tasks"]["niah_single_1"]
    planted["outputs"][0]["prediction"] = "kept, not measured again"
    out.write_text(json.dumps(partial))

    calls.clear()
    monkeypatch.setattr(ruler, "continuations", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert run(main, [*argv, "-o", str(out), "--resume"]) == 0
    assert len(calls) == 3  # yarn's three cells left: vt at 200, both at 256
    resumed = json.loads(out.read_text())["results"]["ruler"]
    expected = json.loads(whole.read_text())["results"]["ruler"]
    kept = resumed["yarn"]["200"]["tasks"]["niah_single_1"]["outputs"][0]["prediction"]
    assert kept == "kept, not measured again"
    for method in ("native", "yarn"):
        for length in ("200", "256"):
            assert resumed[method][length]["average"] == expected[method][length]["average"]
            for name, task in expected[method][length]["tasks"].items():
                assert [o["score"] for o in resumed[method][length]["tasks"][name]["outputs"]] == [
                    o["score"] for o in task["outputs"]
                ]


@pytest.mark.parametrize(
    "damage, fragment",
    [
        (lambda r: r.update(finished="native"), "finished must be a list of method labels"),
        (lambda r: _first_cell(r)["outputs"][0].update(score="1"), "outputs must be a list of samples"),
        (lambda r: _first_cell(r).pop("seconds"), "seconds must be a number of seconds"),
    ],
)
def test_resuming_from_a_damaged_ruler_file_is_one_line(small_smollm2_gguf, tmp_path, capsys, damage, fragment):
    out = tmp_path / "r.json"
    argv = ["eval", str(small_smollm2_gguf), "--task", "ruler", "--lengths", "200", "--samples", "1"]
    argv += ["--subtasks", "niah_single_1", "-o", str(out)]
    assert run(main, argv) == 0
    record = json.loads(out.read_text())
    damage(record)
    out.write_text(json.dumps(record))
    capsys.readouterr()
    assert run(main, [*argv, "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
    assert json.loads(out.read_text()) == record  # the damaged file is left as it was


def _first_cell(record: dict) -> dict:
    return record["results"]["ruler"]["native"]["200"]["tasks"]["niah_single_1"]


def test_the_ruler_average_panel_sets_methods_side_by_side_at_one_length():
    """Averages at the same length are drawn at distinct x positions (their error bars would hide each other),
    in method order, around the length itself."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ctxext.eval.report import _ruler_figure

    cell = {"average": 50.0, "ci95": [30.0, 70.0], "tasks": {"vt": {"accuracy": 50.0, "ci95": [20, 80], "samples": 6}}}
    figure = _ruler_figure(plt, {m: {"16384": cell} for m in ("a", "b", "c")}, "m", 8192)
    xs = [float(line.get_xdata()[0]) for line in figure.axes[0].get_lines() if line.get_label() in ("a", "b", "c")]
    plt.close(figure)
    assert xs == sorted(xs) and len(set(xs)) == 3
    assert xs[0] < 16384 < xs[-1] and xs[1] == pytest.approx(16384)
