"""Scoring functions on cases whose answers are known by hand: retrieval ranks, decoder drift, passkey prompts."""

from __future__ import annotations

import math

import torch

from ctxext.eval.drift import decoder_drift
from ctxext.eval.passkey import key_sentence, passkey_prompt
from ctxext.eval.retrieval import rank_metrics


def test_rank_metrics_on_a_known_ranking():
    documents = torch.eye(4)
    queries = torch.tensor([[1.0, 0.2, 0, 0], [0.9, 1.0, 0, 0], [0, 0, 0.1, 1.0]])
    # query 0 wants doc 0 (ranked 1st); query 1 wants doc 0 (ranked 2nd); query 2 wants docs 2 and 3 (2nd, 1st)
    got = rank_metrics(queries, documents, [{0}, {0}, {2, 3}])
    assert got["accuracy@1"] == 2 / 3
    assert math.isclose(got["ndcg@10"], (1 + 1 / math.log2(3) + 1) / 3)


def test_decoder_drift_of_known_distributions():
    ids = torch.tensor([0, 1, 0])
    uniform = torch.log(torch.full((3, 2), 0.5))
    sure = torch.log(torch.tensor([[0.25, 0.75], [0.75, 0.25], [0.5, 0.5]]))
    same = decoder_drift([uniform], [uniform], [ids])
    assert same["kl"] == 0 and same["ppl_before"] == same["ppl_after"]
    assert math.isclose(same["ppl_after"], 2.0, rel_tol=1e-7)
    moved = decoder_drift([uniform], [sure], [ids])
    assert math.isclose(moved["kl"], 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75), rel_tol=1e-6)
    assert math.isclose(moved["ppl_after"], 1 / 0.75, rel_tol=1e-7) and moved["tokens"] == 2


def test_passkey_prompt_has_the_length_and_puts_the_key_at_the_depth(minilm_path):
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_path)
    needle = tokenizer(key_sentence(12345), add_special_tokens=False)["input_ids"]
    for depth in (0.0, 0.5, 1.0):
        ids = passkey_prompt(tokenizer, 60, depth, 12345).tolist()
        assert len(ids) == 60
        starts = [i for i in range(len(ids)) if ids[i : i + len(needle)] == needle]
        assert len(needle) > 3 and len(starts) == 1
    early = passkey_prompt(tokenizer, 60, 0.0, 12345).tolist()
    late = passkey_prompt(tokenizer, 60, 1.0, 12345).tolist()
    where = [next(i for i in range(60) if p[i : i + len(needle)] == needle) for p in (early, late)]
    assert where[0] < where[1]
