"""The one atomic-write helper of the library: files and whole directories appear complete or
not at all, whatever moment the process is killed.

A file is written to a temporary name beside its target, synced, then renamed over it. A run's
output directory is built as a staging directory beside the target and swapped in with one
rename (an atomic exchange where the OS has one), so readers see the previous complete set of
files or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

TEMP_SUFFIX = ".tmp"
_RENAME_EXCHANGE = 2  # renameat2 flag (Linux >= 3.15)
_AT_FDCWD = -100


@contextlib.contextmanager
def _naming(target: Path) -> Iterator[None]:
    """An OSError of creating ``target``'s temporary sibling re-raised naming ``target``, the
    path the user gave (the hidden temporary name means nothing to them)."""
    try:
        yield
    except OSError as error:
        raise type(error)(f"cannot write {target}: {error.strerror}") from None


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def _sync_directory(directory: Path) -> None:
    if hasattr(os, "O_DIRECTORY"):  # make a rename itself durable (POSIX)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes(path: str | os.PathLike[str], content: bytes) -> int:
    """Write ``content`` to ``path`` atomically; return the bytes written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_name(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    with _naming(path):
        fd = os.open(temp, flags, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _sync_directory(path.parent)
    return len(content)


def write_text(path: str | os.PathLike[str], text: str) -> int:
    """``text`` as UTF-8, written atomically; return the bytes written."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], data: Any) -> int:
    """``data`` as indented UTF-8 JSON, written atomically."""
    return write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def staging_directory(target: str | os.PathLike[str]) -> Path:
    """A fresh empty directory beside ``target`` to build its new contents in."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _temp_name(target)
    with _naming(target):
        staging.mkdir()
    return staging


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return result == 0


def replace_directory(staging: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Make ``staging`` the directory ``target`` in one step; the old ``target`` is removed.

    Where the OS cannot exchange two directories atomically, the old one is first renamed
    aside, so a kill in between leaves the new set under ``target``'s temporary name and the
    old set complete under another: never a mix.
    """
    staging, target = Path(staging), Path(target)
    for name in os.listdir(staging):
        if name.endswith(TEMP_SUFFIX):
            raise RuntimeError(f"{staging / name}: unfinished file in a staging directory")
    if not target.exists():
        os.rename(staging, target)
    elif _exchange(staging, target):
        shutil.rmtree(staging)
    else:
        aside = _temp_name(target)
        os.rename(target, aside)
        os.rename(staging, target)
        shutil.rmtree(aside)
    _sync_directory(target.parent)


def build_directory(target: str | os.PathLike[str], write: Callable[[Path], None]) -> None:
    """Run ``write`` on a fresh staging directory beside ``target``, then make it ``target`` in
    one step (:func:`replace_directory`); a failure leaves ``target`` as it was."""
    staging = staging_directory(target)
    try:
        write(staging)
        replace_directory(staging, target)
    except BaseException:
        remove_stale_staging(target)
        raise


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_staging(target: str | os.PathLike[str]) -> None:
    """Remove staging directories and temporary files a killed run left beside ``target``."""
    target = Path(target)
    prefix = f".{target.name}."
    with contextlib.suppress(FileNotFoundError):
        for entry in target.parent.iterdir():
            if not (entry.name.startswith(prefix) and entry.name.endswith(TEMP_SUFFIX)):
                continue
            pid = entry.name[len(prefix) :].split(".")[0]
            if pid.isdigit() and _alive(int(pid)):
                continue  # another run's, still going
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
