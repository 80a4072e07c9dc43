"""Late chunking pools each span of the document's token states with the model's own pooling (max, mean, ...);
a model that pools by one token (cls, lasttoken) gets mean pooling, and the results say which was used."""

import json

import pytest
import torch

import tiny
from ctxext.cli.main import main, run
from ctxext.encoders.embed import Embedder
from ctxext.eval.doc_embedding import embed_documents

WINDOW = 32


def _spans(embedder, text):
    ids = embedder.tokenizer(text, add_special_tokens=False)["input_ids"]
    states = embedder.token_states(text, tiny.POSITIONS)
    body = states[1 : 1 + len(ids)]
    size = WINDOW - 2
    return [body[i : i + size] for i in range(0, len(body), size)]


@pytest.mark.parametrize(
    "pooling,expected",
    [("max", lambda span: span.amax(0)), ("mean", lambda span: span.mean(0)), ("cls", lambda span: span.mean(0))],
)
def test_late_chunks_are_pooled_by_the_models_pooling(tmp_path, pooling, expected):
    embedder = Embedder(tiny.save_sentence_transformer(tmp_path / "st", window=WINDOW, pooling=pooling))
    text = tiny.words(60, seed=3)
    [late] = embed_documents(embedder, [text], "late", tiny.POSITIONS, WINDOW)
    spans = _spans(embedder, text)
    assert len(spans) == 2
    torch.testing.assert_close(late, torch.stack([expected(span) for span in spans]), rtol=1e-6, atol=1e-6)
    used = embedder.span_pooling()[1]
    assert used == pooling if pooling != "cls" else used.startswith("mean (the model pools by cls")


def test_the_results_file_says_how_late_chunks_were_pooled(tmp_path):
    model = tiny.save_sentence_transformer(tmp_path / "st", window=WINDOW, pooling="max")
    out = tmp_path / "r.json"
    argv = ["eval", str(model), "--task", "retrieval", "--lengths", "128", "--methods", "chunk,cubic+late"]
    assert run(main, [*argv, "--retrieval-tasks", "passkey", "-o", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]["retrieval"]
    assert rows["cubic+late"]["128"]["late_pooling"] == "max"
    assert "late_pooling" not in rows["chunk"]["128"]
