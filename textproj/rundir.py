"""May a training run write into an output directory? (Files are written by ``textproj.fsio``.)

:func:`check_output_dir` is called before any work starts (by the CLI, and by training when it
is given an output directory), so a bad ``--output`` fails in a second, not after an epoch.
"""

from __future__ import annotations

import os
from pathlib import Path

from textproj.errors import ConfigError
from textproj.layout import CHECKPOINT_NAME, METRICS_NAME, MODEL_NAME

__all__ = ["RUN_FILES", "check_output_dir", "holds_run", "refuse_a_file"]

RUN_FILES = (MODEL_NAME, METRICS_NAME)  # either one marks a directory as a finished run's


def holds_run(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` holds a finished textproj run (a model.tpn or a metrics.json)."""
    directory = Path(directory)
    return any((directory / name).is_file() for name in RUN_FILES)


def refuse_a_file(directory: str | os.PathLike[str], named: str | None = None) -> None:
    """Raise ConfigError if the output ``directory`` exists as something else (a file): nothing
    could be written into it. ``named`` is how the error names it (default: the path)."""
    if Path(directory).exists() and not Path(directory).is_dir():
        raise ConfigError(
            f"{named or directory}: exists and is not a directory; give another output"
        )


def check_output_dir(
    directory: str | os.PathLike[str], *, force: bool = False, resume: bool = False
) -> None:
    """Raise ConfigError unless a run may write into ``directory``.

    Refused: a path that exists and is not a directory; a directory holding another run's
    model.tpn or metrics.json, or an interrupted run's checkpoint, unless ``force`` (overwrite
    it) or, for the checkpoint, ``resume`` (continue it). A missing or unrelated directory is fine.
    """
    directory = Path(directory)
    refuse_a_file(directory)
    if force or not directory.is_dir():
        return
    if holds_run(directory) and not resume:
        found = ", ".join(name for name in RUN_FILES if (directory / name).is_file())
        raise ConfigError(
            f"{directory}: holds another run ({found}); overwrite it with --force "
            "(force=True), or give another output directory"
        )
    if (directory / CHECKPOINT_NAME).is_file() and not resume:
        raise ConfigError(
            f"{directory}: holds an interrupted run's {CHECKPOINT_NAME}; continue it with "
            f"`textproj train --resume {directory}` (resume=True), or start over with --force "
            "(force=True)"
        )
