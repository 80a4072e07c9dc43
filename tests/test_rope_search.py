"""LongRoPE divisor search (`ctxext extend --tune`): constraints, the written folder is the model that scored
best, GGUF divisors, bad input."""

from __future__ import annotations

import json
import math

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from ctxext.cli.main import main, run
from ctxext.decoders.rope_plan import plan_rope
from ctxext.decoders.rope_search import CEILING, constrain, mutate, seeds
from ctxext.windows import Window, window_nll


def test_candidates_are_monotone_and_bounded(decoder):
    generator = torch.Generator().manual_seed(0)
    plan = plan_rope(json.loads((decoder / "config.json").read_text()), "m", 256, "longrope")
    for name, start in seeds(plan).items():
        assert torch.equal(constrain(start, plan.factor), start), name  # the seeds already obey the rules
        for _ in range(20):
            child = mutate(start, plan.factor, generator)
            assert (child[1:] >= child[:-1]).all() and child.min() >= 1 and child.max() <= CEILING * plan.factor
            assert not torch.equal(child, start)


def test_mutants_do_not_drift_towards_more_interpolation(decoder):
    generator = torch.Generator().manual_seed(1)
    plan = plan_rope(json.loads((decoder / "config.json").read_text()), "m", 256, "longrope")
    for name, start in seeds(plan).items():
        ratios = torch.stack([(mutate(start, plan.factor, generator) / start).log() for _ in range(200)])
        assert abs(ratios.mean().item()) < 0.03, name  # a running maximum instead of a sort drifts upwards


def test_the_written_folder_is_the_candidate_that_scored_best(decoder, book, tmp_path, capsys):
    out = tmp_path / "tuned"
    argv = ["extend", str(decoder), "--to", "128", "--tune", str(book), "--tune-evals", "5", "--tune-attention", "0"]
    assert run(main, [*argv, "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "searched 5 candidates at 128 tokens" in printed and "attention factor: tried" not in printed
    record = json.loads((out / "ctxext.json").read_text())
    search = record["search"]
    assert len(search["candidates"]) == 5 and search["text"] == str(book)
    best = min(search["candidates"], key=lambda c: c["score"])
    assert search["best_ppl"] == best["ppl"] and search["best"] == best["name"] and search["needles"] == 2
    for candidate in search["candidates"]:  # the log of the product of the text's and the answers' perplexities
        assert candidate["score"] == pytest.approx(math.log(candidate["ppl"]) + math.log(candidate["needle_ppl"]))
    config = json.loads((out / "config.json").read_text())
    assert config["rope_parameters"]["rope_type"] == "longrope"
    assert config["rope_parameters"]["long_factor"] == best["divisors"]
    assert config["rope_parameters"]["attention_factor"] == 1.0 and "attention_candidates" not in search
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    ids = torch.tensor(AutoTokenizer.from_pretrained(out)(book.read_text())["input_ids"][:129])
    ppl = math.exp(window_nll(model, ids, Window(0, 128, 1)).mean().item())
    assert ppl == pytest.approx(best["ppl"], rel=1e-6)  # loads as the model that was scored
    assert len({round(c["ppl"], 9) for c in search["candidates"]}) == 5  # each candidate is a different model


def test_gguf_carries_the_searched_divisors_as_rope_freqs(decoder):
    from ctxext.decoders.rope_plan import plan_rope

    config = json.loads((decoder / "config.json").read_text())
    plan = plan_rope(config, "m", 128, "longrope")
    searched = tuple(float(x) for x in torch.linspace(1.0, 2.4, 8))
    tuned = plan.__class__(**{**plan.__dict__, "searched": searched})
    assert torch.allclose(tuned.spec.gguf(tuned).divisors, torch.tensor(searched, dtype=torch.float64))
    assert tuned.rope_parameters()["long_factor"] == list(searched)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--tune", "{short}"], "needs at least 129"),
        (["--tune", "{missing}"], "not found"),
        (["--tune", "{book}", "--method", "yarn"], "use --method longrope"),
        (["--tune", "{book}", "--tune-evals", "2"], "at least 3"),
        (["--tune", "{book}", "--tune-attention", "-1"], "--tune-attention is a number of attention factors"),
    ],
)
def test_tune_bad_input_is_one_line(decoder, book, tmp_path, capsys, extra, message):
    short = tmp_path / "short.txt"
    short.write_text("a few words only")
    args = [a.format(short=short, missing=tmp_path / "nope.txt", book=book) for a in extra]
    out = tmp_path / "o"
    assert run(main, ["extend", str(decoder), "--to", "128", *args, "-o", str(out)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip() and "it/s" not in line]
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()


def test_settings_are_checked_before_the_model_loads(decoder, book, monkeypatch):
    import ctxext.loading
    from ctxext.decoders.rope_search import tune_plan
    from ctxext.errors import CtxextError

    def no_load(*args, **kwargs):
        raise AssertionError("loaded the model before checking the settings")

    monkeypatch.setattr(ctxext.loading, "load_causal_lm", no_load)
    config = json.loads((decoder / "config.json").read_text())
    with pytest.raises(CtxextError, match="use --method longrope"):
        tune_plan(plan_rope(config, "m", 128, "yarn"), decoder, book)
    with pytest.raises(CtxextError, match="at least 3"):
        tune_plan(plan_rope(config, "m", 128, "longrope"), decoder, book, evaluations=2)


def test_needle_prompts_end_in_the_answer_and_hide_the_key_at_their_depths(small_smollm2_gguf, book):
    from ctxext.decoders.rope_search import calibration_ids, needle_prompts

    tokenizer = AutoTokenizer.from_pretrained(str(small_smollm2_gguf.parent), gguf_file=small_smollm2_gguf.name)
    ids = calibration_ids(tokenizer, book, 400)
    prompts = needle_prompts(tokenizer, ids, 400, 2, seed=3)
    again = needle_prompts(tokenizer, ids, 400, 2, seed=3)
    assert [(p.tolist(), a) for p, a in prompts] == [(p.tolist(), a) for p, a in again]
    for index, (prompt, answer_from) in enumerate(prompts):
        assert len(prompt) == 401
        key = tokenizer.decode(prompt[answer_from:]).strip().rstrip(".")
        assert key.isdigit() and len(key) == 5
        before = tokenizer.decode(prompt[:answer_from])
        assert before.endswith("What is the pass key? The pass key is") and before.count(key) == 2
        depth = len(tokenizer(before[: before.index("The pass key is")])["input_ids"]) / 400
        assert abs(depth - (index + 0.5) / 2) < 0.1, depth


def test_without_needles_the_text_alone_ranks_the_candidates(decoder, book, tmp_path):
    out = tmp_path / "plain"
    argv = ["extend", str(decoder), "--to", "128", "--tune", str(book), "--tune-evals", "3", "--tune-needles", "0"]
    assert run(main, [*argv, "-o", str(out)]) == 0
    search = json.loads((out / "ctxext.json").read_text())["search"]
    assert search["needles"] == 0 and all("needle_ppl" not in c for c in search["candidates"])
    assert search["best_ppl"] == min(c["ppl"] for c in search["candidates"])


def test_a_negative_number_of_needles_is_refused_in_one_line(decoder, book, tmp_path, capsys):
    argv = ["extend", str(decoder), "--to", "128", "--tune", str(book), "--tune-needles", "-1"]
    assert run(main, [*argv, "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--tune-needles is a number of prompts, 0 or more, not -1" in err and err.count("\n") == 0
    assert not (tmp_path / "o").exists()


def test_the_attention_factor_is_searched_on_the_best_divisors_and_written_for_every_runtime(decoder, book, tmp_path):
    """Three known factors (1, LongRoPE's, YaRN's), then midpoints around the best; the folder loads as the
    candidate that scored lowest, and says the factor where each runtime reads it."""
    out = tmp_path / "tuned"
    argv = ["extend", str(decoder), "--to", "128", "--tune", str(book), "--tune-evals", "3", "--tune-attention", "5"]
    assert run(main, [*argv, "-o", str(out)]) == 0
    search = json.loads((out / "ctxext.json").read_text())["search"]
    tried = search["attention_candidates"]
    factors = [row["attention_factor"] for row in tried]
    assert len(tried) == 5 and len(set(factors)) == 5
    assert factors[:3] == pytest.approx([1.0, math.sqrt(1 + math.log(2) / math.log(64)), 0.1 * math.log(2) + 1])
    assert tried[0]["ppl"] == pytest.approx(search["best_ppl"], rel=1e-9)  # m = 1 on the best divisors
    best = min(tried, key=lambda row: row["score"])
    assert search["best_attention_factor"] == best["attention_factor"]
    for index, m in enumerate(factors[3:], 3):  # each a midpoint of two factors tried before it
        assert any(abs(m - (a + b) / 2) < 1e-12 for a in factors[:index] for b in factors[:index] if a != b)
    params = json.loads((out / "config.json").read_text())["rope_parameters"]
    m = best["attention_factor"]
    assert params["attention_factor"] == params["short_mscale"] == params["long_mscale"] == m
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    ids = torch.tensor(AutoTokenizer.from_pretrained(out)(book.read_text())["input_ids"][:129])
    ppl = math.exp(window_nll(model, ids, Window(0, 128, 1)).mean().item())
    assert ppl == pytest.approx(best["ppl"], rel=1e-6)
    assert model.model.rotary_emb.attention_scaling == pytest.approx(m)


def test_midpoints_close_in_on_the_best_factor():
    from ctxext.decoders.rope_search import next_attention

    def row(score):
        return {"score": score}

    tried = [(row(3.0), 1.0), (row(1.0), 1.05), (row(2.0), 1.2)]
    assert next_attention(tried) == pytest.approx(1.025)  # the nearer neighbour first
    tried.append((row(1.5), 1.025))
    assert next_attention(tried) == pytest.approx(1.0375)  # between the best and its new nearer neighbour
    assert next_attention([(row(1.0), 1.0)]) is None


def test_gguf_carries_a_searched_attention_factor_as_attn_factor(decoder):
    from ctxext.formats.gguf_file import rope_metadata

    config = json.loads((decoder / "config.json").read_text())
    plan = plan_rope(config, "m", 128, "longrope")
    keys, _ = rope_metadata("llama", plan)
    assert keys["llama.rope.scaling.attn_factor"] is None  # m = 1: the key is removed, as before
    tuned = plan.__class__(**{**plan.__dict__, "searched_attention": 1.125})
    keys, divisors = rope_metadata("llama", tuned)
    assert keys["llama.rope.scaling.attn_factor"][0] == 1.125
    assert divisors is not None and tuned.attention_factor == 1.125
    assert tuned.inv_freq(32)[1] == 1.125  # inside L too, as transformers computes it
