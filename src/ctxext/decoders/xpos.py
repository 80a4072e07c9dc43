"""xPos (Sun et al. 2022, "A Length-Extrapolatable Transformer", LeX) on top of a Llama-family RoPE model.

RoPE rotates pair k of queries and keys by m theta_k. xPos also scales pair k of the query at position
m by zeta_k^(m / gamma) and of the key at position n by zeta_k^(-n / gamma), with
zeta_k = (2k / d + 0.4) / 1.4 and gamma = 512, so the attention score of a pair decays as
zeta_k^((m - n) / gamma) with distance. Positions are centred, as in the paper's implementation: the scale
uses m - c and n - c with c half the model's window, which leaves every score unchanged (only m - n
matters) and halves the largest exponent, so float16 overflows twice as late. c is fixed, not the current
length, so keys in the cache stay valid. A per-pair scalar commutes with the pair's rotation, so the
scale is applied to the q_proj / k_proj outputs by forward hooks; positions come from the input length
and the cache. It changes every attention score: train with it, do not retrofit it.

Saved folders carry ``"xpos": {"scale_base": gamma}`` and the model type ``ctxext_xpos_llama``, so a plain
loader stops with "unrecognized model type" instead of silently running plain RoPE.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..errors import CtxextError

XPOS_MODEL_TYPE = "ctxext_xpos_llama"


def xpos_scale(dim: int, positions: torch.Tensor, scale_base: float = 512.0, decay: bool = True) -> torch.Tensor:
    """(len(positions), dim) factors zeta_k^(p / gamma) in rotate_half layout (pair k = dims k and k + d/2)."""
    if not decay:
        return torch.ones(len(positions), dim)
    zeta = (torch.arange(0, dim, 2, dtype=torch.float64) / dim + 0.4) / 1.4
    power = positions.double().unsqueeze(-1) / scale_base
    half = zeta.unsqueeze(0) ** power
    return torch.cat([half, half], dim=-1).float()


class XPos:
    """Hooks that apply xPos to every attention layer of a loaded Llama-family model."""

    def __init__(self, model: nn.Module, scale_base: float = 512.0, decay: bool = True):
        config = model.config
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        self.scale_base, self.decay = scale_base, decay
        self.centre = int(config.max_position_embeddings) // 2
        self.positions: torch.Tensor | None = None
        self.handles = [model.get_decoder().register_forward_pre_hook(self._track, with_kwargs=True)]
        layers = [m for m in model.modules() if hasattr(m, "q_proj") and hasattr(m, "k_proj")]
        if not layers:
            raise CtxextError("xPos needs attention layers with q_proj and k_proj (Llama family)")
        for attention in layers:
            self.handles.append(attention.q_proj.register_forward_hook(self._hook(+1)))
            self.handles.append(attention.k_proj.register_forward_hook(self._hook(-1)))

    def _track(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        embeds = kwargs.get("inputs_embeds")
        length = (ids if ids is not None else embeds).shape[1]
        cache = kwargs.get("past_key_values")
        start = cache.get_seq_length() if cache is not None and hasattr(cache, "get_seq_length") else 0
        given = kwargs.get("position_ids")
        self.positions = given[0].cpu() if given is not None else torch.arange(start, start + length)

    def _hook(self, sign: int):
        def apply(module, inputs, output):
            scale = xpos_scale(self.head_dim, sign * (self.positions - self.centre), self.scale_base, self.decay)
            shape = output.shape
            heads = shape[-1] // self.head_dim
            scaled = output.view(*shape[:-1], heads, self.head_dim) * scale.to(output).unsqueeze(1)
            return scaled.view(shape)

        return apply

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def mark_xpos_folder(folder: Path, scale_base: float) -> None:
    """Record xPos in config.json so that only ctxext's loader accepts the folder."""
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config["xpos"] = {"scale_base": scale_base, "base_model_type": config["model_type"]}
    config["model_type"] = XPOS_MODEL_TYPE
    path.write_text(json.dumps(config, indent=2))
    from ..formats.provenance import append_card_section

    append_card_section(
        folder,
        "xPos",
        [
            f"This model was trained with xPos (scale base {scale_base:g}): queries and keys are scaled per frequency "
            "pair by zeta^(+-position / scale base) on top of RoPE. transformers, llama.cpp and vLLM cannot represent "
            "this, so the model type is `ctxext_xpos_llama` and they refuse to load it rather than run it without "
            "xPos. Load it with `ctxext.decoders.xpos.load_xpos_model(folder)`.",
        ],
    )


def load_xpos_model(folder: str | Path, dtype=torch.float32):
    """Load a folder written with xPos: the Llama-family model plus its xPos hooks."""
    import transformers
    from safetensors.torch import load_file

    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    if config.get("model_type") != XPOS_MODEL_TYPE:
        raise CtxextError(f"{folder} was not written with xPos")
    settings = config.pop("xpos")
    config["model_type"] = settings["base_model_type"]
    config_class = transformers.AutoConfig.for_model(config["model_type"]).__class__
    model_config = config_class.from_dict(config)
    model = transformers.AutoModelForCausalLM.from_config(model_config, dtype=dtype)
    state = {}
    for file in sorted(folder.glob("*.safetensors")):
        state.update(load_file(str(file)))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.endswith("lm_head.weight")]:
        raise CtxextError(f"{folder}: weights do not match the model ({missing[:2]}, {unexpected[:2]})")
    model.tie_weights()
    hooks = XPos(model, settings["scale_base"])
    return model.eval(), hooks
