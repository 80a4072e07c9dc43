"""The math of learned-table resampling, checked against its definitions and against scipy's seed usage."""

import numpy as np
import pytest
import torch
from scipy.interpolate import interp1d

from ctxext.methods.ape import double_rows, interpolate_rows, resample_table, sample_coordinates

INTERPOLANTS = ["linear", "quadratic", "cubic", "pchip", "akima", "makima"]


def table(rows=40, width=6, seed=0):
    return torch.randn(rows, width, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("kind", INTERPOLANTS)
def test_same_length_returns_the_table_itself(kind):
    original = table()
    assert resample_table(original, 40, kind) is original


@pytest.mark.parametrize("kind", INTERPOLANTS)
def test_curve_passes_through_its_knots(kind):
    original = table(rows=33).double()
    # With N' - 1 = 3 (L' - 1) every third new row sits exactly on an old knot.
    resampled = interpolate_rows(original, 3 * 32 + 1, kind)
    torch.testing.assert_close(resampled[::3], original, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["linear", "quadratic", "cubic"])
def test_vectorised_equals_the_seed_loop_over_dimensions(kind):
    original = table(rows=50, width=5)
    ours = interpolate_rows(original, 173, kind).double().numpy()
    values = original.double().numpy()
    x = np.linspace(0, 49, 173)
    seed = np.stack([interp1d(np.arange(50), values[:, d], kind=kind)(x) for d in range(5)], axis=1)
    np.testing.assert_allclose(ours, seed, atol=1e-6)


def test_doubling_is_linear_interpolation_at_half_positions():
    original = table(rows=10)
    doubled = double_rows(original)
    assert doubled.shape == (20, 6)
    assert torch.equal(doubled[0::2], original)
    expected = np.stack(
        [np.interp(np.minimum(np.arange(20) / 2, 9), np.arange(10), original[:, d].numpy()) for d in range(6)], axis=1
    )
    np.testing.assert_allclose(doubled.numpy(), expected, atol=1e-6)
    assert torch.equal(doubled[-1], original[-1])


@pytest.mark.parametrize("kind", ["pchip", "akima", "makima"])
def test_monotone_interpolants_do_not_overshoot_a_spike(kind):
    values = torch.zeros(20, 1, dtype=torch.float64)
    values[0] = 10.0  # an outlier row like BERT's [CLS] position
    cubic = interpolate_rows(values, 96, "cubic")
    monotone = interpolate_rows(values, 96, kind)
    assert cubic.min() < -0.4  # the spline rings below the data
    assert monotone.min() >= -1e-12 and monotone.max() <= 10.0 + 1e-12


@pytest.mark.parametrize("kind", INTERPOLANTS)
def test_keep_first_rows_are_bit_identical(kind):
    original = table(rows=64)
    resampled = interpolate_rows(original, 200, kind, keep_first=32)
    assert torch.equal(resampled[:32], original[:32])
    assert resampled.shape == (200, 6)
    torch.testing.assert_close(resampled[-1], original[-1])  # the far end still reaches the last row


def test_keep_first_coordinates_are_continuous_and_increasing():
    x = sample_coordinates(64, 200, keep_first=32)
    assert np.all(np.diff(x) > 0)
    assert x[31] == 31 and x[32] == 32 and x[-1] == 63


def test_pinned_rows_are_copied_not_interpolated():
    original = table(rows=66)
    resampled = resample_table(original, 130, "cubic", pinned=2)
    assert torch.equal(resampled[:2], original[:2])
    torch.testing.assert_close(resampled[2], original[2])
    torch.testing.assert_close(resampled[-1], original[-1])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtype_is_kept(dtype):
    original = table().to(dtype)
    assert resample_table(original, 100, "cubic").dtype == dtype
    assert resample_table(original, 80, "double").dtype == dtype


def test_group_repeats_each_row_and_tile_repeats_the_block():
    original = table(rows=10)
    grouped = resample_table(original, 40, "group")
    tiled = resample_table(original, 25, "tile")
    assert torch.equal(grouped[0::4], original) and torch.equal(grouped[3::4], original)
    assert (
        torch.equal(tiled[:10], original)
        and torch.equal(tiled[10:20], original)
        and torch.equal(tiled[20:], original[:5])
    )


def test_source_rows_limit_the_curve_to_the_trained_part():
    original = table(rows=64)
    from_trained = resample_table(original, 100, "cubic", source_rows=32)
    torch.testing.assert_close(from_trained[-1], original[31])  # the far end is the last trained row
    torch.testing.assert_close(from_trained, resample_table(original[:32], 100, "cubic"))
    kept = resample_table(original, 100, "cubic", keep_first=16, source_rows=32)
    assert torch.equal(kept[:16], original[:16])
