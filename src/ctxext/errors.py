"""The one exception type that the command line turns into a single line on stderr."""


class CtxextError(Exception):
    """A problem with the user's input or environment, worded for the user."""


def did_you_mean(word: str, choices) -> str:
    """' (did you mean 'x'?)' for a near-miss, else ''."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
