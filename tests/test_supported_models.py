"""README's supported-models table is the family registry's, and each row holds: every RoPE family listed as
extended gets scaling that transformers' own config class and rotary embedding read back (from that class's
default config), every one listed as refused is refused in one line, by every verb."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import transformers

from ctxext.cli.main import main, run
from ctxext.decoders.rope_facts import rope_facts, true_original
from ctxext.decoders.rope_plan import plan_rope, rope_config
from ctxext.extend.decoder_folder import transformers_readback
from ctxext.families import FAMILIES, supported_models_markdown

README = Path(__file__).parents[1] / "README.md"
EXTENDED = [name for name, family in FAMILIES.items() if family.kind == "rope" and family.extended]
REFUSED = [name for name, family in FAMILIES.items() if family.kind == "rope" and not family.extended]


def default_config_folder(model_type: str, folder: Path) -> Path:
    transformers.AutoConfig.for_model(model_type).save_pretrained(folder)
    return folder


def test_readme_shows_the_registrys_table():
    assert supported_models_markdown() in README.read_text(encoding="utf-8")


@pytest.mark.parametrize("model_type", EXTENDED)
def test_each_rope_family_listed_reads_back_the_scaling_written(model_type, tmp_path):
    folder = default_config_folder(model_type, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    method = "longrope" if model_type == "phi3" else "yarn"
    plan = plan_rope(config, model_type, 2 * true_original(rope_facts(config)), method)
    (folder / "config.json").write_text(json.dumps(rope_config(config, plan)))
    readback = transformers_readback(folder, plan)
    assert readback["max_relative_error"] < 1e-5
    assert readback["attention_factor"] == pytest.approx(readback["ours"], abs=1e-6)


@pytest.mark.parametrize("model_type", REFUSED)
@pytest.mark.parametrize("verb", ["inspect", "extend"])
def test_each_rope_family_listed_as_refused_is_refused_in_one_line(model_type, verb, tmp_path, capsys):
    folder = default_config_folder(model_type, tmp_path / model_type)
    argv = [verb, str(folder), "--to", "99999"] + (["-o", str(tmp_path / "out")] if verb == "extend" else [])
    assert run(main, argv) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and f"is a {model_type} model: " in error
    assert not (tmp_path / "out").exists()


def test_phi3_is_refused_a_method_its_config_class_cannot_hold(tmp_path, capsys):
    """transformers' Phi3Config turns ``yarn`` into ``longrope`` without the factors, and refuses the rest."""
    folder = default_config_folder("phi3", tmp_path / "phi3")
    argv = ["extend", str(folder), "--to", "8192", "--method", "yarn", "-o", str(tmp_path / "out")]
    assert run(main, argv) == 2
    assert "a phi3 config can carry only longrope scaling in transformers: use --method longrope" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "out").exists()
