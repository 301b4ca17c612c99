"""Checkpoints of an interrupted run: only what a resume needs, as tensors and plain values
(read back with ``torch.load(weights_only=True)``: nothing executes), written atomically."""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from textproj import fsio
from textproj.data import Dataset
from textproj.errors import CheckpointError
from textproj.layout import CHECKPOINT_NAME

FORMAT = "textproj-checkpoint-3"


def data_fingerprint(splits: dict[str, Dataset], transfer: list[str] | None = None) -> str:
    """SHA-256 over every split's texts and labels (and the transfer texts, if any): a resumed
    run must see the same data."""
    digest = hashlib.sha256()
    for name, data in splits.items():
        digest.update(json.dumps([name, data.texts, data.labels]).encode("utf-8"))
    if transfer:
        digest.update(json.dumps(["transfer", transfer]).encode("utf-8"))
    return digest.hexdigest()


def read(directory: str | Path) -> dict[str, Any]:
    """The checkpoint a run left in ``directory``."""
    path = Path(directory) / CHECKPOINT_NAME
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint to resume (the run ended or never began)")
    try:
        state = torch.load(path, weights_only=True)
    except Exception as error:
        raise CheckpointError(f"{path}: unreadable checkpoint ({error})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a textproj checkpoint of this version")
    return state


# Why a resume is refused when a checkpoint's identity key differs from the run's.
IDENTITY = {
    "config": "the training options differ from the interrupted run's",
    "features": "the feature options differ from the interrupted run's",
    "fingerprint": "the data differ from the interrupted run's (a data file changed since)",
}


def check_resumable(state: dict[str, Any], expected: dict[str, Any], directory: Path) -> None:
    """Refuse a checkpoint whose config, features or data differ from this run's."""
    for key, value in expected.items():
        if state.get(key) != value:
            raise CheckpointError(f"{directory / CHECKPOINT_NAME}: {IDENTITY[key]}; cannot resume")


def load_into(step: Any, state: dict[str, Any], directory: Path) -> None:
    """``state``'s weights, optimiser and random stream into ``step`` (a ``JointStep``); a
    checkpoint whose tensors do not fit the networks this version builds from its config (an
    older default shape left unnamed in it) is refused by name, not with torch's traceback."""
    try:
        step.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError):
        raise CheckpointError(
            f"{directory / CHECKPOINT_NAME}: its networks' shapes differ from the ones this "
            "version builds from its config (written by another textproj version?); cannot resume"
        ) from None


def write(directory: Path, state: dict[str, Any]) -> int:
    """Write ``state`` as the directory's checkpoint atomically; return its bytes."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buffer)
    return fsio.write_bytes(directory / CHECKPOINT_NAME, buffer.getvalue())


def writer(
    directory: Path,
    identity: dict[str, Any],
    every_seconds: float,
    elapsed: Callable[[], float],
) -> Callable[[dict[str, Any]], None]:
    """A loop callback that checkpoints at an epoch's end once ``every_seconds`` have passed
    since the last checkpoint (0: every epoch)."""
    last = time.monotonic()

    def on_checkpoint(state: dict[str, Any]) -> None:
        nonlocal last
        if time.monotonic() - last >= every_seconds:
            write(directory, {**identity, **state, "wall_seconds": elapsed()})
            last = time.monotonic()

    return on_checkpoint
