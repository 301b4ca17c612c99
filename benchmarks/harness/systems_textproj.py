"""textproj: ``textproj.train`` with the default ``TrainConfig``; both networks and their
ensemble are measured.

The on-device projection model (``model.tpn``, run by the torch-free runtime), the trainer
network trained jointly with it (``trainer.npz``, run by torch) and the two averaged
(``textproj.ensemble``) come from one training run, so they share its seconds.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.common import Splits, Trained
from harness.report import ON_DEVICE
from textproj.config import TrainConfig
from textproj.layout import MODEL_NAME, TRAINER_HEADER, TRAINER_WEIGHTS

TRAINER_FILES = (TRAINER_WEIGHTS, TRAINER_HEADER)


def train_textproj(splits: Splits, workdir: Path, config: TrainConfig) -> list[Trained]:
    """Train with ``config`` (the harness passes the defaults) and return both networks."""
    from textproj.training import train

    result = train(
        splits.train,
        splits.dev,
        config=config,
        output_dir=workdir,
        corpus=splits.corpus,
        progress=False,
    )
    seconds = float(result.metrics["train_seconds"])
    trainer_dir = workdir / "trainer"  # only the trainer's own files, for its bytes
    trainer_dir.mkdir(exist_ok=True)
    ensemble_dir = workdir / "ensemble"  # the trainer's files and model.tpn
    ensemble_dir.mkdir(exist_ok=True)
    for name in TRAINER_FILES:
        shutil.copy2(workdir / name, trainer_dir / name)
        shutil.copy2(workdir / name, ensemble_dir / name)
    shutil.copy2(workdir / MODEL_NAME, ensemble_dir / MODEL_NAME)
    params = {  # the config as trained: defaults resolved from the data (max_pool) included
        "train": result.metrics["config"]["train"],
        "features": result.projector.get_config()["features"],
    }
    best_epoch = result.metrics.get("best_epoch", {})
    shared = "one joint training run gives both networks; its seconds are shown for each"
    return [
        Trained(
            ON_DEVICE,
            "textproj",
            "textproj",
            workdir / MODEL_NAME,
            seconds,
            {**params, "best_epoch": best_epoch.get("projection")},
            notes=[shared],
        ),
        Trained(
            "textproj trainer (torch)",
            "textproj",
            "textproj-trainer",
            trainer_dir,
            seconds,
            {**params, "best_epoch": best_epoch.get("trainer")},
            notes=[shared],
        ),
        Trained(
            "textproj ensemble (torch)",
            "textproj",
            "textproj-ensemble",
            ensemble_dir,
            seconds,
            {**params, "best_epoch": best_epoch},
            notes=[shared, "the trainer's and the on-device model's probabilities averaged"],
        ),
    ]
