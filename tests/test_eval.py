"""Evaluation tasks on tiny models: exact perplexity, windows, passkey prompts, retrieval metrics, drift,
reports and plots, and their bad inputs."""

import json
import math

import pytest
import torch
import transformers
from torch.nn import functional as F

import tiny
from ctxext.cli.main import main, run
from ctxext.eval.report import markdown
from ctxext.eval.tasks.drift import decoder_drift
from ctxext.eval.tasks.passkey import key_sentence, passkey_prompt
from ctxext.eval.tasks.ppl import perplexity
from ctxext.eval.tasks.retrieval import jsonl_task, rank_metrics
from ctxext.windows import scored_region, windows


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """A longer text than conftest's book: 1,500 words against 800."""
    path = tmp_path_factory.mktemp("text") / "book.txt"
    path.write_text(tiny.words(1500, seed=5))
    return path


@pytest.mark.parametrize("lengths,stride", [([8, 16, 32], 8), ([10, 24], 5), ([7], 7), ([64, 128], 64)])
def test_windows_score_every_target_once_per_length(lengths, stride):
    first, last = scored_region(300, lengths, stride)
    for length in lengths:
        scored = []
        for window in windows(length, stride, first, last):
            assert window.end - window.start == length and window.start >= 0
            assert window.score_from > window.start  # every scored target has at least one token of context
            scored.extend(window.targets)
        assert scored == list(range(first, last))


def test_perplexity_equals_a_hand_computation(decoder):
    model = transformers.AutoModelForCausalLM.from_pretrained(decoder).eval()
    ids = tiny.input_ids(100, seed=1)[0]
    result = perplexity(model, ids, [16, 32], stride=8)
    first, last = result[16]["scored"]
    for length in (16, 32):
        nll = []
        for target in range(first, last):  # each target by its own window, from the full logits
            start_block = first + ((target - first) // 8) * 8
            end = min(start_block + 8, last) - 1
            window = ids[end - length : end]
            with torch.inference_mode():
                logits = model(input_ids=window.unsqueeze(0)).logits[0]
            row = target - 1 - (end - length)
            nll.append(F.cross_entropy(logits[row : row + 1], ids[target : target + 1]).item())
        assert result[length]["tokens"] == last - first == len(nll)
        assert math.isclose(result[length]["ppl"], math.exp(sum(nll) / len(nll)), rel_tol=1e-5)
        assert sum(b["tokens"] for b in result[length]["buckets"]) == result[length]["tokens"]


def test_passkey_prompt_has_the_exact_length_and_the_key_at_its_depth():
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {}
    for text in (
        key_sentence(12345),
        "The grass is green. The sky is blue. The sun is yellow. Here we go. There and "
        "back again. What is the pass key? The pass key is There is an important info hidden inside a lot of "
        "irrelevant text. Find it and memorize it. I will quiz you about the important information there.",
    ):
        for word in text.split():
            vocab.setdefault(word, len(vocab) + 1)
    vocab["<unk>"] = 0
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=backend)
    for length, depth in ((200, 0.0), (200, 0.5), (333, 0.9)):
        ids = passkey_prompt(tokenizer, length, depth, 12345)
        assert len(ids) == length
        text = tokenizer.decode(ids)
        assert text.count("12345") == 2 and text.endswith("The pass key is")
        position = text.index("The pass key is 12345") / len(text)
        assert abs(position - depth) < 0.25


def test_rank_metrics_by_hand():
    queries = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    documents = torch.tensor([[1.0, 0.1], [0.9, 0.5], [0.0, 1.0]])
    metrics = rank_metrics(queries, documents, [{1}, {2}])
    assert metrics["accuracy@1"] == 0.5  # query 0 ranks doc 0 first, query 1 ranks doc 2 first
    assert math.isclose(metrics["ndcg@10"], (1 / math.log2(3) + 1.0) / 2)


def test_decoder_drift_is_zero_for_identical_distributions():
    logprobs = [F.log_softmax(torch.randn(10, 7), -1) for _ in range(3)]
    ids = [torch.randint(0, 7, (10,)) for _ in range(3)]
    result = decoder_drift(logprobs, logprobs, ids)
    assert result["kl"] == pytest.approx(0, abs=1e-12) and result["ppl_before"] == result["ppl_after"]
    shifted = [F.log_softmax(lp * 2, -1) for lp in logprobs]
    assert decoder_drift(logprobs, shifted, ids)["kl"] > 0


def test_eval_ppl_methods_in_memory_json_table_and_plot(decoder, book, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert (
        run(
            main,
            [
                "eval",
                str(decoder),
                "--task",
                "ppl",
                "--lengths",
                "32",
                "64",
                "128",
                "--data",
                str(book),
                "--methods",
                "none,linear,yarn",
                "-o",
                str(out),
                "--plot",
                str(tmp_path / "p.png"),
            ],
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "| none |" in printed and "| yarn |" in printed
    results = json.loads(out.read_text())
    rows = results["results"]["ppl"]
    assert set(rows) == {"none", "linear", "yarn"} and set(rows["yarn"]) == {"32", "64", "128"}
    assert rows["none"]["32"]["tokens"] == rows["yarn"]["128"]["tokens"]  # same scored tokens at every length
    assert rows["none"]["32"]["ppl"] != rows["yarn"]["32"]["ppl"]  # the method was really applied
    assert results["versions"]["torch"] and results["date"]
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert "ppl: ppl" in markdown(results)


def test_in_memory_methods_restore_the_model(decoder, book, tmp_path):
    from ctxext.eval.models import load_model, variant

    loaded = load_model(decoder)
    ids = tiny.input_ids(40)
    with torch.inference_mode():
        before = loaded.model(input_ids=ids).logits
        with variant(loaded, "yarn", 256):
            during = loaded.model(input_ids=ids).logits
        after = loaded.model(input_ids=ids).logits
    assert not torch.equal(before, during) and torch.equal(before, after)


@pytest.mark.parametrize("method", ["yarn", "dynamic", "ntk"])
def test_an_extended_folder_is_evaluated_as_it_is_up_to_its_new_window(decoder, book, tmp_path, capsys, method):
    out = tmp_path / method
    assert run(main, ["extend", str(decoder), "--to", "128", "--method", method, "-o", str(out)]) == 0
    ok = ["eval", str(out), "--task", "ppl", "--lengths", "128", "--data", str(book), "--max-tokens", "300"]
    assert run(main, [*ok, "-o", str(tmp_path / "ok.json")]) == 0
    rows = json.loads((tmp_path / "ok.json").read_text())["results"]["ppl"]["native"]
    assert math.isfinite(rows["128"]["ppl"])
    capsys.readouterr()
    beyond = ["eval", str(out), "--task", "ppl", "--lengths", "256", "--data", str(book)]
    assert run(main, [*beyond, "-o", str(tmp_path / "x.json")]) == 2
    assert "above the 128 tokens" in capsys.readouterr().err


def test_eval_passkey_and_drift_run_on_a_tiny_decoder(decoder, book, tmp_path):
    assert (
        run(
            main,
            [
                "eval",
                str(decoder),
                "--task",
                "passkey",
                "--lengths",
                "64",
                "96",
                "--methods",
                "none,yarn",
                "--trials",
                "1",
                "--depths",
                "0.2",
                "0.8",
                "-o",
                str(tmp_path / "k.json"),
                "--plot",
                str(tmp_path / "k.png"),
            ],
        )
        == 0
    )
    grid = json.loads((tmp_path / "k.json").read_text())["results"]["passkey"]["yarn"]["96"]
    assert set(grid["depths"]) == {"0.2", "0.8"} and grid["trials"] == 2
    assert (
        run(
            main,
            [
                "eval",
                str(decoder),
                "--task",
                "drift",
                "--lengths",
                "32",
                "--data",
                str(book),
                "--methods",
                "yarn",
                "--to",
                "256",
                "-o",
                str(tmp_path / "d.json"),
            ],
        )
        == 0
    )
    drift = json.loads((tmp_path / "d.json").read_text())["results"]["drift"]["yarn"]["32"]
    assert drift["kl"] > 0 and drift["tokens"] > 0


def test_attention_methods_are_measured_beside_rope_methods(decoder, book, tmp_path):
    common = ["eval", str(decoder), "--lengths", "48", "192", "--to", "192", "-o"]
    ppl = [*common, str(tmp_path / "p.json"), "--task", "ppl", "--data", str(book), "--stride", "48"]
    assert run(main, [*ppl, "--methods", "none,yarn,self-extend+window48,dca+chunk40+local8,string+yarn"]) == 0
    results = json.loads((tmp_path / "p.json").read_text())
    rows = results["results"]["ppl"]
    assert results["config"]["attention"] == {
        "self-extend+window48": {"method": "self-extend", "window": 48, "group": 10},
        "dca+chunk40+local8": {"method": "dca", "chunk_size": 40, "local": 8, "chunk_length": 32},
        "string+yarn": {"method": "string", "offset": 64, "window": 32, "scaling": "yarn"},
    }
    assert rows["string+yarn"]["48"]["ppl"] == rows["yarn"]["48"]["ppl"]  # every distance below the offset
    assert rows["self-extend+window48"]["48"]["ppl"] == rows["none"]["48"]["ppl"]  # all inside the window
    assert rows["dca+chunk40+local8"]["48"]["ppl"] != rows["none"]["48"]["ppl"]  # chunks of 32 < 48
    assert all(math.isfinite(rows[m]["192"]["ppl"]) for m in rows)
    assert len({rows[m]["192"]["ppl"] for m in rows}) == 5
    passkey = ["eval", str(decoder), "--task", "passkey", "--lengths", "192", "--trials", "1", "--depths", "0.5"]
    assert run(main, [*passkey, "--methods", "self-extend,dca", "-o", str(tmp_path / "k.json")]) == 0
    grid = json.loads((tmp_path / "k.json").read_text())["results"]["passkey"]
    assert set(grid) == {"self-extend", "dca"} and grid["dca"]["192"]["trials"] == 1


def test_eval_retrieval_on_a_tiny_sentence_transformer(tmp_path):
    model = tiny.save_sentence_transformer(tmp_path / "st", window=32)
    data = tmp_path / "docs.jsonl"
    rows = [
        {"doc_id": "a", "text": tiny.words(90, seed=1)},
        {"doc_id": "b", "text": tiny.words(90, seed=2)},
        {"query_id": "q", "query": tiny.words(5, seed=2), "relevant": ["b"]},
    ]
    data.write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "r.json"
    assert (
        run(
            main,
            [
                "eval",
                str(model),
                "--task",
                "retrieval",
                "--lengths",
                "32",
                "128",
                "--methods",
                "truncate,chunk,cubic,cubic+keep",
                "--retrieval-tasks",
                "passkey",
                "--jsonl",
                str(data),
                "-o",
                str(out),
                "--plot",
                str(tmp_path / "r.png"),
            ],
        )
        == 0
    )
    results = json.loads(out.read_text())["results"]["retrieval"]
    assert set(results) == {"truncate", "chunk", "cubic", "cubic+keep"}
    for method in results:
        assert 0 <= results[method]["128"]["docs/accuracy@1"] <= 1
        assert "passkey/ndcg@10" in results[method]["32"]
    assert (tmp_path / "r.png").is_file()


def test_jsonl_reader_accepts_the_documented_form(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"doc_id": 1, "text": "a"}\n{"doc_id": 2, "text": "b"}\n{"query": "q", "relevant": [2]}\n')
    task = jsonl_task(path)
    assert task.documents == ["a", "b"] and task.relevant == [{1}]


def test_plot_from_json_alone(tmp_path, decoder, book):
    results = {
        "model": "m",
        "original_context": 64,
        "results": {
            "ppl": {
                "none": {"32": {"ppl": 10.0}, "128": {"ppl": 90.0}},
                "yarn": {"32": {"ppl": 10.5}, "128": {"ppl": 12.0}},
            }
        },
    }
    (tmp_path / "r.json").write_text(json.dumps(results))
    assert run(main, ["plot", str(tmp_path / "r.json"), "-o", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").stat().st_size > 10_000


@pytest.mark.parametrize("methods", [["native"], ["none", "yarn", "llama3"]])
def test_passkey_plot_of_merged_runs_with_uneven_depths_and_gaps(tmp_path, methods):
    cells = {
        "2048": {"accuracy": 1.0, "trials": 2, "depths": {"0.3": 1.0, "0.75": 1.0}},
        "4096": {
            "accuracy": 0.6,
            "trials": 5,
            "depths": {"0.1": 1.0, "0.25": 0.0, "0.5": 1.0, "0.75": 0.0, "0.9": 1.0},
        },
    }
    by_method = {m: dict(cells) if i % 2 == 0 else {"4096": cells["4096"]} for i, m in enumerate(methods)}
    results = {"model": "m", "original_context": 2048, "results": {"passkey": by_method}}
    (tmp_path / "r.json").write_text(json.dumps(results))
    assert run(main, ["plot", str(tmp_path / "r.json"), "-o", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").stat().st_size > 10_000


@pytest.fixture(scope="module")
def bad_eval(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-eval")
    (root / "empty.txt").write_text("   \n")
    (root / "bad.jsonl").write_text('{"doc_id": "a", "text": "x"}\nnot json\n')
    (root / "dangling.jsonl").write_text('{"doc_id": "a", "text": "x"}\n{"query": "q", "relevant": ["zz"]}\n')
    tiny.save("bert", root / "bert")
    (root / "r.json").write_text("{}")
    return root


EVAL_CASES = {
    "missing text file": (["{dec}", "--task", "ppl", "--lengths", "32", "--data", "{root}/none.txt"], "no such file"),
    "empty text": (["{dec}", "--task", "ppl", "--lengths", "32", "--data", "{root}/empty.txt"], "no text"),
    "no text for ppl": (["{dec}", "--task", "ppl", "--lengths", "32"], "--data"),
    "length above the window without a method": (
        ["{dec}", "--task", "ppl", "--lengths", "128", "--data", "{book}"],
        "above the 64 tokens",
    ),
    "encoder given to ppl": (["{root}/bert", "--task", "ppl", "--lengths", "32", "--data", "{book}"], "for decoders"),
    "decoder given to retrieval": (["{dec}", "--task", "retrieval", "--lengths", "32"], "for encoders"),
    "unknown task": (["{dec}", "--task", "passkee", "--lengths", "32"], "did you mean 'passkey'"),
    "malformed jsonl": (
        ["{root}/bert", "--task", "retrieval", "--lengths", "32", "--jsonl", "{root}/bad.jsonl"],
        "bad.jsonl:2",
    ),
    "jsonl with an unknown relevant doc": (
        ["{root}/bert", "--task", "retrieval", "--lengths", "32", "--jsonl", "{root}/dangling.jsonl"],
        "not in the file",
    ),
    "unknown method": (
        ["{dec}", "--task", "ppl", "--lengths", "32", "--data", "{book}", "--methods", "yarnn"],
        "did you mean 'yarn'",
    ),
    "passkey too short": (["{dec}", "--task", "passkey", "--lengths", "8"], "cannot hold"),
    "attention method misspelt": (
        ["{dec}", "--task", "ppl", "--lengths", "32", "--data", "{book}", "--methods", "self-extnd"],
        "did you mean 'self-extend'",
    ),
    "self-extend group too small for the length": (
        ["{dec}", "--task", "ppl", "--lengths", "256", "--data", "{book}", "--methods", "self-extend+group2"],
        "beyond the model's context 64",
    ),
    "string beyond its reach without a scaling": (
        ["{dec}", "--task", "ppl", "--lengths", "256", "--data", "{book}", "--methods", "string"],
        "string+yarn adds one",
    ),
    "string on a scaling that changes with the length": (
        ["{dec}", "--task", "ppl", "--lengths", "256", "--data", "{book}", "--methods", "string+dynamic"],
        "changes them with the input's length",
    ),
    "attention method in vLLM": (
        ["{dec}", "--task", "passkey", "--lengths", "96", "--methods", "dca", "--backend", "vllm"],
        "no saved file can carry it",
    ),
}


@pytest.mark.parametrize("name", list(EVAL_CASES))
def test_eval_bad_input_is_one_line(bad_eval, decoder, book, tmp_path, capsys, name):
    argv, fragment = EVAL_CASES[name]
    argv = [a.format(root=bad_eval, dec=decoder, book=book) for a in argv]
    code = run(main, ["eval", *argv, "-o", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and "it/s]" not in line and "%|" not in line]
    assert code == 2 and len(lines) == 1, err
    assert fragment.lower() in lines[0].lower(), lines[0]
    assert not (tmp_path / "r.json").exists()


def test_plot_of_a_file_that_is_not_results(bad_eval, tmp_path, capsys):
    assert run(main, ["plot", str(bad_eval / "r.json"), "-o", str(tmp_path / "p.png")]) == 2
    assert "not a ctxext results file" in capsys.readouterr().err


def test_log_n_scaling_changes_long_inputs_only(tmp_path):
    from ctxext.eval.models import load_model, variant

    loaded = load_model(tiny.save_sentence_transformer(tmp_path / "st", window=32))
    short, long = [tiny.words(20)], [tiny.words(150, seed=2)]
    with variant(loaded, "tile", 256):
        loaded.embedder.max_length = 256
        plain = (loaded.embedder.encode(short), loaded.embedder.encode(long))
    with variant(loaded, "tile+logn", 256):
        loaded.embedder.max_length = 256
        scaled = (loaded.embedder.encode(short), loaded.embedder.encode(long))
    assert torch.equal(plain[0], scaled[0])  # n = 22 <= 64: factor 1
    assert not torch.equal(plain[1], scaled[1])  # n = 152 > 64: sharper attention
    with variant(loaded, "tile", 256):
        assert torch.equal(loaded.embedder.encode(long), plain[1])  # the hooks are gone again


def test_a_cut_off_eval_resumes_from_the_methods_in_its_results_file(decoder, book, tmp_path, monkeypatch):
    import ctxext.eval.run as eval_run

    out = tmp_path / "r.json"
    args = ["eval", str(decoder), "--task", "ppl", "--lengths", "32", "64", "--data", str(book), "-o", str(out)]
    whole = tmp_path / "whole.json"
    assert run(main, [*args[:-1], str(whole), "--methods", "none,yarn,linear", "--to", "128"]) == 0
    real = eval_run.variant

    def dies_on_yarn(loaded, label, to):
        if label == "yarn":
            raise KeyboardInterrupt  # the run is killed while measuring its second method
        return real(loaded, label, to)

    monkeypatch.setattr(eval_run, "variant", dies_on_yarn)
    with pytest.raises(KeyboardInterrupt):
        main([*args, "--methods", "none,yarn,linear", "--to", "128"])
    partial = json.loads(out.read_text())
    assert list(partial["results"]["ppl"]) == ["none"] and partial["complete"] is False
    partial["results"]["ppl"]["none"]["32"]["ppl"] = 12345.0  # a kept row is not measured again
    out.write_text(json.dumps(partial))
    monkeypatch.setattr(eval_run, "variant", real)
    assert run(main, [*args, "--methods", "none,yarn,linear", "--to", "128", "--resume"]) == 0
    resumed = json.loads(out.read_text())["results"]["ppl"]
    expected = json.loads(whole.read_text())["results"]["ppl"]
    assert resumed["none"]["32"]["ppl"] == 12345.0
    assert resumed["yarn"] == expected["yarn"] and resumed["linear"] == expected["linear"]
    assert run(main, [*args, "--methods", "none,yarn", "--to", "256", "--resume"]) == 2  # other settings


def test_eval_placement_is_recorded_in_the_results(decoder, book, tmp_path):
    out = tmp_path / "r.json"
    assert (
        run(main, ["eval", str(decoder), "--task", "ppl", "--lengths", "32", "--data", str(book), "-o", str(out)]) == 0
    )
    assert json.loads(out.read_text())["placement"] == {
        "device": "cpu",
        "dtype": "float32",
        "device_map": None,
        "attn": "sdpa",
        "max_memory": None,
    }


def test_eval_records_what_each_method_cost(decoder, book, tmp_path):
    """Seconds per method, every length together; peak GPU memory where CUDA counts it, None elsewhere."""
    out = tmp_path / "r.json"
    argv = ["eval", str(decoder), "--task", "ppl", "--lengths", "32", "64", "--data", str(book), "--to", "128"]
    assert run(main, [*argv, "--methods", "none,self-extend", "-o", str(out)]) == 0
    costs = json.loads(out.read_text())["costs"]
    assert list(costs) == ["none", "self-extend"]
    for spent in costs.values():
        assert spent["seconds"] > 0 and spent["peak_gpu_bytes"] is None


def test_two_processes_split_the_methods_and_write_what_one_process_writes(decoder, book, tmp_path):
    """torchrun (accelerate launch's launcher on GPUs) with 2 CPU processes: each method measured once, by one
    process; the main process writes results identical to a one-process run."""
    import os
    import shutil
    import subprocess
    import sys

    script = shutil.which("ctxext", path=os.path.dirname(sys.executable))
    args = ["eval", str(decoder), "--task", "ppl", "--lengths", "32", "64", "--data", str(book)]
    args += ["--methods", "none,yarn,linear", "--to", "128", "-o"]
    assert run(main, [*args, str(tmp_path / "one.json")]) == 0
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", script]
    done = subprocess.run([*launcher, *args, str(tmp_path / "two.json")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    started = [line.split(":")[0] for line in done.stderr.replace("\r", "\n").splitlines() if " 0%|" in line]
    assert sorted(started) == ["ppl linear", "ppl none", "ppl yarn"]  # each method measured once, not twice
    assert done.stdout.count("wrote") == 1
    one, two = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two"))
    assert two["results"] == one["results"] and list(two["results"]["ppl"]) == ["none", "yarn", "linear"]
    assert list(two["costs"]) == ["none", "yarn", "linear"]  # each process's costs gathered with its rows


def test_a_longrope_folder_is_measured_as_written(decoder, book, tmp_path):
    """A folder that carries longrope (written by extend or --tune) evaluates natively up to its new window,
    the same numbers as longrope applied in memory to the original."""
    from ctxext import api
    from ctxext.eval.run import evaluate

    api.extend(decoder, tmp_path / "longrope", 128, "longrope")
    common = {"stride": 64, "max_tokens": 400}
    written = evaluate(str(tmp_path / "longrope"), "ppl", [128], [str(book)], ["native"], **common)
    in_memory = evaluate(str(decoder), "ppl", [128], [str(book)], ["longrope"], to=128, **common)
    assert written["original_context"] == 64
    assert written["results"]["ppl"]["native"][128]["ppl"] == pytest.approx(
        in_memory["results"]["ppl"]["longrope"][128]["ppl"], rel=1e-6
    )
