"""A training run's output directory: may this run write there, and writing files atomically.

:func:`check_output_dir` is called before any work starts (by the CLI, and by training when it
is given an output directory), so a bad ``--output`` fails in a second, not after an epoch.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from textproj.config import CHECKPOINT_FILENAME, RUN_FILENAMES
from textproj.errors import ConfigError

__all__ = ["check_output_dir", "holds_run", "write_atomic"]


def holds_run(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` holds a finished textproj run (a model.tpn or a metrics.json)."""
    directory = Path(directory)
    return any((directory / name).is_file() for name in RUN_FILENAMES)


def check_output_dir(
    directory: str | os.PathLike[str], *, force: bool = False, resume: bool = False
) -> None:
    """Raise ConfigError unless a run may write into ``directory``.

    Refused: a path that exists and is not a directory; a directory holding another run's
    model.tpn or metrics.json, or an interrupted run's checkpoint, unless ``force`` (overwrite
    it) or, for the checkpoint, ``resume`` (continue it). A missing or unrelated directory is fine.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory}: exists and is not a directory; give another output")
    if force or not directory.is_dir():
        return
    if holds_run(directory) and not resume:
        found = ", ".join(name for name in RUN_FILENAMES if (directory / name).is_file())
        raise ConfigError(
            f"{directory}: holds another run ({found}); overwrite it with --force "
            "(force=True), or give another output directory"
        )
    if (directory / CHECKPOINT_FILENAME).is_file() and not resume:
        raise ConfigError(
            f"{directory}: holds an interrupted run's {CHECKPOINT_FILENAME}; continue it with "
            f"`textproj train --resume {directory}`, or start over with --force"
        )


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so that it appears complete or not at all (temporary file in
    the same directory, then a rename); the temporary file never outlives a failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        temp.write_bytes(data)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
