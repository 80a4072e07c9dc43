"""RoPE frequency scaling, one file per method (:mod:`.spec` says what a method is).

Adding a method is one file here that defines its ``frequencies`` and calls ``register(RopeMethod(...))``,
plus its import below; the command line's choices, help and did-you-mean, ``inspect`` and every writer
read the registry.
"""

from . import linear, ntk, dynamic, yarn, llama3, longrope, critical_base  # noqa: F401, I001  (each registers its method; this order is the listing's)
from .ntk import ntk_base
from .spec import (
    ROPE_REGISTRY,
    GgufRope,
    RopeMethod,
    classify_pairs,
    default_inv_freq,
    register,
    rope_method,
    scaled_inv_freq,
)
from .yarn import yarn_attention_factor, yarn_correction_range, yarn_divisors

__all__ = [
    "ROPE_REGISTRY",
    "GgufRope",
    "RopeMethod",
    "classify_pairs",
    "default_inv_freq",
    "ntk_base",
    "register",
    "rope_method",
    "scaled_inv_freq",
    "yarn_attention_factor",
    "yarn_correction_range",
    "yarn_divisors",
]
