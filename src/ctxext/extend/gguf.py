"""The ``gguf`` output format: a GGUF extended and written as a GGUF with new RoPE metadata (tensors byte for byte);
also the pipeline that converts one to a Hugging Face folder (``--format hf``, :mod:`.hf`). Either is read back,
and in the runtimes asked for."""

from __future__ import annotations

from pathlib import Path

from ..errors import CtxextError
from ..formats.gguf_file import UINT32_MAX, GgufRopeWriter, gguf_config
from ..pipeline import write_output
from .decoder_folder import HfRopeWriter, checked_plan, tuned
from .outputs import OutputFormat, Request, default_rope_method, register
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


def _plan(request: Request):
    method = request.method or default_rope_method("gguf")
    return checked_plan(
        gguf_config(request.model), request.model, request.to, method, request.original, request.rederive
    )


def gguf_to_folder(request: Request) -> Report:
    """A GGUF dequantized into a Hugging Face folder (``--format hf``) with the plan's RoPE scaling."""
    plan = tuned(_plan(request), Path(request.model), request.tune, request.out, request.overwrite)
    dtype = request.dtype or "float32"
    writer = HfRopeWriter(
        Path(request.model), plan, from_gguf=True, dtype=dtype, runtimes=request.runtimes, serving=request.serving
    )
    readback = write_output(writer, request.out, request.overwrite, request.check)
    notes = search_notes(plan) + readback_notes(readback) + runtime_notes(plan, "folder")
    return Report(plan.describe(), notes + [f"wrote a Hugging Face folder ({dtype}) to {request.out}"])


def gguf_to_gguf(request: Request) -> Report:
    """A GGUF copy with new RoPE metadata, tensors byte for byte."""
    plan = _plan(request)
    if plan.target > UINT32_MAX:
        raise CtxextError(f"a GGUF stores lengths as 32-bit unsigned integers: --to at most {UINT32_MAX}")
    plan = tuned(plan, Path(request.model), request.tune, request.out, request.overwrite)
    if request.dtype and not (request.tune or request.runtimes):
        raise CtxextError(
            "--dtype applies when a GGUF is converted to a folder (--format hf) or to what --tune and "
            "--check-runtime compute; GGUF tensors are copied"
        )
    out = Path(request.out)
    if out.suffix.lower() != ".gguf":
        raise CtxextError(f"a GGUF output needs a .gguf name, not {out.name} (or pass --format hf for a folder)")
    writer = GgufRuntimeWriter(Path(request.model), plan, request.runtimes, request.serving)
    readback = write_output(writer, out, request.overwrite, request.check)
    notes = search_notes(plan)
    if readback:
        shown = ", ".join(f"{k} = {v}" for k, v in readback["metadata"].items())
        notes.append(f"GGUF metadata read back ({readback['alignment']}-byte aligned tensors): {shown}")
        notes += runtime_readback_notes(readback)
    if writer.divisors is not None:
        notes.append(f"added {len(writer.divisors)} per-pair divisors as rope_freqs.weight")
    return Report(plan.describe(), notes + runtime_notes(plan, "gguf"))


register(
    OutputFormat(
        "gguf",
        "a GGUF file for llama.cpp and what embeds it (Ollama, LM Studio): new RoPE metadata, tensors byte for byte",
        {"gguf": gguf_to_gguf},
        native=("gguf",),
        refusals={
            "learned": "a learned-table encoder is written as a folder; GGUF output is for RoPE decoders",
            "rope": "writing GGUF from a Hugging Face folder is llama.cpp's convert_hf_to_gguf.py's job",
        },
        runtimes=("llama.cpp",),
    )
)
