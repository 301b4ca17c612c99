"""Load and run the trainer network that ``textproj train`` saves beside the on-device model.

The trainer is the large network trained jointly with the projection network; it is not meant for
a device, but serving or inspecting it (the demo shows both side by side) needs it back. Its files
hold only arrays (``trainer.npz``, read with ``allow_pickle=False``) and JSON (``trainer.json``),
so loading executes nothing. Needs torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from textproj.config import FeatureConfig, TrainConfig
from textproj.features import featurize
from textproj.model_file import ModelFormatError
from textproj.training import (
    EVAL_BATCH,
    TRAINER_HEADER,
    TRAINER_WEIGHTS,
    SplitInputs,
    build_networks,
    forward_trainer,
    trainer_features,
)


class TrainerModel:
    """A loaded trainer network: texts -> hashed features -> network -> label probabilities.

    ``labels`` are the class names in output order, ``config`` the :class:`TrainConfig` it was
    trained with, ``n_bytes`` the size of its weights file.
    """

    def __init__(
        self,
        net: torch.nn.Module,
        labels: list[str],
        config: TrainConfig,
        features: FeatureConfig,
        n_bytes: int,
    ) -> None:
        self.net = net.eval()
        self.labels = labels
        self.config = config
        self.features = trainer_features(config, features)
        self.n_bytes = n_bytes

    def _inputs(self, texts: list[str]) -> SplitInputs:
        hashes, weights, offsets = featurize(texts, self.features)
        buckets = (hashes % np.uint64(self.config.trainer_buckets)).astype(np.int64)
        empty_bits = np.zeros((len(texts), 0), dtype=np.uint8)
        targets = np.zeros(len(texts), dtype=np.int64)
        return SplitInputs(targets, empty_bits, None, buckets, weights.astype(np.float32), offsets)

    @torch.no_grad()
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Softmax probabilities, float32 (n, n_labels)."""
        if isinstance(texts, str):
            raise TypeError("expected a sequence of texts, got one str: wrap it in a list")
        inputs = self._inputs(list(texts))
        out = np.empty((len(inputs), len(self.labels)), dtype=np.float32)
        for lo in range(0, len(inputs), EVAL_BATCH):
            index = np.arange(lo, min(lo + EVAL_BATCH, len(inputs)))
            out[index] = torch.softmax(forward_trainer(self.net, inputs, index), dim=1).numpy()
        return out

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The most probable label per text."""
        return [self.labels[j] for j in self.predict_proba(texts).argmax(axis=1)]

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
    except OSError as error:
        raise ModelFormatError(f"{header_path}: cannot read ({error.strerror or error})") from None
    except (ValueError, KeyError, TypeError) as error:
        raise ModelFormatError(f"{header_path}: bad trainer header ({error})") from None
    _, net = build_networks(config, 1, len(labels))
    try:
        with np.load(weights_path, allow_pickle=False) as arrays:
            state = {name: torch.from_numpy(arrays[name]) for name in arrays.files}
        net.load_state_dict(state)
    except OSError as error:
        raise ModelFormatError(f"{weights_path}: cannot read ({error.strerror or error})") from None
    except (ValueError, RuntimeError) as error:
        raise ModelFormatError(f"{weights_path}: does not match {header_path} ({error})") from None
    return TrainerModel(net, labels, config, features, weights_path.stat().st_size)
