"""``python -m ctxext``: the ``ctxext`` command, for launchers that start a module (``accelerate launch -m ctxext``,
``torchrun -m ctxext``)."""

from .cli.main import entry

if __name__ == "__main__":
    entry()
