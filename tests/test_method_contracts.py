"""Each learned-table method does what its name says, checked on answers known without ctxext: polynomials
that an interpolant of that degree reproduces exactly, index maps written out by hand, and the default
(`tile`) leaving every input inside the original window bit for bit as it was, end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers
from safetensors import safe_open

import tiny
from ctxext.cli.main import main, run
from ctxext.methods.ape import resample_table

OLD, NEW = 9, 17  # seed convention: new row j sits at old coordinate j (OLD - 1) / (NEW - 1) = j / 2
POWERS = (0, 1, 2, 3)


def polynomial_table(coordinates: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.stack([coordinates**p for p in POWERS], axis=1), dtype=torch.float64)


@pytest.mark.parametrize(
    "method,exact_up_to",
    [("linear", 1), ("quadratic", 2), ("cubic", 3), ("pchip", 1), ("akima", 2), ("makima", 1)],
)
def test_interpolants_reproduce_the_polynomials_of_their_degree(method, exact_up_to):
    table = polynomial_table(np.arange(OLD, dtype=np.float64))
    got = resample_table(table, NEW, method).numpy()
    expected = polynomial_table(np.arange(NEW) / 2).numpy()
    exact = [i for i, p in enumerate(POWERS) if p <= exact_up_to]
    np.testing.assert_allclose(got[:, exact], expected[:, exact], rtol=0, atol=1e-9)
    if exact_up_to < 3:  # and the next power is not reproduced: the method is not a higher-degree one
        assert np.abs(got[:, exact_up_to + 1] - expected[:, exact_up_to + 1]).max() > 1e-3


def test_index_maps_and_doubling_golden_rows():
    table = torch.arange(OLD, dtype=torch.float32).unsqueeze(1) * 10
    tile = resample_table(table, NEW, "tile")[:, 0].tolist()
    assert tile == [0, 10, 20, 30, 40, 50, 60, 70, 80, 0, 10, 20, 30, 40, 50, 60, 70]
    group = resample_table(table, NEW, "group")[:, 0].tolist()
    assert group == [0, 0, 10, 10, 20, 20, 30, 30, 40, 40, 50, 50, 60, 60, 70, 70, 80]
    double = resample_table(table, 2 * OLD, "double")[:, 0].tolist()
    assert double == [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 80]


def test_the_default_extension_keeps_inputs_inside_the_window_bit_for_bit(tmp_path):
    """`ctxext extend` with no --method: the written table is the original tiled, and a short input gives
    exactly the original hidden states (max abs difference 0) in plain transformers."""
    source = tiny.save("bert", tmp_path / "bert")
    assert run(main, ["extend", str(source), "--to", "160", "-o", str(tmp_path / "out")]) == 0
    key = "bert.embeddings.position_embeddings.weight"

    def table(folder):
        with safe_open(str(folder / "model.safetensors"), "pt") as handle:
            names = [k for k in handle.keys() if k.endswith("embeddings.position_embeddings.weight")]
            return handle.get_tensor(names[0] if names else key)

    old, new = table(source), table(tmp_path / "out")
    rows = old.shape[0]
    assert new.shape[0] == 160
    assert torch.equal(new, old[torch.arange(160) % rows])
    ids = tiny.input_ids(rows - 2, seed=5)
    before = transformers.AutoModel.from_pretrained(source).eval()
    after = transformers.AutoModel.from_pretrained(tmp_path / "out").eval()
    with torch.inference_mode():
        difference = (before(input_ids=ids).last_hidden_state - after(input_ids=ids).last_hidden_state).abs()
    assert difference.max().item() == 0.0
