"""textproj: tiny vocabulary-free text classifiers (ProjectionNet / SGNN / PRADO-style).

The data path reads top to bottom: text -> features (``textproj.features``) -> bits
(``Projector``) -> network -> label. ``load`` gives the torch-free on-device classifier;
``train`` (imported lazily, it needs torch) trains the trainer and projection networks jointly.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

# torch's OpenMP threads (libgomp) spin up to 300,000 rounds waiting for work by default: on a
# loaded 2-core machine that took 31 s for 4 banking77 epochs, against 9.1 s sleeping at once
# (OMP_WAIT_POLICY=PASSIVE), but sleeping at once costs 4.4 s against 3.2 s on an idle machine.
# A short spin of 1,000 rounds gave 3.3 s idle and 10.9 s loaded. It must be set before torch is
# first imported; a wait policy or spin count the user set is kept.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "1000")

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
