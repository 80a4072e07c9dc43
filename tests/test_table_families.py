"""Family x method matrix on tiny models: extend, run at the new length, reload in a fresh process
with plain transformers (ctxext blocked), and compare with the model extended in memory."""

from pathlib import Path

import pytest
import torch
import transformers
from safetensors import safe_open

import tiny
from ctxext.encoders.table_apply import apply_in_memory, write_files
from ctxext.encoders.table_plan import plan_table
from ctxext.extend.encoder_folder import extend_encoder
from ctxext.formats.hf_folder import open_model_folder

METHODS = ["linear", "cubic", "pchip", "akima", "double", "cubic+keep", "tile", "group", "cubic+from32"]
TARGET = 160


def method_options(method):
    if method == "cubic+keep":
        return {"method": "cubic", "keep_first": 32}
    if method == "cubic+from32":
        return {"method": "cubic", "keep_first": 16, "from_window": 32}
    if method == "double":
        return {"method": "double", "to": None}
    return {"method": method}


def load_original(folder: Path):
    config = transformers.AutoConfig.from_pretrained(folder)
    return getattr(transformers, config.architectures[0]).from_pretrained(folder).eval()


def output_of(model, ids):
    with torch.inference_mode():
        out = model(input_ids=ids)
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


@pytest.fixture(scope="session")
def matrix(tmp_path_factory):
    """Every family x method extended on disk, its in-memory twin's output, and a fresh-process reload."""
    root = tmp_path_factory.mktemp("matrix")
    cases, jobs = [], []
    for family in tiny.FAMILIES:
        source = tiny.save(family, root / family)
        for method in METHODS:
            options = {"to": TARGET, **method_options(method)}
            out = root / f"{family}-{method}"
            plan, _ = extend_encoder(source, out, check=False, **options)
            ids = tiny.input_ids(plan.target)
            model = apply_in_memory(load_original(source), plan)
            cases.append((family, method, plan, out, output_of(model, ids)))
            jobs.append({"folder": str(out), "ids": ids})
    reloaded = tiny.reload_in_fresh_process(jobs, root)
    return cases, reloaded


def test_fresh_process_never_imported_ctxext_and_saw_no_warning(matrix):
    _, reloaded = matrix
    assert not reloaded["ctxext_loaded"]
    for word in ("unexpected", "missing", "newly initialized", "not used", "mismatch"):
        assert word not in reloaded["messages"].lower(), reloaded["messages"]


@pytest.mark.parametrize("index", range(len(tiny.FAMILIES) * len(METHODS)))
def test_reloaded_output_equals_in_memory_output_at_the_new_length(matrix, index):
    cases, reloaded = matrix
    family, method, plan, out, expected = cases[index]
    got = reloaded["results"][index]["output"]
    assert got.shape[1] == plan.target > tiny.POSITIONS, (family, method)
    assert torch.isfinite(got).all()
    assert (got - expected).abs().max().item() <= 1e-6, (family, method)


@pytest.mark.parametrize("family", list(tiny.FAMILIES))
def test_offset_and_table_found_automatically(matrix, family):
    cases, _ = matrix
    plan = next(case[2] for case in cases if case[0] == family)
    assert plan.offset == tiny.OFFSETS.get(family, 0)
    assert plan.positions == tiny.POSITIONS
    config = transformers.AutoConfig.from_pretrained(next(case[3] for case in cases if case[0] == family))
    assert config.max_position_embeddings == TARGET + plan.offset


@pytest.mark.parametrize("family", list(tiny.FAMILIES))
def test_original_length_leaves_every_weight_bit_identical(tmp_path, family):
    source = tiny.save(family, tmp_path / "source")
    folder = open_model_folder(source)
    plan = plan_table(folder, tiny.POSITIONS, "cubic", allow_same=True)
    staging = tmp_path / "same"
    staging.mkdir()
    write_files(folder, plan, staging)
    with (
        safe_open(str(source / "model.safetensors"), "pt") as a,
        safe_open(str(staging / "model.safetensors"), "pt") as b,
    ):
        assert set(a.keys()) == set(b.keys())
        for key in a.keys():
            assert torch.equal(a.get_tensor(key), b.get_tensor(key)), key


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_dtype_of_the_weights_is_kept(tmp_path, dtype):
    source = tiny.save("bert", tmp_path / "source", dtype=dtype)
    extend_encoder(source, tmp_path / "out", TARGET, "cubic", check=False)
    with safe_open(str(tmp_path / "out" / "model.safetensors"), "pt") as handle:
        table = handle.get_tensor("embeddings.position_embeddings.weight")
        assert table.dtype == dtype and table.shape == (TARGET, 32)
        assert all(handle.get_tensor(k).dtype == dtype for k in handle.keys() if "position_ids" not in k)


def test_legacy_bin_weights_become_safetensors(tmp_path):
    source = tiny.save("roberta", tmp_path / "source", safe=False)
    assert (source / "pytorch_model.bin").is_file()
    extend_encoder(source, tmp_path / "out", TARGET, "cubic", check=False)
    assert (tmp_path / "out" / "model.safetensors").is_file()
    assert not (tmp_path / "out" / "pytorch_model.bin").exists()
    model = load_original(tmp_path / "out")
    assert model.embeddings.position_embeddings.weight.shape[0] == TARGET + 2


def test_stored_position_ids_buffer_is_resized(tmp_path, minilm_path):
    """all-MiniLM-L6-v2 stores embeddings.position_ids (1, 512) in its weights; it must follow the table."""
    folder = open_model_folder(minilm_path)
    from ctxext.encoders.table_apply import weight_replacements

    plan = plan_table(folder, 1024, "cubic")
    replacements = weight_replacements(folder, plan)
    assert torch.equal(replacements["embeddings.position_ids"], torch.arange(1024).unsqueeze(0))


def test_the_warning_check_catches_an_unexpected_key(tmp_path):
    """The seed package re-registers token_type_ids as a persistent buffer; a plain reload warns of it.
    The same reload script must report that, or its silence above would prove nothing."""
    from safetensors.torch import load_file, save_file

    source = tiny.save("bert", tmp_path / "seedlike")
    state = load_file(source / "model.safetensors")
    state["embeddings.token_type_ids"] = torch.zeros((2, tiny.POSITIONS), dtype=torch.long)
    save_file(state, source / "model.safetensors", {"format": "pt"})
    reloaded = tiny.reload_in_fresh_process([{"folder": str(source), "ids": tiny.input_ids(8)}], tmp_path)
    assert "unexpected" in reloaded["messages"].lower()


def test_keep_cls_takes_the_first_row_out_of_the_curve(tmp_path):
    from ctxext.methods.ape import interpolate_rows

    folder = open_model_folder(tiny.save("bert", tmp_path / "bert"))
    table = folder.read_tensor("embeddings.position_embeddings.weight")
    plan = plan_table(folder, TARGET, "cubic", keep_cls=True)
    new = plan.new_table(table)
    assert plan.pinned == 1 and new.shape == (TARGET, 32)
    assert torch.equal(new[0], table[0])
    torch.testing.assert_close(new[1:], interpolate_rows(table[1:], TARGET - 1, "cubic"))
    assert not torch.allclose(new[1:], plan_table(folder, TARGET, "cubic").new_table(table)[1:])


def test_an_explicit_offset_zero_is_honoured(tmp_path):
    """--offset 0 on a RoBERTa-like model (the seed's convention) must not fall back to the detected 2."""
    import json

    from ctxext import api

    source = tiny.save("roberta", tmp_path / "roberta")
    api.extend(source, tmp_path / "out", TARGET, "cubic", check=False, offset=0)
    assert json.loads((tmp_path / "out" / "ctxext.json").read_text())["plan"]["offset"] == 0
