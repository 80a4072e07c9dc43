"""RoPE scaling math: golden values from the papers, and transformers.modeling_rope_utils as an oracle."""

import math

import pytest
import torch
from transformers import LlamaConfig
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

from ctxext.methods.rope import (
    classify_pairs,
    default_inv_freq,
    ntk_base,
    scaled_inv_freq,
    yarn_attention_factor,
    yarn_correction_range,
)

GOLDEN_K = (0, 12, 16, 20, 24)
GOLDEN = {  # REFERENCE B: d = 64, b = 1e4, L = 2048, s = 4; theta'/theta at k = 0, 12, 16, 20, 24
    "linear": (0.25, 0.25, 0.25, 0.25, 0.25),
    "ntk": (1, 0.585, 0.489, 0.409, 0.342),
    "yarn": (1, 0.769, 0.538, 0.308, 0.25),
}


@pytest.mark.parametrize("method", list(GOLDEN))
def test_golden_ratios(method):
    scaled, _ = scaled_inv_freq(method, 64, 1e4, 2048, 4.0)
    ratio = scaled / default_inv_freq(64, 1e4)
    assert [round(ratio[k].item(), 3) for k in GOLDEN_K] == list(GOLDEN[method])


def test_golden_yarn_ramp_ntk_base_and_temperature():
    assert yarn_correction_range(64, 1e4, 2048, 32, 1) == (8, 21)
    assert round(ntk_base(64, 1e4, 4.0)) == 41829
    assert round(yarn_attention_factor(4.0), 4) == 1.1386


def test_ntk_keeps_the_highest_frequency_and_divides_the_lowest_by_s():
    scaled, _ = scaled_inv_freq("ntk", 64, 1e4, 2048, 4.0)
    theta = default_inv_freq(64, 1e4)
    assert scaled[0] == theta[0]
    assert math.isclose((scaled[-1] / theta[-1]).item(), 0.25, rel_tol=1e-12)


def test_pair_classification():
    theta = default_inv_freq(64, 1e4)
    scaled, _ = scaled_inv_freq("yarn", 64, 1e4, 2048, 4.0)
    labels = classify_pairs(theta, scaled, 4.0)
    assert labels[:9] == ["kept"] * 9 and labels[21:] == ["interpolated"] * 11 and set(labels[9:21]) == {"blended"}


def oracle(rope_type, dim, base, original, factor, partial=1.0, seq_len=None, **extra):
    heads = 4
    config = LlamaConfig(
        hidden_size=int(dim / partial) * heads,
        num_attention_heads=heads,
        max_position_embeddings=original if rope_type == "dynamic" else int(original * factor),
    )
    params = {"rope_type": rope_type, "rope_theta": base, "factor": factor, **extra}
    if partial != 1.0:
        params["partial_rotary_factor"] = partial
    if rope_type in ("yarn", "llama3"):
        params["original_max_position_embeddings"] = original
    config.rope_parameters = params
    return ROPE_INIT_FUNCTIONS[rope_type](config, None, seq_len=seq_len)


CASES = [(64, 1e4, 2048, 4.0), (128, 5e5, 8192, 8.0), (64, 1e5, 8192, 2.0), (96, 1e6, 4096, 2.5), (16, 1e4, 64, 2.5)]


@pytest.mark.parametrize("dim,base,original,factor", CASES)
@pytest.mark.parametrize("method", ["linear", "yarn", "llama3"])
def test_equal_to_transformers(method, dim, base, original, factor):
    extra = {"low_freq_factor": 1.0, "high_freq_factor": 4.0} if method == "llama3" else {}
    theirs, their_attention = oracle(method, dim, base, original, factor, **extra)
    ours, our_attention = scaled_inv_freq(method, dim, base, original, factor)
    torch.testing.assert_close(ours, theirs.double(), rtol=1e-6, atol=0)
    assert math.isclose(our_attention, their_attention, rel_tol=1e-9)


@pytest.mark.parametrize("dim,base,original,factor", CASES)
@pytest.mark.parametrize("seq_len_ratio", [0.5, 1.0, 1.5, 2.0, 4.0])
def test_dynamic_equal_to_transformers(dim, base, original, factor, seq_len_ratio):
    seq_len = int(original * seq_len_ratio)
    theirs, _ = oracle("dynamic", dim, base, original, factor, seq_len=seq_len)
    ours, _ = scaled_inv_freq("dynamic", dim, base, original, factor, seq_len=seq_len)
    torch.testing.assert_close(ours, theirs.double(), rtol=1e-6, atol=0)


def test_ntk_equals_transformers_default_with_the_new_base():
    config = LlamaConfig(hidden_size=256, num_attention_heads=4)
    config.rope_parameters = {"rope_type": "default", "rope_theta": ntk_base(64, 1e4, 4.0)}
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    theirs = LlamaRotaryEmbedding(config).inv_freq
    ours, _ = scaled_inv_freq("ntk", 64, 1e4, 2048, 4.0)
    torch.testing.assert_close(ours, theirs.double(), rtol=1e-6, atol=0)


@pytest.mark.parametrize("partial", [0.25, 0.5])
@pytest.mark.parametrize("method", ["linear", "yarn"])
def test_partial_rotary_uses_the_rotary_dimension(method, partial):
    theirs, _ = oracle(method, 32, 1e4, 2048, 4.0, partial=partial)
    ours, _ = scaled_inv_freq(method, 32, 1e4, 2048, 4.0)
    assert theirs.shape == ours.shape == (16,)
    torch.testing.assert_close(ours, theirs.double(), rtol=1e-6, atol=0)


@pytest.mark.parametrize("dim,base,original,factor", CASES)
@pytest.mark.parametrize(
    "options",
    [
        {"truncate": False},
        {"beta_fast": 16.0, "beta_slow": 2.0},
        {"mscale": 0.707, "mscale_all_dim": 1.0},
        {"attention_factor": 1.25},
    ],
)
def test_yarn_options_equal_to_transformers(dim, base, original, factor, options):
    theirs, their_attention = oracle("yarn", dim, base, original, factor, **options)
    ours, our_attention = scaled_inv_freq("yarn", dim, base, original, factor, **options)
    torch.testing.assert_close(ours, theirs.double(), rtol=1e-6, atol=0)
    assert math.isclose(our_attention, their_attention, rel_tol=1e-6)


@pytest.mark.parametrize("dim,base,original,factor", CASES)
def test_longrope_is_exact_inside_the_window_and_yarn_by_parts_beyond(dim, base, original, factor):
    from ctxext.methods.rope import yarn_divisors

    long = yarn_divisors(dim, base, original, factor).tolist()
    extra = {"short_factor": [1.0] * (dim // 2), "long_factor": long, "attention_factor": 1.0}
    extra["original_max_position_embeddings"] = original
    for seq_len in (original // 2, original, original + 1, int(original * factor)):
        theirs, their_attention = oracle("longrope", dim, base, original, factor, seq_len=seq_len, **extra)
        ours, our_attention = scaled_inv_freq("longrope", dim, base, original, factor, seq_len=seq_len)
        torch.testing.assert_close(ours, theirs.double(), rtol=1e-6, atol=0)
        assert our_attention == their_attention == 1.0
    yarn_theta, _ = scaled_inv_freq("yarn", dim, base, original, factor)
    beyond, _ = scaled_inv_freq("longrope", dim, base, original, factor, seq_len=original + 1)
    torch.testing.assert_close(beyond, yarn_theta, rtol=1e-12, atol=0)
    inside, _ = scaled_inv_freq("longrope", dim, base, original, factor, seq_len=original)
    assert torch.equal(inside, default_inv_freq(dim, base))


def test_critical_dimension_of_llama2_is_the_papers_92():
    from ctxext.methods.rope.critical_base import critical_dimension

    # Liu et al. 2023: LLaMA2 (d = 128, b = 10,000, L = 4,096) has critical dimension 92
    assert critical_dimension(128, 1e4, 4096) == 92


@pytest.mark.parametrize("dim,base,original,target", [(128, 1e4, 4096, 16384), (64, 1e5, 8192, 32768)])
def test_critical_base_extrapolates_exactly_to_the_target(dim, base, original, target):
    from ctxext.methods.rope.critical_base import critical_base, critical_dimension

    beta = critical_base(dim, base, original, target)
    assert beta > base
    assert 2 * math.pi * beta ** (critical_dimension(dim, base, original) / dim) == pytest.approx(target, rel=1e-9)
    scaled, attention = scaled_inv_freq("critical-base", dim, base, original, target / original)
    torch.testing.assert_close(scaled, default_inv_freq(dim, beta), rtol=0, atol=0)
    assert attention == 1.0


def test_critical_base_never_lowers_the_base():
    from ctxext.methods.rope.critical_base import critical_base

    # 1.01 x: (N / 2 pi)^(d / d_c) falls below b because d_c is rounded up; the base is kept
    assert critical_base(128, 1e4, 4096, 4137) == 1e4
