"""Types and helpers shared by the harness modules: what a trained system hands to the measurer."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textproj.data import Dataset


@dataclass(frozen=True)
class Splits:
    """One corpus's train, dev and test data, as every system sees it."""

    corpus: str
    train: Dataset
    dev: Dataset
    test: Dataset


@dataclass
class Trained:
    """One trained system, ready to be measured by ``predict_worker``.

    ``kind`` names the worker's loader; ``model_path`` is what the loader opens and what is
    counted as the model's bytes on disk (a file, or every file under a directory).
    ``train_seconds`` times the final model's training; ``tune_seconds`` the search on dev
    that chose its hyper-parameters (0 when there was none).
    """

    system: str
    family: str
    kind: str
    model_path: Path
    train_seconds: float
    params: dict[str, Any]
    tune_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def model_bytes(path: Path) -> int:
    """Bytes on disk of a model file, or of every file under a model directory."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def write_labels(directory: Path, labels: list[str]) -> None:
    """Label names in index order, for systems whose files hold only label indices."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "labels.json").write_text(json.dumps(labels, ensure_ascii=False), "utf-8")


def read_labels(directory: Path) -> list[str]:
    """Inverse of :func:`write_labels`."""
    return json.loads((directory / "labels.json").read_text("utf-8"))
