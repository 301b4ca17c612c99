"""Train the demo's bundled model: Banking77 with the current defaults and a small trainer.

Run ``python app/make_bundled_model.py`` (the app runs the same function, with a progress bar,
when the bundled model is missing). Every setting is ``TrainConfig``'s default except one: the
trainer's hashed embedding table is cut from 2**16 to ``TRAINER_BUCKETS`` rows so that
``trainer.npz`` stays under 1 MB and can be committed beside ``model.tpn`` (the on-device model
is unaffected in size).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import textproj
from textproj import TrainConfig, load_corpus
from textproj.layout import MODEL_NAME

BUNDLED_CORPUS = "banking77"
BUNDLED_DIR = Path(__file__).resolve().parent / "models" / BUNDLED_CORPUS
TRAINER_BUCKETS = 2**12


def bundled_config() -> TrainConfig:
    """The bundled model's training config: the defaults with a small trainer table."""
    return TrainConfig(trainer_buckets=TRAINER_BUCKETS)


def make_bundled_model(
    output_dir: Path = BUNDLED_DIR,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    epochs: int | None = None,
) -> Path:
    """Train on the bundled corpus into ``output_dir`` (replacing the model there); return the
    path of its model.tpn."""
    splits = [load_corpus(BUNDLED_CORPUS, split) for split in ("train", "dev", "test")]
    config = bundled_config()
    if epochs is not None:
        config = dataclasses.replace(config, epochs=epochs)
    result = textproj.train(
        *splits,
        config=config,
        output_dir=output_dir,
        force=True,
        corpus=BUNDLED_CORPUS,
        progress=on_epoch is None,
        on_epoch=on_epoch,
    )
    return result.output_dir / MODEL_NAME


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Train the demo's bundled model.")
    parser.add_argument("--epochs", type=int, help="maximum epochs [TrainConfig's default]")
    parser.add_argument("--output", type=Path, default=BUNDLED_DIR, help="output folder")
    args = parser.parse_args()
    print(make_bundled_model(args.output, epochs=args.epochs))
