"""The paths a 7B-70B model on GPUs takes, tested without a GPU: inputs and targets where a device map puts the
embedding and the head, no KV cache in scoring forwards, drift in chunks, prompt batches sized from free memory,
a gather that waits, and the run-time attention's memory. Memory is checked on an 8B-shaped Llama held on
PyTorch's meta device (shapes, no weights), recording every tensor the code creates."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import transformers
from torch.nn import functional as F

import tiny
import tiny_decoders
from ctxext.decoders import long_attention as la
from ctxext.eval.tasks import drift as drift_task
from ctxext.eval.tasks.passkey import passkey_grid
from ctxext.memory import Allocations, meta_llama, prompt_batch, prompt_bytes
from ctxext.windows import Window, window_nll

GIB = 1 << 30


@pytest.fixture(scope="module")
def llama_8b():
    return meta_llama()


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    folder = tiny_decoders.save_decoder("llama", tmp_path_factory.mktemp("gpu") / "llama")
    return transformers.AutoModelForCausalLM.from_pretrained(folder).eval(), folder


@pytest.fixture
def no_packing_check(monkeypatch):
    """transformers reads position ids' values to detect packed sequences; meta tensors have none."""
    import transformers.masking_utils as masking

    monkeypatch.setattr(masking, "find_packed_sequence_indices", lambda position_ids: None)


def test_scoring_puts_inputs_at_the_embedding_and_targets_at_the_head_not_at_model_device(tiny_llama, monkeypatch):
    """Under --device-map auto ``model.device`` is the first parameter's device, neither the embedding's nor
    lm_head's: inputs or targets sent there meet the other tensors on the wrong GPU."""
    model, _ = tiny_llama
    ids = torch.randint(0, tiny.VOCAB, (65,), generator=torch.Generator().manual_seed(0))
    expected = window_nll(model, ids, Window(0, 64, 1))
    monkeypatch.setattr(type(model), "device", property(lambda self: torch.device("meta")))
    torch.testing.assert_close(window_nll(model, ids, Window(0, 64, 1)), expected, rtol=0, atol=0)
    answers = passkey_grid(model, tiny.tokenizer(64, bos_eos=False), [60], [0.5], 1, batch=1)
    assert answers[60]["trials"] == 1


def test_scoring_forwards_build_no_kv_cache(tiny_llama, monkeypatch):
    """A perplexity or drift forward never reuses a cache; building one costs 4 GB at 32k for an 8B model."""
    model, _ = tiny_llama
    built = []
    original = transformers.cache_utils.DynamicCache.__init__
    monkeypatch.setattr(
        transformers.cache_utils.DynamicCache,
        "__init__",
        lambda self, *a, **k: built.append(1) or original(self, *a, **k),
    )
    ids = torch.randint(0, tiny.VOCAB, (65,), generator=torch.Generator().manual_seed(1))
    window_nll(model, ids, Window(0, 64, 1))
    hidden = drift_task.last_hidden(model, ids[:32]).cpu()
    drift_task.chunked_drift(model, [hidden], [ids[:32]])
    assert built == []


def test_drift_in_chunks_equals_drift_from_whole_distributions(tiny_llama, monkeypatch):
    """Chunked drift gives what full-vocabulary log-probabilities of whole windows give, never holding more
    than CHUNK_ROWS rows of them."""
    model, _ = tiny_llama
    generator = torch.Generator().manual_seed(2)
    windows = [torch.randint(0, tiny.VOCAB, (40,), generator=generator) for _ in range(3)]
    with torch.no_grad():
        before = [F.log_softmax(model(w[None]).logits[0].float(), -1) for w in windows]
        hidden = [drift_task.last_hidden(model, w).cpu() for w in windows]
        for parameter in model.model.layers[0].parameters():  # the "extended" model: one layer changed
            parameter.mul_(1.5)
        after = [F.log_softmax(model(w[None]).logits[0].float(), -1) for w in windows]
    whole = drift_task.decoder_drift(before, after, windows)
    head, rows_seen = model.get_output_embeddings(), []
    hook = head.register_forward_hook(lambda module, args, out: rows_seen.append(out.shape[0]))
    monkeypatch.setattr(drift_task, "CHUNK_ROWS", 7)
    try:
        chunked = drift_task.chunked_drift(model, hidden, windows)
    finally:
        hook.remove()
        with torch.no_grad():
            for parameter in model.model.layers[0].parameters():
                parameter.div_(1.5)
    assert whole["kl"] > 1e-4
    assert chunked["tokens"] == whole["tokens"] == 3 * 39
    for key in ("kl", "ppl_before", "ppl_after"):
        assert math.isclose(chunked[key], whole[key], rel_tol=1e-4), key
    assert max(rows_seen) == 7


def test_prompt_batch_fits_free_memory_on_an_8b_model(llama_8b):
    """At 128k an 8B prompt holds 17.2 GB of KV cache and ~15.6 GB of one layer's activations (bf16): 80 GiB
    free hold two, not the eight asked; at 32k all eight fit; never fewer than one."""
    per_prompt = prompt_bytes(llama_8b.config, 131072, 2)
    assert per_prompt == (2 * 32 * 8 * 128 + 3 * 14336 + 4 * 4096) * 131072 * 2
    at_128k = prompt_batch(llama_8b, 131072, 8, free=80 * GIB)
    assert at_128k == 2 and at_128k * per_prompt <= 0.9 * 80 * GIB
    assert prompt_batch(llama_8b, 32768, 8, free=80 * GIB) == 8
    assert prompt_batch(llama_8b, 131072, 8, free=10 * GIB) == 1


def test_passkey_decodes_as_many_prompts_together_as_free_memory_holds(tiny_llama, monkeypatch):
    model, folder = tiny_llama
    sizes = []
    original = model.generate
    monkeypatch.setattr(model, "generate", lambda ids, **k: sizes.append(len(ids)) or original(ids, **k))
    tokenizer = tiny.tokenizer(64, bos_eos=False)
    per_prompt = prompt_bytes(model.config, 60 + 8, 4)
    monkeypatch.setattr("ctxext.memory.free_bytes", lambda device: 3 * per_prompt)
    passkey_grid(model, tokenizer, [60], [0.2, 0.8], 3, batch=8)
    assert sizes == [2, 2, 2]  # 0.9 x 3 prompts' memory holds two
    sizes.clear()
    monkeypatch.setattr("ctxext.memory.free_bytes", lambda device: 100 * per_prompt)
    passkey_grid(model, tokenizer, [60], [0.2, 0.8], 3, batch=4)
    assert sizes == [4, 2]


def test_processes_wait_for_each_other_longer_than_torchs_ten_minutes(monkeypatch):
    """A process whose methods finish first waits in the gather for hours; torch's default would end it."""
    import datetime

    import accelerate

    from ctxext.eval import processes

    seen = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(accelerate, "PartialState", lambda **kwargs: seen.update(kwargs) or SimpleNamespace())
    processes._state()
    assert seen["timeout"] >= datetime.timedelta(days=30)


@pytest.mark.parametrize("length", [32768, 131072])
def test_window_scoring_of_an_8b_model_allocates_no_full_vocabulary_or_n_by_n_tensor(
    llama_8b, no_packing_check, length
):
    """The largest tensor is one layer's MLP activation (n x 14,336); never logits (n x 128,256), scores
    (n x n) or a KV cache."""
    ids = torch.randint(0, 1000, (length + 1,))
    with Allocations() as seen:
        window_nll(llama_8b, ids, Window(0, length, 1))
    assert seen.largest == length * 14336
    assert not any(shape[-2:] == (length, length) for shape in seen.shapes if len(shape) >= 2)
    assert max(math.prod(shape) for shape in seen.shapes if shape and shape[-1] == 128256) == 1024 * 128256


@pytest.mark.parametrize("length", [32768, 131072])
def test_drift_of_an_8b_model_holds_chunks_of_distributions(llama_8b, no_packing_check, length):
    ids = torch.randint(0, 1000, (length,))
    with Allocations() as seen:
        hidden = drift_task.last_hidden(llama_8b, ids).cpu()
        drift_task.chunked_drift(llama_8b, [hidden], [ids])
    vocabulary_rows = [math.prod(shape[:-1]) for shape in seen.shapes if shape and shape[-1] == 128256]
    assert max(vocabulary_rows) == drift_task.CHUNK_ROWS
    assert seen.largest == length * 14336


@pytest.mark.parametrize("length", [32768, 131072])
@pytest.mark.parametrize("method", ["self-extend", "dca", "string"])
def test_run_time_attention_of_an_8b_layer_holds_tiles_not_n_by_n_scores(method, length):
    """One attention layer of an 8B model (32 query heads, 8 key/value heads) at the length: scores are formed
    for at most BLOCK queries x KEY_TILE keys per head, and keys and values are never repeated per query head."""
    context = 8192 if method != "string" else length  # STRING at the native window, where its gains are
    scheme = la.choose(method, context, length)
    query = torch.empty(1, 32, length, 128, dtype=torch.bfloat16, device="meta")
    key, value = (torch.empty(1, 8, length, 128, dtype=torch.bfloat16, device="meta") for _ in range(2))
    inv_freq = 1.0 / (500000.0 ** (torch.arange(0, 128, 2).double() / 128))
    module = SimpleNamespace(ctxext_scheme=scheme, ctxext_inv_freq=inv_freq, num_key_value_groups=4, is_causal=True)
    with Allocations() as seen:
        out, _ = la.remapped_attention(module, query, key, value, None, scaling=128**-0.5)
    assert out.shape == (1, length, 32, 128)
    bound = 32 * la.BLOCK * la.KEY_TILE
    assert seen.largest <= max(bound, 32 * length * 128)  # a score tile, or the output itself
    full_size = [shape for shape in seen.shapes if math.prod(shape) == 32 * length * 128]
    assert len(full_size) == 1  # the output, written in place; repeated keys and values would add more
