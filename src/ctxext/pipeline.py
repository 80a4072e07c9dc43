"""The one path every output takes: plan (done by the caller), write to staging, read back, record, rename.

A :class:`Writer` knows one output format. ``extend``, ``train``'s output and the seed's drop-in commands all
call :func:`write_output`, so a failed read-back or an interruption never leaves a partial output, and
every format gets the same checks. Adding a format is one Writer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from .formats.staging import atomic_output, check_not_inside, check_output


class Writer(Protocol):
    folder: bool  # the output is a folder (else one file)
    source: Path  # what is read; the output may not be inside it

    def write(self, staging: Path) -> None:
        """Write the whole output at ``staging``."""

    def read_back(self, staging: Path) -> dict | None:
        """Read the staged output as its users' tools would; raise CtxextError if it is not what was planned."""

    def record(self, staging: Path, readback: dict | None) -> None:
        """Write what was done beside the output (provenance, model card); may do nothing."""


def write_output(writer: Writer, out: str | Path, overwrite: bool = False, check: bool = True) -> dict | None:
    """Run ``writer`` into ``out`` atomically; return its read-back (None with ``check`` off)."""
    out = Path(out)
    check_output(out, overwrite)
    check_not_inside(out, writer.source)
    with atomic_output(out, overwrite, folder=writer.folder) as staging:
        writer.write(staging)
        readback = writer.read_back(staging) if check else None
        writer.record(staging, readback)
    return readback
