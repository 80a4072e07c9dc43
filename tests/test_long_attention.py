"""Self-Extend and Dual Chunk Attention: the paper's position rules against a dense reference, bit-identical
outputs inside the neighbour window / first chunk, cache and padding, parameter choice, refusals."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from transformers import AutoModelForCausalLM
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

import tiny_decoders
from ctxext.decoders import long_attention as la
from ctxext.errors import CtxextError


def paper_positions(scheme, i: int, j: int) -> tuple[int, int]:
    """(query position, key position) of the pair, written from the papers' definitions."""
    if isinstance(scheme, la.SelfExtend):
        w, g = scheme.window, scheme.group
        return (i, j) if i - j < w else (i // g + w - w // g, j // g)
    if isinstance(scheme, la.String):  # STRING: distance d >= S becomes d - S + W
        return (i, j) if i - j < scheme.offset else (j + i - j - scheme.offset + scheme.window, j)
    s, top = scheme.chunk_size - scheme.local, scheme.chunk_size
    if i // s == j // s:
        return i % s, j % s
    if i // s - j // s == 1:
        return min(s + i % s, top), j % s
    return top, j % s


def dense_reference(q_raw, k_raw, v, scheme, inv_freq):
    """Softmax over scores Re(sum_k zq_k conj(zk_k) e^{i (a - b) f_k}) with (a, b) the pair's positions: RoPE in
    complex form, pair k = dims (k, k + d/2), no rotation code shared with the implementation."""
    n, half = q_raw.shape[2], q_raw.shape[-1] // 2
    zq = torch.complex(q_raw[..., :half].double(), q_raw[..., half:].double())
    zk = torch.complex(k_raw[..., :half].double(), k_raw[..., half:].double())
    scores = torch.full((q_raw.shape[1], n, n), float("-inf"), dtype=torch.float64)
    for i in range(n):
        for j in range(i + 1):
            a, b = paper_positions(scheme, i, j)
            phase = torch.exp(1j * (a - b) * inv_freq.double())
            scores[:, i, j] = (zq[0, :, i] * zk[0, :, j].conj() * phase).sum(-1).real
    probs = torch.softmax(scores / q_raw.shape[-1] ** 0.5, dim=-1)
    return (probs @ v[0].double()).transpose(0, 1)  # (n, heads, d)


def rotated_at_own_positions(x, inv_freq):
    angles = torch.arange(x.shape[2]).double()[:, None] * inv_freq.double()[None]
    angles = torch.cat([angles, angles], -1)
    q, _ = apply_rotary_pos_emb(x, x, angles.cos().float()[None], angles.sin().float()[None])
    return q


@pytest.mark.parametrize("explicit", [False, True])  # the CPU kernel, and the score matrix other devices form
@pytest.mark.parametrize("block", [7, 1024])  # 7: regions begin and end inside blocks, chunks straddle them
@pytest.mark.parametrize(
    "scheme",
    [
        la.SelfExtend(window=8, group=3),
        la.SelfExtend(window=5, group=4),
        la.DualChunk(12, 3),
        la.String(offset=9, window=3),
        la.String(offset=13, window=6),
    ],
)
@pytest.mark.parametrize("kv_heads", [4, 2])  # 2: each key/value head serves two query heads
def test_attention_follows_the_papers_positions(scheme, block, explicit, kv_heads, monkeypatch):
    torch.manual_seed(0)
    heads, n, d = 4, 40, 16
    groups = heads // kv_heads
    inv_freq = 1.0 / (100.0 ** (torch.arange(0, d, 2).float() / d))
    q_raw = torch.randn(1, heads, n, d)
    k_raw, v = (torch.randn(1, kv_heads, n, d) for _ in range(2))
    module = SimpleNamespace(ctxext_scheme=scheme, ctxext_inv_freq=inv_freq, num_key_value_groups=groups)
    monkeypatch.setattr(la, "BLOCK", block)
    monkeypatch.setattr(la, "EXPLICIT_SCORES", explicit)
    q, k = rotated_at_own_positions(q_raw, inv_freq), rotated_at_own_positions(k_raw, inv_freq)
    out, _ = la.remapped_attention(module, q, k, v, None, scaling=d**-0.5)
    per_head = [x.repeat_interleave(groups, dim=1) for x in (k_raw, v)]  # query head h reads key head h // groups
    expected = dense_reference(q_raw, per_head[0], per_head[1], scheme, inv_freq)
    torch.testing.assert_close(out[0].double(), expected, atol=2e-5, rtol=0)


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    folder = tiny_decoders.save_decoder("llama", tmp_path_factory.mktemp("llama") / "m")
    return AutoModelForCausalLM.from_pretrained(folder, attn_implementation="sdpa").eval()


@torch.no_grad()
@pytest.mark.parametrize(
    "label, inside, to", [("self-extend+window32", 32, 256), ("dca", 44, 256), ("string+offset40+window4", 40, 96)]
)
def test_inside_the_window_outputs_are_bit_identical(tiny_llama, label, inside, to):
    ids = torch.randint(0, 100, (1, min(160, to)), generator=torch.Generator().manual_seed(1))
    plain_short, plain_long = tiny_llama(ids[:, :inside]).logits, tiny_llama(ids).logits
    with la.long_attention(tiny_llama, label, to) as scheme:
        short, long = tiny_llama(ids[:, :inside]).logits, tiny_llama(ids).logits
    assert scheme.largest_distance(inside) == inside - 1
    assert torch.equal(short, plain_short)
    assert not torch.allclose(long, plain_long)  # beyond the window it is a different model
    assert tiny_llama.config._attn_implementation == "sdpa"  # switched back


@torch.no_grad()
@pytest.mark.parametrize(
    "label, n, to", [("self-extend", 150, 256), ("dca", 150, 256), ("string+offset40+window4", 90, 96)]
)
def test_cached_decoding_and_left_padding_match_one_full_pass(tiny_llama, label, n, to):
    ids = torch.randint(0, 100, (1, n), generator=torch.Generator().manual_seed(2))
    with la.long_attention(tiny_llama, label, to):
        full = tiny_llama(ids).logits
        prefix = tiny_llama(ids[:, :-1], use_cache=True)
        step = tiny_llama(ids[:, -1:], past_key_values=prefix.past_key_values).logits
        padded = torch.cat([torch.zeros(1, 7, dtype=ids.dtype), ids], dim=1)
        mask = torch.cat([torch.zeros(1, 7, dtype=torch.long), torch.ones_like(ids)], dim=1)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        batch = tiny_llama(padded.repeat(2, 1), attention_mask=mask.repeat(2, 1), position_ids=positions.repeat(2, 1))
    torch.testing.assert_close(step[0, -1], full[0, -1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batch.logits[1, 7:], full[0], atol=1e-5, rtol=1e-5)


@torch.no_grad()
@pytest.mark.parametrize("label, regions", [("self-extend", 2), ("dca", 3)])
def test_key_rotations_are_computed_once_for_all_layers_and_steps(tiny_llama, label, regions, monkeypatch):
    """Cosines and sines of the key shifts are formed per region when the cache outgrows them (doubling), not per
    layer or decoding step; DCA's three regions shift keys alike and share one rotated copy."""
    tables, turned = [], []
    cos_sin, turn = la._cos_sin, la._turn
    monkeypatch.setattr(la, "_cos_sin", lambda delta, *a: tables.append(delta.numel()) or cos_sin(delta, *a))
    monkeypatch.setattr(la, "_turn", lambda x, *a: turned.append(x.shape[2]) or turn(x, *a))
    ids = torch.randint(0, 100, (1, 150), generator=torch.Generator().manual_seed(3))
    with la.long_attention(tiny_llama, label, 256):
        cache = tiny_llama(ids[:, :100], use_cache=True).past_key_values
        for step in range(100, 110):
            cache = tiny_llama(ids[:, step : step + 1], past_key_values=cache, use_cache=True).past_key_values
    assert sorted(n for n in tables if n >= 100) == [100] * regions + [200] * regions  # one growth: 100 -> 200
    keys_turned = [n for n in turned if n >= 100]  # keys (query blocks and steps are shorter)
    assert len(keys_turned) == tiny_llama.config.num_hidden_layers * 11  # one rotated copy per layer and call
    assert not any(hasattr(m, "ctxext_key_shifts") for m in tiny_llama.modules())  # tables dropped on disable


@pytest.mark.parametrize("context, target", [(64, 256), (8192, 32768), (4096, 100_000), (2048, 2049)])
def test_chosen_parameters_keep_every_distance_inside_the_context(context, target):
    extend = la.choose("self-extend", context, target)
    assert extend.largest_distance(target) < context
    assert la.SelfExtend(extend.window, extend.group - 1).largest_distance(target) >= context or extend.group == 2
    chunks = la.choose("dca", context, target)
    assert chunks.largest_distance(target) < context and chunks.chunk_length > 0


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: la.parse_label("self-extnd"), "did you mean 'self-extend'"),
        (lambda: la.parse_label("dca+window64"), "unknown option '+window64' for dca"),
        (lambda: la.choose("self-extend", 64, 4096, window=16, group=2), "beyond the model's context 64"),
        (lambda: la.choose("dca", 64, 256, chunk=80), "local < chunk < the model's context"),
        (lambda: la.choose("string", 64, 256), "without a RoPE scaling"),
        (lambda: la.choose("string", 64, 90, offset=10, window=20), "0 < window < offset"),
        (lambda: la.parse_label("string+group4"), "unknown option '+group4' for string"),
        (lambda: la.parse_label("string+yarm"), "did you mean 'yarn'"),
        (lambda: la.parse_label("string+dynamic"), "changes them with the input's length"),
        (lambda: la.parse_label("string+yarn+ntk"), "give at most one"),
        (lambda: la.parameters_of(["string+yarn"], 64, 64), "not above the context 64"),
    ],
)
def test_bad_parameters_are_refused_in_one_line(call, message):
    with pytest.raises(CtxextError, match=message.replace("+", r"\+")):
        call()


@pytest.mark.parametrize("family, message", [("gemma3_text", "not 'gemma3_text'"), ("llama", "dynamic scaling")])
def test_models_it_does_not_cover_are_refused(tmp_path, family, message):
    rope = {"rope_type": "dynamic", "factor": 2.0} if family == "llama" else None
    folder = tiny_decoders.save_decoder(family, tmp_path / family, rope=rope)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    with pytest.raises(CtxextError, match=message):
        la.enable(model, "dca", 256)


def test_inspect_prints_the_parameters_each_attention_method_would_use(tiny_llama, tmp_path, capsys):
    from ctxext.cli.main import main, run

    folder = tiny_decoders.save_decoder("llama", tmp_path / "m")
    assert run(main, ["inspect", str(folder), "--to", "256"]) == 0
    printed = capsys.readouterr().out
    assert "self-extend window 16, group 6 (largest distance 56)" in printed
    assert "dca chunk_size 48, local 4 (chunks of 44)" in printed
    assert "string offset 21, window 10 (at most 75 tokens without scaling; beyond, with one: string+yarn)" in printed


def test_string_defaults_are_the_papers_and_reach_past_the_window_by_the_shift():
    chosen = la.choose("string", 8192, 8192)
    assert (chosen.offset, chosen.window) == (8192 // 3, 128)
    assert chosen.largest_distance(8192) == 8191 - 8192 // 3 + 128  # the largest distances are never used
    longest = 8192 + chosen.offset - chosen.window
    assert la.choose("string", 8192, longest).largest_distance(longest) == 8191


@torch.no_grad()
def test_string_on_a_rope_scaling_is_string_with_the_scaled_model_as_trained(tiny_llama):
    """'string+yarn' at 2x: YaRN applied in memory, then STRING with offset to / 3 (the scaled window treated as
    trained); the same as doing both steps by hand, and a different model from YaRN alone."""
    from ctxext.decoders.rope_in_memory import apply_rope_in_memory, restored_rope
    from ctxext.decoders.rope_plan import plan_rope

    context = tiny_llama.config.max_position_embeddings
    to = 2 * context
    ids = torch.randint(0, 100, (1, to), generator=torch.Generator().manual_seed(3))
    with la.long_attention(tiny_llama, "string+yarn", to) as scheme:
        combined = tiny_llama(ids).logits
    assert (scheme.offset, scheme.window) == (to // 3, min(128, to // 6))
    assert scheme.largest_distance(to) < to
    assert tiny_llama.config.max_position_embeddings == context  # scaling undone
    with restored_rope(tiny_llama):
        apply_rope_in_memory(tiny_llama, plan_rope(tiny_llama.config.to_dict(), "m", to, "yarn"))
        yarn_alone = tiny_llama(ids).logits
        la.enable(tiny_llama, "string", to, context=to, offset=to // 3, window=scheme.window)
        by_hand = tiny_llama(ids).logits
        la.disable(tiny_llama)
    torch.testing.assert_close(combined, by_hand, atol=0, rtol=0)
    assert not torch.allclose(combined, yarn_alone)
    assert la.parameters_of(["string+yarn"], context, to)["string+yarn"]["scaling"] == "yarn"


@pytest.mark.parametrize("dims, rotary_dims", [(16, 16), (16, 8)])  # 8 of 16: partial rotary (phi, gpt_neox)
def test_rotating_by_delta_is_transformers_rotation_at_the_moved_position(dims, rotary_dims):
    torch.manual_seed(4)
    inv_freq = 1.0 / (100.0 ** (torch.arange(0, rotary_dims, 2).float() / rotary_dims))
    raw = torch.randn(1, 2, 12, dims)
    delta = torch.tensor([[0, 5, -3, 7, 100, 2, 0, 1, 9, 4, 6, 3]])
    at_own = rotated_at_own_positions(raw[..., :rotary_dims], inv_freq)
    moved = la.rotate(torch.cat([at_own, raw[..., rotary_dims:]], -1), delta, inv_freq)
    angles = (torch.arange(12) + delta[0]).double()[:, None] * inv_freq.double()[None]
    angles = torch.cat([angles, angles], -1)
    expected, _ = apply_rotary_pos_emb(
        raw[..., :rotary_dims], raw[..., :rotary_dims], angles.cos().float()[None], angles.sin().float()[None]
    )
    torch.testing.assert_close(moved[..., :rotary_dims], expected, atol=1e-5, rtol=0)
    assert torch.equal(moved[..., rotary_dims:], raw[..., rotary_dims:])
