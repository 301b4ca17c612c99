"""The training engine's contracts: one step for every entry point, a private random stream,
networks returned ready to predict, data refused before any work, lean files."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import TINY_CONFIG, per_intent, tiny_banking

from textproj import TrainConfig, load_corpus
from textproj.data import Dataset
from textproj.errors import ConfigError, TextprojError
from textproj.layout import MODEL_NAME, TRAINER_WEIGHTS
from textproj.training import split_off_dev, train

TINY = TrainConfig(**TINY_CONFIG)


def test_trainer_inference_does_not_import_the_training_loop() -> None:
    code = "import sys, textproj.trainer_model; print('textproj.training' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_train_returns_networks_in_eval_mode_and_a_classifier() -> None:
    data = tiny_banking(200)
    result = train(data, config=TINY, progress=False)
    assert not result.projection_net.training and not result.trainer_net.training
    clf = result.classifier  # the on-device model, in memory: scores as metrics.json says
    _, dev = split_off_dev(data, TINY.dev_fraction, TINY.seed)
    hits = sum(p == g for p, g in zip(clf.predict(dev.texts), dev.labels, strict=True))
    assert hits / len(dev) == result.metrics["projection"]["dev"]["accuracy"]


def test_train_accepts_texts_and_labels() -> None:
    data = tiny_banking(200)
    result = train(data.texts, data.labels, config=TINY, progress=False)
    assert result.labels == sorted(set(data.labels))  # stratified: every label stays in train
    assert result.metrics["projection"]["dev"]["n"] == 20


@pytest.mark.parametrize(
    ("texts", "labels", "message"),
    [
        (["only one"], ["a"], "1 training example"),
        (["x", "y", "z"], ["a", "a", "a"], "only the label 'a'"),
        ([], [], "0 training example"),
    ],
)
def test_data_that_cannot_train_is_refused_before_work(texts, labels, message, tmp_path) -> None:
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=message) as caught:
        train(Dataset(texts, labels, "given.tsv"), config=TINY, output_dir=out, progress=False)
    assert isinstance(caught.value, TextprojError) and "given.tsv" in str(caught.value)
    assert not out.exists()


def test_output_path_that_is_a_file_is_refused(tmp_path) -> None:
    target = tmp_path / "model"
    target.write_text("keep me")
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        train(tiny_banking(50), config=TINY, output_dir=target, progress=False)
    assert target.read_text() == "keep me"


def test_output_dir_holding_another_run_is_refused_unless_forced(tmp_path) -> None:
    out = tmp_path / "run"
    train(tiny_banking(50), config=TINY, output_dir=out, progress=False)
    first = (out / MODEL_NAME).read_bytes()
    other = dataclasses.replace(TINY, seed=TINY.seed + 1)
    with pytest.raises(
        ConfigError, match=f"{out}: holds another run \\(model.tpn, metrics.json\\)"
    ):
        train(tiny_banking(50), config=other, output_dir=out, progress=False)
    assert (out / MODEL_NAME).read_bytes() == first
    train(tiny_banking(50), config=other, output_dir=out, progress=False, force=True)
    assert (out / MODEL_NAME).read_bytes() != first


def test_dev_split_is_stratified_and_keeps_every_label_in_train() -> None:
    labels = ["big"] * 90 + ["small"] * 9 + ["single"]
    data = Dataset([f"text {i}" for i in range(100)], labels, "x")
    train_part, dev_part = split_off_dev(data, 0.1, seed=0)
    assert len(dev_part) == 10
    assert dev_part.labels.count("big") == 9 and dev_part.labels.count("small") == 1
    assert "single" in train_part.labels and "single" not in dev_part.labels


def test_unseen_dev_labels_warn(tmp_path) -> None:
    data = tiny_banking(120)
    dev = Dataset(data.texts[:5], ["never-in-train"] * 5, "dev.tsv")
    with pytest.warns(UserWarning, match="dev.tsv: 1 label"):
        train(data, dev, config=TINY, progress=False)


def test_stepping_leaves_the_global_random_stream_alone() -> None:
    data = tiny_banking(100)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train(data, config=TINY, progress=False)
    assert torch.equal(torch.rand(3), expected)


def test_spacy_learner_keeps_the_trainers_own_rate_and_the_global_stream() -> None:
    pytest.importorskip("spacy")
    from spacy_component.learner import Learner
    from textproj.config import FeatureConfig

    config = TrainConfig(
        **{**TINY_CONFIG, "learning_rate": 4e-3, "trainer_learning_rate": 1e-2},
        trainer_share=1.0,  # the component's own default: spaCy sets the steps
    )
    torch.manual_seed(7)
    expected = torch.rand(2)
    torch.manual_seed(7)
    learner = Learner(["a", "b"], config, FeatureConfig())
    learner.accumulate(["one text", "another text"], ["a", "b"])
    learner.step(learn_rate=2e-3)  # spaCy's schedule at half the projection network's rate
    assert torch.equal(torch.rand(2), expected)
    rates = [group["lr"] for group in learner.joint.optimiser.param_groups]
    table_rate = config.trainer_table_learning_rate  # the trainer's table has a rate of its own
    assert rates == pytest.approx([table_rate / 2, 5e-3, 2e-3])


def test_multi_label_trainer_predicts_with_its_saved_thresholds(tmp_path) -> None:
    from textproj.trainer_model import load_trainer

    single = per_intent(load_corpus("banking77", "train"), 4, 30)
    pairs = list(zip(single.texts, single.labels, strict=True))
    joined = list(zip(pairs, pairs[15:] + pairs[:15], strict=True))
    texts = single.texts + [f"{a} {b}" for (a, _), (b, _) in joined]
    labels = [(label,) for label in single.labels]
    labels += [tuple(sorted({a, b})) for (_, a), (_, b) in joined]
    config = TrainConfig(**{**TINY_CONFIG, "multi_label": True, "epochs": 3})
    train(Dataset(texts, labels, "multi"), config=config, output_dir=tmp_path, progress=False)
    saved = json.loads((tmp_path / "trainer.json").read_text())["thresholds"]
    trainer = load_trainer(tmp_path)
    assert trainer.thresholds.tolist() == pytest.approx(saved)
    proba = trainer.predict_proba(texts[:8])
    assert not np.allclose(proba.sum(1), 1.0)  # sigmoids, not a softmax
    predicted = trainer.predict(texts[:8])
    chosen = [
        [trainer.labels[j] for j in np.flatnonzero(row >= trainer.thresholds)] for row in proba
    ]
    assert predicted == chosen


def test_trainer_file_is_lean(tiny_models) -> None:
    with np.load(tiny_models["token"] / TRAINER_WEIGHTS, allow_pickle=False) as arrays:
        assert arrays["embedding.weight"].dtype == np.float16
    default = TrainConfig()
    table_bytes = default.trainer_buckets * default.trainer_dim * 2
    assert table_bytes <= 16 * 10**6


def test_small_training_sets_get_more_epochs_and_patience() -> None:
    from textproj.config import EPOCHS, MIN_STEPS

    assert (EPOCHS, MIN_STEPS) == (16, 400)
    config = TrainConfig(batch_size=256, patience=5)
    assert config.schedule(9003) == (36, 16, 5)  # 576 steps already
    steps, epochs, patience = config.schedule(770)  # 4 steps an epoch
    assert (steps, epochs) == (4, 100) and steps * epochs >= 400
    assert patience == 32  # stretched by the same factor (100 / 16), rounded up
    assert TrainConfig(epochs=3).schedule(10) == (1, 3, 5)  # a given number is exact
    assert TrainConfig(min_steps=800).schedule(9003) == (36, 23, 8)  # 828 steps


def test_long_texts_get_more_steps() -> None:
    from textproj.config import LONG_TEXTS_MIN_STEPS, MAX_POOL_MEDIAN_TOKENS, MIN_STEPS

    auto = TrainConfig()
    assert auto.min_steps_for(MAX_POOL_MEDIAN_TOKENS) == MIN_STEPS
    assert auto.min_steps_for(MAX_POOL_MEDIAN_TOKENS + 0.5) == LONG_TEXTS_MIN_STEPS == 800
    assert auto.min_steps_for(0) == MIN_STEPS  # the text design keeps no tokens: median 0
    assert TrainConfig(min_steps=50).min_steps_for(10**6) == 50
    with pytest.raises(ConfigError, match="min_steps must be an int >= 1, got 0"):
        TrainConfig(min_steps=0)


def test_history_follows_the_stretched_schedule() -> None:
    data = tiny_banking(60)
    config = TrainConfig(**{**TINY_CONFIG, "epochs": None, "batch_size": 27, "patience": 99})
    result = train(data, config=config, progress=False)
    assert len(result.metrics["history"]) == config.schedule(54)[1] == 200


def test_long_texts_step_in_token_runs_with_the_whole_batchs_gradient(monkeypatch) -> None:
    from textproj import inputs
    from textproj.config import FeatureConfig
    from textproj.training import JointStep, prepare

    data = tiny_banking(60)
    long_texts = [" ".join([text] * 6) for text in data.texts]  # about 60 tokens each
    data = Dataset(long_texts, data.labels, "long")
    config = TrainConfig(
        **{**TINY_CONFIG, "dropout": 0.0, "token_dropout": 0.0, "trainer_dropout": 0.0}
    )
    prep = prepare(data, None, None, config, FeatureConfig())
    split, index = prep.inputs["train"], np.arange(40)

    monkeypatch.setattr(inputs, "STEP_TOKENS", 200)
    runs = inputs.token_chunks(split, index)
    lengths = np.diff(split.word_offsets)
    assert len(runs) > 5 and np.array_equal(np.concatenate(runs), index)
    assert all(lengths[run].sum() <= 200 or len(run) == 1 for run in runs)

    grads, losses = [], []
    for budget in (200, 10**6):
        monkeypatch.setattr(inputs, "STEP_TOKENS", budget)
        step = JointStep(config, prep.projector.n_bits, len(prep.labels))
        losses.append(step(split, index, apply=False))
        grads.append(
            [p.grad.clone() for net in (step.projection, step.trainer) for p in net.parameters()]
        )
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    for in_runs, at_once in zip(*grads, strict=True):
        torch.testing.assert_close(in_runs, at_once, atol=1e-6, rtol=1e-4)
