"""May a training run write into an output directory? (Files are written by ``textproj.fsio``.)

:func:`check_output_dir` is called before any work starts (by the CLI, and by training when it
is given an output directory), so a bad ``--output`` fails in a second, not after an epoch.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from textproj.errors import ConfigError
from textproj.layout import CHECKPOINT_NAME, METRICS_NAME, MODEL_NAME

__all__ = [
    "RUN_FILES",
    "check_output_dir",
    "holds_run",
    "refuse_a_directory",
    "refuse_a_file",
]

RUN_FILES = (MODEL_NAME, METRICS_NAME)  # either one marks a directory as a finished run's


def holds_run(directory: str | os.PathLike[str], marks: Sequence[str] = RUN_FILES) -> bool:
    """Whether ``directory`` holds a finished textproj run: one of ``marks`` (by default a
    model.tpn or a metrics.json; a sweep's or an export's files for those)."""
    directory = Path(directory)
    return any((directory / name).is_file() for name in marks)


def _refuse_a_file_above(path: Path, named: str) -> None:
    """Raise ConfigError if a parent of ``path`` exists as a file: nothing can be made under it."""
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(
                    f"{named}: {parent} is a file, not a directory; give another path"
                )
            return


def refuse_a_file(directory: str | os.PathLike[str], named: str | None = None) -> None:
    """Raise ConfigError if the output ``directory``, or a parent of it, exists as something else
    (a file): nothing could be written into it. ``named`` is how the error names it (default:
    the path)."""
    directory = Path(directory)
    named = named or str(directory)
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{named}: exists and is not a directory; give another output")
    _refuse_a_file_above(directory, named)


def refuse_a_directory(path: str | os.PathLike[str], named: str | None = None) -> None:
    """Raise ConfigError if the output file ``path`` is a directory, or a parent of it is a file:
    checked before the work whose result it is to hold."""
    path = Path(path)
    named = named or str(path)
    if path.is_dir():
        raise ConfigError(f"{named}: is a directory; give a file name")
    _refuse_a_file_above(path, named)


def check_output_dir(
    directory: str | os.PathLike[str],
    *,
    force: bool = False,
    resume: bool = False,
    inputs: Iterable[str | os.PathLike[str]] = (),
    marks: Sequence[str] = RUN_FILES,
    kind: str = "run",
    marked: str | None = None,
) -> None:
    """Raise ConfigError unless a run may write into ``directory``: a run replaces the whole
    directory, so nothing in it may be lost unasked. ``marks`` are the files that make a
    directory another output: by default another of this ``kind`` (a training run's, a
    sweep's); ``marked`` names it when it is of another kind (``a C export``).

    Refused: the current directory or one holding it, and a directory holding one of the run's
    ``inputs`` (data files), even with ``force``; a path that exists and is not a directory; a
    directory holding one of ``marks`` (another run's model.tpn or metrics.json), or an
    interrupted run's checkpoint, unless ``force`` (replace it) or, for a training run's check,
    ``resume`` (continue it); a directory holding anything else, unless ``force``. A missing or
    empty one is fine. Messages name the ``kind`` of output that would replace the directory,
    and the way out in this function's (the API's) words, ``force=True``: the CLI writes each as
    its option (``cli._option_names``).
    """
    directory = Path(directory)
    replaces = f"a {kind} replaces its output directory whole"
    where = directory.resolve()
    here = Path.cwd()
    if directory.name in ("", "..") or where in (here, *here.parents):
        raise ConfigError(
            f"{directory}: is the current directory or holds it, and {replaces}; give a new or "
            "empty directory"
        )
    for source in inputs:
        if where in Path(source).resolve().parents:
            raise ConfigError(
                f"{directory}: holds the input {source}, and {replaces}; give another output "
                "directory"
            )
    refuse_a_file(directory)
    if force or not directory.is_dir():
        return
    found = [name for name in marks if (directory / name).is_file()]
    if found and not resume:
        raise ConfigError(
            f"{directory}: holds {marked or f'another {kind}'} ({', '.join(found)}); overwrite it "
            "with force=True, or give another output directory"
        )
    if (directory / CHECKPOINT_NAME).is_file():
        if kind != "run":
            raise ConfigError(
                f"{directory}: holds an interrupted run's {CHECKPOINT_NAME}, and {replaces}; "
                "give another output directory, or replace it with force=True"
            )
        if not resume:
            raise ConfigError(
                f"{directory}: holds an interrupted run's {CHECKPOINT_NAME}; continue it with "
                "resume=True, or start over with force=True"
            )
        return
    others = sorted(os.listdir(directory))
    if others and not found:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise ConfigError(
            f"{directory}: holds files that are not a textproj {kind} ({shown}), and "
            f"{replaces}; give a new or empty directory, or replace it with force=True"
        )
