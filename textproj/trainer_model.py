"""Load and run the trainer network that ``textproj train`` saves beside the on-device model.

The trainer is the large network trained jointly with the projection network; it is not meant for
a device, but serving or inspecting it (the demo shows both side by side) needs it back. Its files
hold only arrays (``trainer.npz``, read with ``allow_pickle=False``) and JSON (``trainer.json``),
so loading executes nothing. Needs torch.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from textproj import fsio, nets
from textproj.config import FeatureConfig, TrainConfig
from textproj.decisions import DEFAULT_THRESHOLD, label_names, sigmoid
from textproj.inputs import EVAL_BATCH, SplitInputs, forward_trainer, trainer_bags, trainer_features
from textproj.layout import TRAINER_HEADER, TRAINER_WEIGHTS
from textproj.model_file import ModelFormatError


def build_trainer(config: TrainConfig, n_labels: int) -> torch.nn.Module:
    """A fresh trainer network for ``config``."""
    trainer_class = nets.FeatureBagTrainer if config.trainer == "ffn" else nets.TokenLSTMTrainer
    dropout = config.dropout if config.trainer_dropout is None else config.trainer_dropout
    return trainer_class(
        config.trainer_buckets, config.trainer_dim, config.trainer_hidden, n_labels, dropout
    )


HALF_PRECISION = ("embedding.weight",)  # stored as TABLE_DTYPE: the table is nearly all the bytes
TABLE_DTYPE = np.float16


def round_for_storage(trainer: torch.nn.Module) -> torch.nn.Module:
    """Round the tensors stored at half precision in place, so the trainer scored at the end of
    training is the one saved (on banking77 dev this changes no prediction)."""
    with torch.no_grad():
        for name, tensor in trainer.state_dict().items():
            if name in HALF_PRECISION:
                tensor.copy_(tensor.half().float())
    return trainer


def save_trainer(
    trainer: torch.nn.Module,
    directory: Path,
    labels: list[str],
    config: TrainConfig,
    features: FeatureConfig,
    thresholds: np.ndarray | None = None,
    ensemble_thresholds: np.ndarray | None = None,
) -> int:
    """The trainer as plain arrays (trainer.npz) plus a JSON header: nothing executes on load.
    A multi-label run's header also holds the thresholds of the trainer and of its ensemble
    with the on-device model (``textproj.ensemble``). Returns the bytes of the arrays file."""
    buffer = io.BytesIO()
    arrays = {name: t.detach().cpu().numpy() for name, t in trainer.state_dict().items()}
    for name in HALF_PRECISION:
        if name in arrays:
            arrays[name] = arrays[name].astype(TABLE_DTYPE)
    np.savez(buffer, **arrays)
    n_bytes = fsio.write_bytes(directory / TRAINER_WEIGHTS, buffer.getvalue())
    fsio.write_json(
        directory / TRAINER_HEADER,
        {
            "labels": labels,
            "train_config": config.to_dict(),
            "features": features.to_dict(),
            "thresholds": _listed(thresholds),
            "ensemble_thresholds": _listed(ensemble_thresholds),
        },
    )
    return n_bytes


def _listed(thresholds: np.ndarray | None) -> list[float] | None:
    return None if thresholds is None else [float(t) for t in thresholds]


def _thresholds(header: dict, key: str, n_labels: int) -> np.ndarray | None:
    values = header.get(key)
    if values is None:
        return None
    values = np.asarray(values, dtype=np.float32)
    if values.shape != (n_labels,):
        raise ValueError(f"{len(values)} {key} for {n_labels} labels")
    return values


class TrainerModel:
    """A loaded trainer network: texts -> hashed features -> network -> label probabilities.

    ``labels`` are the class names in output order, ``config`` the :class:`TrainConfig` it was
    trained with, ``n_bytes`` the size of its weights file; ``ensemble_thresholds`` are those of
    its ensemble with the on-device model (multi-label; ``textproj.ensemble``).
    """

    def __init__(
        self,
        net: torch.nn.Module,
        labels: list[str],
        config: TrainConfig,
        features: FeatureConfig,
        n_bytes: int,
        thresholds: np.ndarray | None = None,
        ensemble_thresholds: np.ndarray | None = None,
    ) -> None:
        self.net = net.eval()
        self.labels = labels
        self.config = config
        self.features = trainer_features(config, features)
        self.n_bytes = n_bytes
        self.multi_label = config.multi_label
        default = np.full(len(labels), DEFAULT_THRESHOLD, dtype=np.float32)
        if self.multi_label:
            thresholds = default if thresholds is None else thresholds
            ensemble_thresholds = default if ensemble_thresholds is None else ensemble_thresholds
        self.thresholds = thresholds
        self.ensemble_thresholds = ensemble_thresholds

    def _inputs(self, texts: list[str]) -> SplitInputs:
        buckets, weights, offsets = trainer_bags(texts, self.features, self.config.trainer_buckets)
        empty_words = np.zeros((len(texts), 0), dtype=np.uint64)
        targets = np.zeros(len(texts), dtype=np.int64)
        return SplitInputs(targets, empty_words, None, 0, buckets, weights, offsets)

    @torch.no_grad()
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities, float32 (n, n_labels): softmax, or per-label sigmoids for a
        multi-label trainer."""
        if isinstance(texts, str):
            raise TypeError("expected a sequence of texts, got one str: wrap it in a list")
        inputs = self._inputs(list(texts))
        out = np.empty((len(inputs), len(self.labels)), dtype=np.float32)
        for lo in range(0, len(inputs), EVAL_BATCH):
            index = np.arange(lo, min(lo + EVAL_BATCH, len(inputs)))
            logits = forward_trainer(self.net, inputs, index).numpy()
            out[index] = (
                sigmoid(logits)
                if self.multi_label
                else torch.softmax(torch.from_numpy(logits), dim=1).numpy()
            )
        return out

    def predict(self, texts: Sequence[str]) -> list[str] | list[list[str]]:
        """The most probable label per text; for a multi-label trainer, the labels over their
        tuned thresholds."""
        return label_names(self.predict_proba(texts), self.labels, self.thresholds)

    def __repr__(self) -> str:
        return f"TrainerModel({self.config.trainer!r}, labels={len(self.labels)})"


def has_trainer(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` holds both trainer files."""
    folder = Path(directory)
    return (folder / TRAINER_WEIGHTS).is_file() and (folder / TRAINER_HEADER).is_file()


def load_trainer(directory: str | os.PathLike[str]) -> TrainerModel:
    """Load the trainer saved in ``directory`` (trainer.npz + trainer.json).

    A missing, unreadable or inconsistent file raises :class:`ModelFormatError` naming it.
    """
    folder = Path(directory)
    header_path, weights_path = folder / TRAINER_HEADER, folder / TRAINER_WEIGHTS
    try:
        header = json.loads(header_path.read_text(encoding="utf-8"))
        labels = header["labels"]
        config = TrainConfig.from_dict(header["train_config"])
        features = FeatureConfig.from_dict(header["features"])
        thresholds = _thresholds(header, "thresholds", len(labels))
        ensemble_thresholds = _thresholds(header, "ensemble_thresholds", len(labels))
    except OSError as error:
        raise ModelFormatError(f"{header_path}: cannot read ({error.strerror or error})") from None
    except (ValueError, KeyError, TypeError) as error:
        raise ModelFormatError(f"{header_path}: bad trainer header ({error})") from None
    net = build_trainer(config, len(labels))
    try:
        with np.load(weights_path, allow_pickle=False) as arrays:
            state = {name: torch.from_numpy(arrays[name].astype(np.float32)) for name in arrays}
        net.load_state_dict(state)
    except OSError as error:
        raise ModelFormatError(f"{weights_path}: cannot read ({error.strerror or error})") from None
    except (ValueError, RuntimeError) as error:
        raise ModelFormatError(f"{weights_path}: does not match {header_path} ({error})") from None
    n_bytes = weights_path.stat().st_size
    return TrainerModel(net, labels, config, features, n_bytes, thresholds, ensemble_thresholds)
