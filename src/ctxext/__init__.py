"""ctxext: extend the context window of pretrained transformers, and measure what it costs."""

from .errors import CtxextError
from .methods.ape import resample_table

__all__ = ["CtxextError", "resample_table"]
__version__ = "0.1.0"
