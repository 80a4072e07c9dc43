"""A fingerprint of what ``ctxext extend`` writes, to show that a change of code leaves every output byte for byte
the same: one encoder (the packaged all-MiniLM-L6-v2 to 2048), one decoder folder (a tiny random Llama, YaRN x4)
and one GGUF (the first two layers of the packaged SmolLM2-135M, YaRN x2, GGUF out and folder out).

Each output file's sha256; in ``ctxext.json`` the ``date`` field is left out, everything else is hashed.

    python bench/extend_fingerprints.py WORK > before.json   # on one commit
    python bench/extend_fingerprints.py WORK > after.json    # on another; then: diff before.json after.json
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import assets  # noqa: E402


def _inputs(work: Path) -> dict[str, Path]:
    import small_real_gguf
    import tiny_decoders

    work.mkdir(parents=True, exist_ok=True)
    llama = work / "tiny-llama"
    if not llama.is_dir():
        tiny_decoders.save_decoder("llama", llama)
    gguf = work / "small.gguf"
    if not gguf.is_file():
        small_real_gguf.write_small_gguf(assets.smollm2_gguf(), gguf, alignment=64)
    return {"minilm": assets.minilm(), "llama": llama, "gguf": gguf}


def _digest(path: Path) -> str:
    data = path.read_bytes()
    if path.name == "ctxext.json":
        record = json.loads(data)
        record.pop("date", None)
        data = json.dumps(record, sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()


def fingerprint(out: Path) -> dict[str, str]:
    files = sorted(p for p in out.rglob("*") if p.is_file()) if out.is_dir() else [out]
    return {str(p.relative_to(out) if out.is_dir() else p.name): _digest(p) for p in files}


def main(work: Path) -> None:
    inputs = _inputs(work)
    runs = {
        "encoder": [str(inputs["minilm"]), "--to", "2048"],
        "decoder-folder": [str(inputs["llama"]), "--to", "256", "--method", "yarn"],
        "gguf": [str(inputs["gguf"]), "--to", "512"],
        "gguf-to-folder": [str(inputs["gguf"]), "--to", "512", "--format", "hf"],
    }
    (work / "out").mkdir(exist_ok=True)
    found = {}
    for name, argv in runs.items():
        out = work / "out" / (name + (".gguf" if name == "gguf" else ""))
        subprocess.run(["ctxext", "extend", *argv, "-o", str(out), "--overwrite"], check=True, capture_output=True)
        found[name] = fingerprint(out)
    print(json.dumps(found, indent=1, sort_keys=True))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
