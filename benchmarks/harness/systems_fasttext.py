"""fastText: defaults, and a grid search on dev; each saved plain and quantized (-retrain -qnorm).

The Python package ``fasttext-wheel`` (0.9.2) wraps the C++ library. Its ``predict`` on one
string breaks under numpy 2, so the worker always predicts a list (the wrapper's list path
calls the same C++ ``multilinePredict`` without that numpy call). Labels are written as
``__label__<index>`` (names may hold spaces) and newlines in texts become spaces (fastText
reads one example per line).
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

from harness.common import Splits, Trained, write_labels
from textproj.data import Dataset

TRAIN_THREADS = 2  # as many as textproj's training uses
# Fixed in the search: character 2-5-grams and a 200k-row hash table for n-grams (the
# default 2M rows make an 800 MB model per grid point).
TUNED_FIXED = {"minn": 2, "maxn": 5, "bucket": 200_000}
GRID = {"lr": [0.2, 1.0], "epoch": [10, 40], "wordNgrams": [1, 2], "dim": [20, 100]}
QUICK_GRID = {"lr": [0.5, 1.0], "epoch": [5], "wordNgrams": [1, 2], "dim": [20]}
TUNED_CUTOFF = 20_000  # words + n-gram rows kept when quantizing the tuned model
QUICK_EPOCHS = 5


def _write(data: Dataset, label_index: dict[str, int], path: Path) -> Path:
    lines = (
        f"__label__{label_index[label]} {text.replace(chr(10), ' ')}\n"
        for text, label in zip(data.texts, data.labels, strict=True)
        if label in label_index
    )
    path.write_text("".join(lines), "utf-8")
    return path


def _train(fasttext: Any, train_file: Path, params: dict[str, Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    model = fasttext.train_supervised(
        input=str(train_file), thread=TRAIN_THREADS, seed=0, verbose=0, **params
    )
    return model, time.perf_counter() - started


def _save_pair(
    model: Any,
    name: str,
    params: dict[str, Any],
    seconds: float,
    tune_seconds: float,
    cutoff: int,
    train_file: Path,
    workdir: Path,
    labels: list[str],
) -> list[Trained]:
    """Save ``model`` plain, then quantize it in place with retraining and save that too."""
    plain_dir, quant_dir = workdir / f"{name}-plain", workdir / f"{name}-quantized"
    write_labels(plain_dir, labels)
    write_labels(quant_dir, labels)
    model.save_model(str(plain_dir / "model.bin"))
    started = time.perf_counter()
    model.quantize(input=str(train_file), retrain=True, qnorm=True, cutoff=cutoff)
    quant_seconds = time.perf_counter() - started
    model.save_model(str(quant_dir / "model.ftz"))
    quant_params = {**params, "quantize": {"retrain": True, "qnorm": True, "cutoff": cutoff}}
    title = "defaults" if name == "defaults" else "tuned on dev"
    return [
        Trained(
            f"fastText {title}",
            "fastText",
            "fasttext",
            plain_dir / "model.bin",
            seconds,
            params,
            tune_seconds,
        ),
        Trained(
            f"fastText {title}, quantized",
            "fastText",
            "fasttext",
            quant_dir / "model.ftz",
            seconds + quant_seconds,
            quant_params,
            tune_seconds,
            ["train seconds include quantization with retraining"],
        ),
    ]


def train_fasttext(splits: Splits, workdir: Path, quick: bool) -> list[Trained]:
    """Defaults and the dev-tuned model, each plain and quantized."""
    import fasttext

    workdir.mkdir(parents=True, exist_ok=True)
    labels = sorted(set(splits.train.labels))
    index = {label: i for i, label in enumerate(labels)}
    train_file = _write(splits.train, index, workdir / "train.txt")
    dev_file = _write(splits.dev, index, workdir / "dev.txt")

    defaults = {"epoch": QUICK_EPOCHS} if quick else {}
    model, seconds = _train(fasttext, train_file, defaults)
    out = _save_pair(model, "defaults", defaults, seconds, 0.0, 0, train_file, workdir, labels)

    grid = QUICK_GRID if quick else GRID
    search_started = time.perf_counter()
    best: tuple[float, dict[str, Any], Any, float] | None = None
    tried = []
    for values in itertools.product(*grid.values()):
        params = {**dict(zip(grid, values, strict=True)), **TUNED_FIXED}
        model, seconds = _train(fasttext, train_file, params)
        _, dev_accuracy, _ = model.test(str(dev_file))  # precision@1 = accuracy here
        tried.append({**params, "dev_accuracy": round(dev_accuracy, 4)})
        if best is None or dev_accuracy > best[0]:
            best = (dev_accuracy, params, model, seconds)
    assert best is not None
    _, params, model, seconds = best
    tune_seconds = time.perf_counter() - search_started
    tuned = _save_pair(
        model, "tuned", params, seconds, tune_seconds, TUNED_CUTOFF, train_file, workdir, labels
    )
    for trained in tuned:
        trained.params = {**trained.params, "grid": grid, "grid_points": len(tried)}
    return out + tuned
