"""A GGUF extended: written as a GGUF with new RoPE metadata (tensors byte for byte), or converted to a Hugging Face
folder (``--format hf``); either read back, and in the runtimes asked for."""

from __future__ import annotations

from pathlib import Path

from ..decoders.rope_plan import check_above_current_window, plan_rope
from ..errors import CtxextError
from ..formats.gguf_file import UINT32_MAX, GgufRopeWriter, gguf_config
from ..pipeline import write_output
from .decoder_folder import HfRopeWriter, tuned
from .summary import Report, readback_notes, runtime_notes, runtime_readback_notes, search_notes


class GgufRuntimeWriter(GgufRopeWriter):
    """The GGUF writer whose read-back also scores the written file in each runtime of ``runtimes``."""

    def __init__(self, source: Path, plan, runtimes: tuple = (), serving=None):
        super().__init__(source, plan)
        self.runtimes, self.serving = runtimes, serving

    def read_back(self, staging: Path) -> dict:
        readback = super().read_back(staging)
        if self.runtimes:
            from ..runtimes.readback import check_gguf

            readback["runtimes"] = {
                r: check_gguf(self.source, staging, self.plan, r, self.serving) for r in self.runtimes
            }
        return readback


def extend_gguf(
    path: Path,
    out: Path,
    to,
    method,
    fmt,
    original,
    overwrite,
    check,
    dtype,
    runtimes=(),
    tune=None,
    rederive=False,
    serving=None,
):
    config = gguf_config(path)
    plan = plan_rope(config, str(path), to, method, original)
    if not rederive:
        check_above_current_window(plan)
    if fmt != "hf" and plan.target > UINT32_MAX:
        raise CtxextError(f"a GGUF stores lengths as 32-bit unsigned integers: --to at most {UINT32_MAX}")
    plan = tuned(plan, path, tune, out, overwrite)
    if fmt == "hf":
        writer = HfRopeWriter(path, plan, from_gguf=True, dtype=dtype or "float32", runtimes=runtimes, serving=serving)
        readback = write_output(writer, out, overwrite, check)
        notes = search_notes(plan) + readback_notes(readback) + runtime_notes(plan, "folder")
        return Report(plan.describe(), notes + [f"wrote a Hugging Face folder ({dtype or 'float32'}) to {out}"])
    if dtype and not (tune or runtimes):
        raise CtxextError(
            "--dtype applies when a GGUF is converted to a folder (--format hf) or to what --tune and "
            "--check-runtime compute; GGUF tensors are copied"
        )
    if out.suffix.lower() != ".gguf":
        raise CtxextError(f"a GGUF output needs a .gguf name, not {out.name} (or pass --format hf for a folder)")
    writer = GgufRuntimeWriter(path, plan, runtimes, serving)
    readback = write_output(writer, out, overwrite, check)
    notes = search_notes(plan)
    if readback:
        shown = ", ".join(f"{k} = {v}" for k, v in readback["metadata"].items())
        notes.append(f"GGUF metadata read back ({readback['alignment']}-byte aligned tensors): {shown}")
        notes += runtime_readback_notes(readback)
    if writer.divisors is not None:
        notes.append(f"added {len(writer.divisors)} per-pair divisors as rope_freqs.weight")
    return Report(plan.describe(), notes + runtime_notes(plan, "gguf"))
