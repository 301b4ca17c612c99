"""The served model: the trainer's and the on-device model's label probabilities, averaged
with weights ``config.ENSEMBLE_TRAINER_WEIGHT`` and the rest.

The two networks read a text differently (a bag of hashed n-gram embeddings; per-token bits,
convolutions and attention pooling), so their errors differ and their average is better than
either: on test, seeds 0-2, banking77 0.921 against the trainer's 0.910 and the on-device
model's 0.904 (docs/training.md, "The served ensemble"). A device takes ``model.tpn`` alone;
a server that can run torch takes both. ``textproj train`` scores it as "ensemble".
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from textproj.config import ENSEMBLE_TRAINER_WEIGHT as TRAINER_WEIGHT
from textproj.decisions import DEFAULT_THRESHOLD, label_names, sigmoid, softmax
from textproj.layout import MODEL_NAME
from textproj.model_file import ModelFormatError
from textproj.projector import check_n_jobs
from textproj.runtime import Classifier, load
from textproj.trainer_model import TrainerModel, load_trainer


def average(trainer: np.ndarray, device: np.ndarray) -> np.ndarray:
    """The ensemble's probabilities from the two networks'."""
    return TRAINER_WEIGHT * trainer + (1 - TRAINER_WEIGHT) * device


def ensemble_logits(trainer: np.ndarray, device: np.ndarray, multi_label: bool) -> np.ndarray:
    """Logits whose softmax (per-label sigmoid when ``multi_label``) is the :func:`average` of
    the two networks' probabilities, so arg-max and threshold tuning treat the ensemble like a
    network."""
    tiny = np.finfo(np.float32).tiny
    if multi_label:
        proba = np.clip(average(sigmoid(trainer), sigmoid(device)), tiny, 1 - 1e-7)
        return (np.log(proba) - np.log1p(-proba)).astype(np.float32)
    proba = average(softmax(trainer), softmax(device))
    return np.log(np.maximum(proba, tiny)).astype(np.float32)


class EnsembleModel:
    """A trainer and the on-device model of one run: texts -> their probabilities averaged.

    ``labels`` are the class names in output order; a multi-label ensemble predicts the labels
    at or above its own ``thresholds`` (tuned on dev at training time).
    """

    def __init__(
        self, trainer: TrainerModel, device: Classifier, thresholds: np.ndarray | None = None
    ) -> None:
        if trainer.labels != device.labels or trainer.multi_label != device.multi_label:
            raise ModelFormatError("the trainer and model.tpn are not of one run (labels differ)")
        self.trainer = trainer
        self.device = device
        self.labels = trainer.labels
        self.multi_label = trainer.multi_label
        if self.multi_label and thresholds is None:
            thresholds = np.full(len(self.labels), DEFAULT_THRESHOLD, dtype=np.float32)
        self.thresholds = thresholds

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities, float32 (n, n_labels): the two networks' :func:`average`."""
        if isinstance(texts, str):
            raise TypeError("expected a sequence of texts, got one str: wrap it in a list")
        texts = list(texts)
        return average(self.trainer.predict_proba(texts), self.device.predict_proba(texts))

    def predict(self, texts: Sequence[str]) -> list[str] | list[list[str]]:
        """The most probable label per text; multi-label: the labels over the thresholds."""
        return label_names(self.predict_proba(texts), self.labels, self.thresholds)

    def __repr__(self) -> str:
        return f"EnsembleModel(labels={len(self.labels)})"


def load_ensemble(directory: str | os.PathLike[str], *, n_jobs: int = -1) -> EnsembleModel:
    """The ensemble of a run's output directory (model.tpn, trainer.npz and trainer.json);
    ``n_jobs`` are the on-device model's projector threads (``textproj.load``).

    A missing or damaged file raises :class:`ModelFormatError` (or ``ModelNotFoundError``)
    naming it; an ``n_jobs`` that is no thread count a ConfigError, before any file is read.
    """
    check_n_jobs(n_jobs)
    trainer = load_trainer(directory)
    device = load(Path(directory) / MODEL_NAME, n_jobs=n_jobs)
    return EnsembleModel(trainer, device, trainer.ensemble_thresholds)
