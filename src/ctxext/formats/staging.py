"""Atomic outputs: everything is written to a staging path beside the output and renamed into place.

A staging path is named ``.{output name}.ctxext-staging-{pid}-{random}``, so a run that was killed (SIGKILL,
power loss) leaves something a later run can recognise: each run removes the staging paths of processes that
no longer exist before it starts. SIGTERM and Ctrl-C remove the run's own staging on the way out. Files are
fsynced before the rename, so a renamed output is complete on disk.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import CtxextError

STAGING_MARK = ".ctxext-staging-"


def check_output(out: Path, overwrite: bool) -> None:
    """Fail early, before any work, if ``out`` cannot be written."""
    if out.exists() and not overwrite:
        raise CtxextError(f"{out} already exists; pass --overwrite to replace it")
    parent = out.resolve().parent
    if not parent.is_dir():
        raise CtxextError(f"cannot write {out}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CtxextError(f"cannot write {out}: folder {parent} is not writable")


def check_not_inside(out: Path, source: Path) -> None:
    """An output inside its own input would be copied into itself."""
    source, target = Path(source).resolve(), Path(out).resolve()
    if source.is_dir() and (target == source or source in target.parents):
        raise CtxextError(f"the output {out} is inside the input {source}; write it somewhere else")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(parent: Path) -> list[Path]:
    """Remove staging paths in ``parent`` left by processes that no longer run; return what was removed."""
    removed = []
    for item in parent.glob(f".*{STAGING_MARK}*"):
        pid = item.name.rsplit(STAGING_MARK, 1)[-1].split("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(item, ignore_errors=True) if item.is_dir() else item.unlink(missing_ok=True)
            removed.append(item)
    return removed


def _fsync_tree(path: Path) -> None:
    for item in [path, *path.rglob("*")] if path.is_dir() else [path]:
        if item.is_file():
            with open(item, "rb") as handle:
                os.fsync(handle.fileno())


def _default_permissions(path: Path) -> None:
    """Staging is private (0700 / 0600); an output should be readable like any other file."""
    umask = os.umask(0)
    os.umask(umask)
    for item in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.chmod(item, (0o777 if item.is_dir() else 0o666) & ~umask)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_output(out: Path, overwrite: bool, folder: bool = True) -> Iterator[Path]:
    """Yield a staging path beside ``out`` (an empty folder, or a file name) that becomes ``out`` only if
    the block succeeds; on any failure or interruption it is removed."""
    out = Path(out)
    check_output(out, overwrite)
    parent = out.resolve().parent
    sweep_stale(parent)
    staging = parent / f".{out.name}{STAGING_MARK}{os.getpid()}-{secrets.token_hex(3)}"
    if folder:
        staging.mkdir(mode=0o700)
    try:
        yield staging
        if not staging.exists():
            raise CtxextError(f"nothing was written for {out}")
        _default_permissions(staging)
        _fsync_tree(staging)
        if out.exists():
            retired = parent / f".{out.name}{STAGING_MARK}{os.getpid()}-old"
            os.rename(out, retired)
            os.rename(staging, out)
            _remove(retired)
        else:
            os.rename(staging, out)
    except BaseException:
        _remove(staging)
        raise
