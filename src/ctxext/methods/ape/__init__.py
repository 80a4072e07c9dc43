"""Resampling of learned absolute position tables, one file per kind of method (:mod:`.spec` says what a method
is): curves through the old rows (:mod:`.interpolants`), doubling (:mod:`.doubling`) and index maps
(:mod:`.index_maps`). Adding a method is a ``register(ApeMethod(...))`` in one of them or in a file of its own
imported below; the command line's help, did-you-mean and ``plan_table`` read the registry."""

from . import interpolants, doubling, index_maps  # noqa: F401, I001  (each registers; this order is the listing's)
from .doubling import DOUBLING, double_rows
from .index_maps import index_map_rows
from .interpolants import interpolate_rows, sample_coordinates
from .spec import APE_REGISTRY, ApeMethod, register, resample_table


__all__ = [
    "APE_REGISTRY",
    "DOUBLING",
    "ApeMethod",
    "double_rows",
    "index_map_rows",
    "interpolate_rows",
    "register",
    "resample_table",
    "sample_coordinates",
]
