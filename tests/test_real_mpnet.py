"""The packaged all-mpnet-base-v2: offset-2 table (RoBERTa convention) plus relative attention bias."""

import pytest
import torch

from ctxext.encoders.embed import Embedder, long_text
from ctxext.extend.encoder_folder import extend_encoder
from ctxext.formats.hf_folder import open_model_folder

pytestmark = pytest.mark.slow


def test_extended_to_1024_with_the_offset_found(mpnet_path, tmp_path):
    original_table = open_model_folder(mpnet_path).read_tensor("embeddings.position_embeddings.weight")
    plan, result = extend_encoder(mpnet_path, tmp_path / "mpnet-1024", 1024, "cubic")
    assert plan.family == "mpnet" and plan.offset == 2 and plan.new_rows == 1026
    assert result.long_input_ok and result.long_input_tokens > 1000
    table = open_model_folder(tmp_path / "mpnet-1024").read_tensor("embeddings.position_embeddings.weight")
    assert torch.equal(table[:2], original_table[:2])  # reserved rows copied, row 1 stays zero
    torch.testing.assert_close(table[2], original_table[2])
    torch.testing.assert_close(table[-1], original_table[-1])


def test_original_fails_where_the_extension_reads(mpnet_path, tmp_path):
    embedder = Embedder(mpnet_path)
    text = long_text(embedder.tokenizer, 1000)
    embedder.max_length = 1000
    with pytest.raises((IndexError, RuntimeError)):
        embedder.encode([text])
