"""textproj: tiny vocabulary-free text classifiers (ProjectionNet / SGNN / PRADO-style).

The data path reads top to bottom: text -> features (``textproj.features``) -> bits
(``Projector``) -> network -> label. ``load`` gives the torch-free on-device classifier;
``train`` (imported lazily, it needs torch) trains the trainer and projection networks jointly.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

# torch's OpenMP threads spin while they wait by default; on a shared 2-core machine two
# spinning threads took 121 s an epoch against 2.4-3.9 s sleeping (banking77, load 9). It must
# be set before torch is first imported; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from textproj.config import FeatureConfig, TrainConfig
from textproj.corpora import load_corpus
from textproj.data import Dataset, read_dataset
from textproj.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    ModelFormatError,
    ModelNotFoundError,
    TextprojError,
)
from textproj.projector import Projector
from textproj.runtime import Classifier, load

if TYPE_CHECKING:
    from textproj.training import train

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "Classifier",
    "ConfigError",
    "DataError",
    "Dataset",
    "FeatureConfig",
    "ModelFormatError",
    "ModelNotFoundError",
    "Projector",
    "TextprojError",
    "TrainConfig",
    "load",
    "load_corpus",
    "read_dataset",
    "train",
]


def __getattr__(name: str) -> Any:
    """``textproj.train`` imports torch only when first used."""
    if name == "train":
        from textproj.training import train

        return train
    raise AttributeError(f"module 'textproj' has no attribute {name!r}")
