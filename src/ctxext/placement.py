"""Where a model runs and in what precision: ``--device``, ``--dtype``, ``--device-map``, ``--attn``.

``auto`` picks CUDA, then Apple's MPS, then the CPU; dtype ``auto`` is bf16 on a GPU that has it, else
fp32 (on the CPU fp32 keeps every number ctxext reports reproducible). ``--device-map auto`` hands
placement to accelerate, which splits a model larger than one device across every GPU, then CPU memory
(Hugging Face's big-model inference).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from .errors import CtxextError

DTYPES = {  # one vocabulary for every verb: both spellings
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}
ATTENTION = ("sdpa", "eager", "flash_attention_2")


@dataclass
class Placement:
    device: str = "cpu"
    dtype: torch.dtype = torch.float32
    device_map: str | None = None
    attn: str = "sdpa"
    max_memory: dict | None = None  # accelerate's per-device budget, e.g. {0: "70GiB", "cpu": "100GiB"}

    def load_kwargs(self) -> dict:
        """Keyword arguments of ``from_pretrained``; layers that fit no budget are offloaded to a temporary
        folder removed when the process ends."""
        kwargs = {"dtype": self.dtype, "attn_implementation": self.attn, "device_map": self.device_map or self.device}
        if self.device_map and self.max_memory:
            import atexit
            import shutil
            import tempfile

            offload = tempfile.mkdtemp(prefix="ctxext-offload-")
            atexit.register(shutil.rmtree, offload, ignore_errors=True)
            kwargs.update(max_memory=self.max_memory, offload_folder=offload)
        return kwargs

    def describe(self) -> dict:
        return {
            "device": self.device,
            "dtype": str(self.dtype).removeprefix("torch."),
            "device_map": self.device_map,
            "attn": self.attn,
            "max_memory": self.max_memory,
        }


def resolve_device(name: str = "auto") -> str:
    if name == "auto":
        if torch.cuda.is_available():  # one GPU per process under a launcher (accelerate, torchrun)
            rank = os.environ.get("LOCAL_RANK")
            return f"cuda:{rank}" if rank is not None else "cuda"
        return "mps" if torch.backends.mps.is_available() else "cpu"
    kind = name.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise CtxextError(f"--device {name}: this torch sees no CUDA device")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise CtxextError(f"--device {name}: MPS is not available here")
    if kind not in ("cpu", "cuda", "mps"):
        raise CtxextError(f"--device {name}: choose auto, cpu, cuda, cuda:N or mps")
    return name


def resolve_dtype(name: str, device: str) -> torch.dtype:
    if name == "auto":
        gpu_bf16 = device.startswith("cuda") and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if gpu_bf16 else torch.float32
    return dtype_named(name)


def dtype_named(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise CtxextError(f"--dtype {name}: choose auto, {', '.join(DTYPES)}")
    return DTYPES[name]


def dtype_word(name: str) -> str:
    """The long name of a dtype in either spelling (``bf16`` -> ``bfloat16``); ``auto`` stays."""
    return name if name == "auto" else str(dtype_named(name)).removeprefix("torch.")


def placement(
    device: str = "auto",
    dtype: str = "auto",
    device_map: str | None = None,
    attn: str = "sdpa",
    max_memory: str | None = None,
) -> Placement:
    """A :class:`Placement` from the command line's words, checked against what this machine has;
    ``max_memory`` is ``DEVICE=SIZE,...`` (``0=70GiB,cpu=100GiB``) and implies ``device_map`` auto."""
    if attn not in ATTENTION:
        raise CtxextError(f"--attn {attn}: choose {', '.join(ATTENTION)}")
    if attn == "flash_attention_2":
        import importlib.util

        if importlib.util.find_spec("flash_attn") is None:
            raise CtxextError("--attn flash_attention_2 needs the flash-attn package (pip install flash-attn)")
    if device_map not in (None, "auto"):
        raise CtxextError(f"--device-map {device_map}: only 'auto' (accelerate's placement) is supported")
    where = resolve_device(device)
    budget = _budget(max_memory) if max_memory else None
    return Placement(where, resolve_dtype(dtype, where), "auto" if budget else device_map, attn, budget)


def _budget(text: str) -> dict:
    budget = {}
    for part in text.split(","):
        name, _, size = part.partition("=")
        if not name.strip() or not size.strip():
            raise CtxextError(f"--max-memory {text}: write DEVICE=SIZE pairs, e.g. 0=70GiB,cpu=100GiB")
        name = name.strip()
        budget[int(name) if name.isdigit() else name] = int(size) if size.strip().isdigit() else size.strip()
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for name in budget:
        if isinstance(name, int) and name >= gpus:
            raise CtxextError(f"--max-memory {text}: this machine has no GPU {name} ({gpus} GPUs)")
        if not isinstance(name, int) and name not in ("cpu", "disk", "mps"):
            raise CtxextError(f"--max-memory {text}: {name!r} is no device (GPU numbers, cpu, disk or mps)")
    return budget
