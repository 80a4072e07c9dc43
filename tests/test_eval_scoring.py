"""Scoring functions on cases whose answers are known by hand: retrieval ranks, decoder drift, passkey prompts."""

from __future__ import annotations

import math

import pytest
import torch

import tiny
from ctxext.eval.tasks.drift import decoder_drift
from ctxext.eval.tasks.passkey import key_sentence, passkey_prompt
from ctxext.eval.tasks.retrieval import rank_metrics


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


def test_maxsim_scores_a_document_by_its_best_chunk():
    from ctxext.eval.doc_embedding import similarity

    queries = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    documents = [torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]), torch.tensor([[0.6, 0.8]])]
    assert torch.allclose(similarity(queries, documents), torch.tensor([[1.0, 0.6], [1.0, 0.8]]))
    pooled = torch.stack([d.mean(0) for d in documents])
    assert similarity(queries, pooled)[0].argmax() == 1  # mean pooling (0.45 vs 0.6) ranks the other way


def test_maxsim_finds_a_deep_chunk_that_truncation_cannot(tmp_path):
    """Each query is exactly the third 30-token chunk of its 90-word document: max-sim must rank it first."""
    import json

    from ctxext.eval.run import evaluate

    model = tiny.save_sentence_transformer(tmp_path / "st", window=32)
    rows, docs = [], [tiny.words(90, seed=s) for s in range(4)]
    for i, text in enumerate(docs):
        rows.append({"doc_id": i, "text": text})
        rows.append({"query": " ".join(text.split()[60:90]), "relevant": [i]})
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    results = evaluate(
        str(model),
        "retrieval",
        [128],
        methods=["truncate", "maxsim", "late"],
        subtasks=["passkey"],
        jsonl=str(tmp_path / "d.jsonl"),
    )["results"]["retrieval"]
    assert results["maxsim"][128]["d/accuracy@1"] == 1.0
    assert results["truncate"][128]["d/accuracy@1"] < 1.0
    assert {"d/accuracy@1", "d/ndcg@10"} <= set(results["late"][128])


def test_late_chunks_see_the_whole_document_and_maxsim_chunks_do_not(tmp_path):
    from ctxext.eval.doc_embedding import embed_documents
    from ctxext.eval.models import load_model, variant

    loaded = load_model(tiny.save_sentence_transformer(tmp_path / "st", window=32))
    head = tiny.words(30, seed=1)  # exactly one chunk of 32 - 2 special tokens
    documents = [head + " " + tiny.words(60, seed=2), head + " " + tiny.words(60, seed=3)]
    chunks = embed_documents(loaded.embedder, documents, "maxsim", 128, 32)
    assert [len(c) for c in chunks] == [3, 3] and torch.equal(chunks[0][0], chunks[1][0])
    with variant(loaded, "late", 128) as mode:
        late = embed_documents(loaded.embedder, documents, mode, 128, 32)
    assert mode == "late" and [len(c) for c in late] == [3, 3]
    assert not torch.allclose(late[0][0], late[1][0])  # the first chunk's vector depends on what follows it


def test_batched_passkey_decodes_what_one_at_a_time_decodes(tmp_path):
    import tiny_decoders
    from ctxext.eval.models import load_model
    from ctxext.eval.tasks.passkey import continuations, passkey_grid

    loaded = load_model(tiny_decoders.save_decoder("llama", tmp_path / "llama"))
    args = (loaded.model, loaded.tokenizer, [80, 100], [0.2, 0.8], 3)
    calls = []
    single = passkey_grid(*args, batch=1, progress=calls.append)
    batched = passkey_grid(*args, batch=4, progress=calls.append)
    assert single == batched
    prompts = torch.cat([tiny.input_ids(80, seed=seed) for seed in range(3)])
    one_by_one = [continuations(loaded.model, loaded.tokenizer, p.unsqueeze(0))[0] for p in prompts]
    assert continuations(loaded.model, loaded.tokenizer, prompts) == one_by_one
    assert len(set(one_by_one)) > 1  # the prompts differ, and so do their continuations
    assert calls[:12] == [1] * 12 and calls[12:] == [4, 2, 4, 2]  # prompts of one length batched together


def test_retrieval_accuracy_carries_its_wilson_interval_into_the_table():
    from ctxext.eval.intervals import wilson_interval
    from ctxext.eval.report import markdown
    from ctxext.eval.tasks.retrieval import rank_metrics

    metrics = rank_metrics(torch.eye(4), torch.eye(4), [{0}, {1}, {2}, {0}])  # the last query misses
    assert metrics["accuracy@1"] == 0.75
    assert metrics["accuracy@1_ci95"] == pytest.approx(wilson_interval(3, 4))
    low, high = metrics["accuracy@1_ci95"]
    assert 0.25 < low < 0.75 < high < 1
    row = {f"passkey/{k}": v for k, v in metrics.items()}
    table = markdown({"results": {"retrieval": {"chunk": {"128": row}}}})
    assert f"| chunk | 0.75 [{low:.3g}, {high:.3g}] |" in table
