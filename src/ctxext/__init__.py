"""ctxext: extend the context window of pretrained transformers, and measure what it costs."""

from .errors import CtxextError

__all__ = ["CtxextError", "resample_table"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "resample_table":  # torch is imported when asked for, so that the command line starts at once
        from .methods.ape import resample_table

        return resample_table
    raise AttributeError(f"module 'ctxext' has no attribute {name!r}")
