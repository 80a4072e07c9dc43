"""ctxext train on an encoder: only rows beyond the original window train, short inputs stay bit-identical,
the output loads in plain sentence-transformers, and a table whose old rows moved is refused."""

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

import tiny
from ctxext.encoders.table_plan import plan_table
from ctxext.errors import CtxextError
from ctxext.extend.encoder_folder import TrainedTableWriter
from ctxext.formats.hf_folder import open_model_folder
from ctxext.train.encoder_rows import EncoderTraining, SpanPairs, train_encoder


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("train-encoder")
    model = tiny.save_sentence_transformer(root / "st", window=32)
    text = root / "long.txt"
    text.write_text(" ".join(tiny.words(200, seed=s) for s in range(8)))
    return root, model, text


@pytest.fixture(scope="module")
def trained(setup):
    root, model, text = setup
    setup_ = EncoderTraining(128, max_steps=6, batch_size=4, learning_rate=1e-2)
    result = train_encoder(model, root / "out", [str(text)], setup_)
    return root / "out", result


def test_only_rows_beyond_the_window_change(setup, trained):
    _, model, _ = setup
    out, result = trained
    before = open_model_folder(model).read_tensor("embeddings.position_embeddings.weight")
    after = load_file(out / "model.safetensors")["embeddings.position_embeddings.weight"]
    assert after.shape == (128, before.shape[1])
    assert torch.equal(after[:64], before)
    tiled = before.repeat(2, 1)
    changed = (after[64:] != tiled[64:]).any(dim=-1)
    assert changed.sum() > 32, "training moved too few of the new rows"
    assert result["readback"]["trained_rows_changed"] == int(changed.sum())
    others_before = {k: v for k, v in load_file(model / "model.safetensors").items() if "position_embeddings" not in k}
    others_after = load_file(out / "model.safetensors")
    for key, value in others_before.items():
        if key.endswith(("position_ids", "token_type_ids")):
            continue
        assert torch.equal(others_after[key], value), key


def test_short_inputs_bit_identical_and_long_inputs_load_in_plain_sentence_transformers(setup, trained):
    _, model, _ = setup
    out, result = trained
    texts = [tiny.words(n, seed=n) for n in (3, 12, 29)]  # within the original 32-token window
    code = (
        "import sys, torch\n"
        "sys.meta_path.insert(0, type('B', (), {'find_spec': lambda s, n, p=None, t=None: "
        "(_ for _ in ()).throw(ImportError()) if n.startswith('ctxext') else None})())\n"
        "from sentence_transformers import SentenceTransformer\n"
        f"texts = {texts!r}\n"
        f"a = SentenceTransformer({str(model)!r}, device='cpu').encode(texts, convert_to_tensor=True)\n"
        f"m = SentenceTransformer({str(out)!r}, device='cpu')\n"
        "b = m.encode(texts, convert_to_tensor=True)\n"
        f"long = m.encode([{tiny.words(120, seed=9)!r}], convert_to_tensor=True)\n"
        "print(m.max_seq_length, (a - b).abs().max().item(), bool(long.isfinite().all()))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    length, gap, finite = done.stdout.split()
    assert (int(length), float(gap), finite) == (128, 0.0, "True")
    record = json.loads((out / "ctxext.json").read_text())
    assert record["kind"] == "learned-table-trained" and len(record["loss"]) == 6
    assert result["readback"]["short_input_max_difference"] == 0.0


def test_a_trained_table_whose_old_rows_moved_is_refused(setup, tmp_path):
    _, model, _ = setup
    folder = open_model_folder(model)
    plan = plan_table(folder, 128, "tile")
    table = plan.new_table(folder.read_tensor(plan.table_key))
    table[3] += 1e-3
    with pytest.raises(CtxextError, match="short inputs differently"):
        TrainedTableWriter(folder, plan, table, [0.0], {}).read_back(_written(folder, plan, table, tmp_path))


def test_a_moved_old_row_that_short_texts_never_reach_is_refused(setup, tmp_path):
    _, model, _ = setup
    folder = open_model_folder(model)
    plan = plan_table(folder, 128, "tile")
    table = plan.new_table(folder.read_tensor(plan.table_key))
    table[tiny.POSITIONS - 2] += 1e-3  # beyond the 32-token window the short texts are cut to
    with pytest.raises(CtxextError, match="moved 1 of the original"):
        TrainedTableWriter(folder, plan, table, [0.0], {}).read_back(_written(folder, plan, table, tmp_path))


def test_changed_embeddings_with_an_intact_table_are_refused(setup, tmp_path):
    from safetensors.torch import save_file

    _, model, _ = setup
    folder = open_model_folder(model)
    plan = plan_table(folder, 128, "tile")
    table = plan.new_table(folder.read_tensor(plan.table_key))
    staging = _written(folder, plan, table, tmp_path)
    weights = next(staging.rglob("model.safetensors"))
    state = load_file(weights)
    key = next(k for k in state if k.endswith("attention.output.dense.bias"))
    state[key] = state[key] + 1e-2
    save_file(state, str(weights))
    with pytest.raises(CtxextError, match="short inputs differently"):
        TrainedTableWriter(folder, plan, table, [0.0], {}).read_back(staging)


def _written(folder, plan, table, staging):
    TrainedTableWriter(folder, plan, table, [0.0], {}).write(staging)
    return staging


def test_span_pairs_take_queries_from_inside_their_document():
    tokenizer = tiny.tokenizer(256)
    pairs = SpanPairs(tokenizer, " ".join(tiny.words(200, seed=s) for s in range(4)), 64, 128, 8, seed=0)
    for _ in range(5):
        queries, documents = pairs.batch(4)
        assert len(set(documents)) == 4
        for query, document in zip(queries, documents, strict=True):
            assert query in document
            assert 64 <= len(tokenizer(document, add_special_tokens=True)["input_ids"]) <= 128


def test_loss_falls_on_average(trained):
    _, result = trained
    losses = result["history"]
    assert sum(losses[-3:]) < sum(losses[:3])


def test_a_trained_model_is_chunked_at_its_original_window(trained):
    from ctxext.eval.doc_embedding import embed_documents
    from ctxext.eval.models import load_model, variant

    out, _ = trained
    loaded = load_model(out)
    assert (loaded.context, loaded.chunk_window) == (128, 64)
    with variant(loaded, "native+late", None) as mode:
        late = embed_documents(loaded.embedder, [tiny.words(120, seed=3)], mode, 128, loaded.chunk_window)
    assert mode == "late" and len(late[0]) == 2  # 120 words in 62-token spans: two chunk vectors


def test_distillation_adds_its_term_inside_the_gradient_cache(setup):
    """Loss and gradient of the cached ranking loss with the distillation term equal those of the same loss
    computed in one ordinary autograd pass."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from ctxext.train.encoder_rows import RankingWithDistillation, chunk_means

    _, model, _ = setup
    st = SentenceTransformer(str(model), device="cpu").eval()
    table = st[0].auto_model.embeddings.position_embeddings.weight
    queries = [tiny.words(5, seed=s) for s in range(3)]
    documents = [tiny.words(40, seed=10 + s) for s in range(3)]
    targets = chunk_means(st, documents, 16, 128)
    assert targets.shape == (3, table.shape[1]) and not targets.requires_grad

    def loss_and_grad(loss_fn):
        table.grad = None
        table.requires_grad_(True)
        loss = loss_fn([st.preprocess(queries), st.preprocess(documents)], torch.arange(3))
        loss.backward()
        return loss.item(), table.grad.clone()

    cached = RankingWithDistillation(st, 2.5, mini_batch_size=1)
    cached.targets = targets
    plain = MultipleNegativesRankingLoss(st)

    def direct(features, labels):
        documents_ = st(features[1])["sentence_embedding"]
        drift = (1 - torch.cosine_similarity(documents_, targets, dim=-1)).mean()
        return plain(features, labels) + 2.5 * drift

    (a, grad_a), (b, grad_b) = loss_and_grad(cached), loss_and_grad(direct)
    undistilled, _ = loss_and_grad(RankingWithDistillation(st, 0.0, mini_batch_size=1))
    assert a == pytest.approx(b, rel=1e-5) and a > undistilled + 0.01
    torch.testing.assert_close(grad_a, grad_b, rtol=1e-3, atol=1e-4 * grad_b.abs().max().item())


def test_chunk_means_are_the_chunk_baseline_of_eval(setup):
    from ctxext.eval.doc_embedding import embed_documents
    from ctxext.eval.models import load_model
    from ctxext.train.encoder_rows import chunk_means

    _, model, _ = setup
    loaded = load_model(model)
    documents = [tiny.words(90, seed=4), tiny.words(20, seed=5)]
    ours = chunk_means(loaded.embedder.sentence_transformer, documents, loaded.chunk_window, 4096)
    baseline = embed_documents(loaded.embedder, documents, "chunk", 4096, loaded.chunk_window)
    torch.testing.assert_close(ours, baseline.to(ours.dtype), rtol=1e-4, atol=1e-5)


def test_distillation_keeps_long_embeddings_nearer_the_chunk_means(setup, trained):
    from sentence_transformers import SentenceTransformer

    from ctxext.train.encoder_rows import chunk_means

    root, model, text = setup
    plain_out, _ = trained
    setup_ = EncoderTraining(128, max_steps=6, batch_size=4, learning_rate=1e-2, distill=20.0)
    train_encoder(model, root / "distilled", [str(text)], setup_)
    assert json.loads((root / "distilled" / "ctxext.json").read_text())["training"]["distill"] == 20.0
    held_out = [tiny.words(110, seed=100 + s) for s in range(6)]
    targets = chunk_means(SentenceTransformer(str(model), device="cpu"), held_out, 64, 128)

    def closeness(folder):
        long = SentenceTransformer(str(folder), device="cpu").encode(held_out, convert_to_tensor=True)
        return torch.cosine_similarity(long, targets, dim=-1).mean().item()

    assert closeness(root / "distilled") > closeness(plain_out)
