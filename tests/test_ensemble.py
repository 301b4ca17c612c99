"""The served ensemble: the trainer's and the on-device model's probabilities averaged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_CONFIG, per_intent, tiny_banking

import textproj
from textproj import Dataset, ModelFormatError, TrainConfig, load_corpus
from textproj.config import ENSEMBLE_TRAINER_WEIGHT
from textproj.decisions import sigmoid
from textproj.ensemble import EnsembleModel, ensemble_logits, load_ensemble
from textproj.layout import METRICS_NAME, TRAINER_HEADER
from textproj.trainer_model import load_trainer


def _softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


W = ENSEMBLE_TRAINER_WEIGHT


def test_ensemble_logits_give_the_weighted_average_of_the_probabilities() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 5, 4)).astype(np.float32) * 3
    single = ensemble_logits(a, b, multi_label=False)
    assert np.allclose(_softmax(single), W * _softmax(a) + (1 - W) * _softmax(b), atol=1e-6)
    multi = ensemble_logits(a, b, multi_label=True)
    assert np.allclose(sigmoid(multi), W * sigmoid(a) + (1 - W) * sigmoid(b), atol=1e-6)
    sure = np.array([[60.0, -60.0]], dtype=np.float32)  # saturated: still finite logits
    assert np.isfinite(ensemble_logits(sure, sure, multi_label=True)).all()
    assert np.isfinite(ensemble_logits(sure, -sure, multi_label=False)).all()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from textproj.training import train

    out = tmp_path_factory.mktemp("ensemble")
    data = per_intent(load_corpus("banking77", "train"), 6, 40)
    test = per_intent(load_corpus("banking77", "test"), 6, 20)
    train(data, test_data=test, config=TrainConfig(**TINY_CONFIG), output_dir=out, progress=False)
    return out


def test_the_ensemble_serves_the_mean_and_scores_as_training_said(run_dir: Path) -> None:
    ensemble = load_ensemble(run_dir)
    test = per_intent(load_corpus("banking77", "test"), 6, 20)
    proba = ensemble.predict_proba(test.texts)
    trainer = load_trainer(run_dir).predict_proba(test.texts)
    device = textproj.load(run_dir).predict_proba(test.texts)
    assert np.allclose(proba, W * trainer + (1 - W) * device)
    predicted = ensemble.predict(test.texts)
    assert predicted == [ensemble.labels[j] for j in proba.argmax(axis=1)]
    scores = json.loads((run_dir / METRICS_NAME).read_text())["ensemble"]["test"]
    accuracy = np.mean([p == gold for p, gold in zip(predicted, test.labels, strict=True)])
    assert accuracy == pytest.approx(scores["accuracy"], abs=1.5 / len(test))  # numpy vs torch
    with pytest.raises(TypeError, match="wrap it in a list"):
        ensemble.predict_proba("one text")


def test_an_ensemble_of_two_runs_is_refused(run_dir: Path, tmp_path: Path) -> None:
    from textproj.training import train

    other = tmp_path / "other"
    data = per_intent(load_corpus("banking77", "train"), 3, 30)
    train(data, config=TrainConfig(**TINY_CONFIG), output_dir=other, progress=False)
    with pytest.raises(ModelFormatError, match="not of one run"):
        EnsembleModel(load_trainer(run_dir), textproj.load(other))
    missing = tmp_path / "no-trainer"
    shutil.copytree(run_dir, missing)
    (missing / TRAINER_HEADER).unlink()
    with pytest.raises(ModelFormatError, match=TRAINER_HEADER):
        load_ensemble(missing)


def test_a_multi_label_ensemble_keeps_its_own_thresholds(tmp_path: Path) -> None:
    from textproj.training import train

    data = tiny_banking(200)
    labels = [(label, "any") if i % 2 else (label,) for i, label in enumerate(data.labels)]
    config = TrainConfig(**TINY_CONFIG, multi_label=True)
    train(Dataset(data.texts, labels, "multi"), config=config, output_dir=tmp_path, progress=False)
    header = json.loads((tmp_path / TRAINER_HEADER).read_text())
    assert len(header["ensemble_thresholds"]) == len(header["labels"])
    ensemble = load_ensemble(tmp_path)
    assert ensemble.thresholds.tolist() == pytest.approx(header["ensemble_thresholds"])
    proba = ensemble.predict_proba(data.texts[:20])
    expected = [
        [ensemble.labels[j] for j in np.flatnonzero(row >= ensemble.thresholds)] for row in proba
    ]
    assert ensemble.predict(data.texts[:20]) == expected
    assert "ensemble" in json.loads((tmp_path / METRICS_NAME).read_text())


def test_load_ensemble_refuses_an_n_jobs_that_is_no_thread_count_before_reading(
    tmp_path: Path,
) -> None:
    with pytest.raises(textproj.ConfigError) as refused:
        load_ensemble(tmp_path, n_jobs=-2)  # an empty directory: no file is read first
    assert str(refused.value) == "n_jobs must be a positive int, or -1 for every core; got -2"
