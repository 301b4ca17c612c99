"""The saved trainer network loads back and predicts exactly what it did at the end of training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_CONFIG, tiny_banking

from textproj.config import FeatureConfig, TrainConfig
from textproj.corpora import load_corpus
from textproj.inputs import forward_trainer, predict_logits, prepare_inputs
from textproj.model_file import ModelFormatError
from textproj.projector import Projector
from textproj.trainer_model import has_trainer, load_trainer
from textproj.training import split_off_dev


@pytest.mark.parametrize("design", ["text", "token"])
def test_loaded_trainer_matches_training(tiny_models: dict[str, Path], design: str) -> None:
    folder = tiny_models[design]
    trainer = load_trainer(folder)
    metrics = json.loads((folder / "metrics.json").read_text())
    dev = load_corpus("banking77", "dev")
    proba = trainer.predict_proba(dev.texts[:50])
    assert proba.shape == (50, len(metrics["labels"]))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert trainer.labels == metrics["labels"]
    assert trainer.predict(dev.texts[:5]) == [trainer.labels[i] for i in proba[:5].argmax(1)]
    assert trainer.n_bytes == (folder / "trainer.npz").stat().st_size


def test_trainer_scores_match_metrics(tiny_models: dict[str, Path]) -> None:
    folder = tiny_models["token"]
    trainer = load_trainer(folder)
    metrics = json.loads((folder / "metrics.json").read_text())
    config = trainer.config
    _, dev = split_off_dev(tiny_banking(), config.dev_fraction, config.seed)
    predicted = trainer.predict(dev.texts)
    accuracy = np.mean([p == g for p, g in zip(predicted, dev.labels, strict=True)])
    assert accuracy == pytest.approx(metrics["trainer"]["dev"]["accuracy"])


def test_empty_and_odd_texts(tiny_models: dict[str, Path]) -> None:
    trainer = load_trainer(tiny_models["text"])
    texts = ["", "   ", "🙂", "x" * 5000]
    proba = trainer.predict_proba(texts)
    assert proba.shape == (4, len(trainer.labels))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)  # a softmax per text
    np.testing.assert_array_equal(proba[0], proba[1])  # no features either way: one answer
    assert trainer.predict(texts) == [trainer.labels[j] for j in proba.argmax(axis=1)]
    with pytest.raises(TypeError, match="wrap it in a list"):
        trainer.predict_proba("one text")


def test_missing_and_damaged_files(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    assert has_trainer(tiny_models["text"])
    assert not has_trainer(tmp_path)
    with pytest.raises(ModelFormatError, match=r"trainer\.json: cannot read"):
        load_trainer(tmp_path)
    (tmp_path / "trainer.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="bad trainer header"):
        load_trainer(tmp_path)
    header = json.loads((tiny_models["text"] / "trainer.json").read_text())
    (tmp_path / "trainer.json").write_text(json.dumps(header))
    with pytest.raises(ModelFormatError, match=r"trainer\.npz: cannot read"):
        load_trainer(tmp_path)
    np.savez(tmp_path / "trainer.npz", **{"embedding.weight": np.zeros((3, 3), np.float32)})
    with pytest.raises(ModelFormatError, match=r"trainer\.npz: does not match"):
        load_trainer(tmp_path)


@pytest.fixture(scope="module")
def own_rate_run(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """A tiny run whose trainer has its own table rate and dropout, saved."""
    from textproj.training import train

    out = tmp_path_factory.mktemp("tiny-trainer-own")
    config = TrainConfig(**TINY_CONFIG, trainer_table_learning_rate=0.05, trainer_dropout=0.5)
    return train(tiny_banking(), config=config, output_dir=out, progress=False), out


def test_loaded_trainer_gives_the_probabilities_training_scored(own_rate_run: tuple) -> None:
    result, folder = own_rate_run
    loaded = load_trainer(folder)
    config = loaded.config
    assert (config.trainer_table_learning_rate, config.trainer_dropout) == (0.05, 0.5)
    _, dev = split_off_dev(tiny_banking(), config.dev_fraction, config.seed)
    projector = Projector(*config.projection_shape, features=FeatureConfig(), seed=config.seed)
    targets = np.zeros(len(dev), dtype=np.int64)
    split = prepare_inputs(dev.texts, targets, projector, config)  # as training scored dev
    exp = np.exp(predict_logits(result.trainer_net, split, forward_trainer))
    np.testing.assert_allclose(
        loaded.predict_proba(dev.texts), exp / exp.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-6
    )
    hits = sum(p == g for p, g in zip(loaded.predict(dev.texts), dev.labels, strict=True))
    assert hits / len(dev) == pytest.approx(result.metrics["trainer"]["dev"]["accuracy"])


def test_trainer_saved_before_its_own_rate_and_dropout_still_loads(
    own_rate_run: tuple, tmp_path: Path
) -> None:
    _, folder = own_rate_run
    header = json.loads((folder / "trainer.json").read_text())
    for key in ("trainer_table_learning_rate", "trainer_dropout"):
        del header["train_config"][key]
    (tmp_path / "trainer.json").write_text(json.dumps(header))
    (tmp_path / "trainer.npz").write_bytes((folder / "trainer.npz").read_bytes())
    old, new = load_trainer(tmp_path), load_trainer(folder)
    defaults = TrainConfig()  # missing keys take today's defaults (they only shape training)
    assert old.config.trainer_dropout == defaults.trainer_dropout
    assert old.config.trainer_table_learning_rate == defaults.trainer_table_learning_rate
    texts = load_corpus("banking77", "dev").texts[:20]
    np.testing.assert_array_equal(old.predict_proba(texts), new.predict_proba(texts))
