"""Joint training on small slices: the networks learn, the loss is the paper's, runs repeat."""

from __future__ import annotations

import dataclasses
import errno
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_CONFIG, per_intent

from textproj import fsio, load
from textproj.config import (
    LONG_TEXTS_MIN_STEPS,
    MAX_POOL_MEDIAN_TOKENS,
    MIN_STEPS,
    PROJECTION_DEFAULTS,
    SMALL_DATA_CONSISTENCY,
    SMALL_DATA_TEXTS,
    FeatureConfig,
    TrainConfig,
)
from textproj.corpora import load_corpus
from textproj.data import Dataset, write_dataset
from textproj.errors import CheckpointError, ConfigError, DataError
from textproj.features import tokens
from textproj.inputs import ragged_positions
from textproj.layout import CHECKPOINT_NAME, MODEL_NAME
from textproj.model_file import describe_model
from textproj.objective import consistency_loss, joint_loss
from textproj.training import split_off_dev, train

# Tiny networks for small slices; no label smoothing, which puts a floor under the loss that
# "the loss falls by half" would otherwise have to allow for.
SMALL = dict(
    label_smoothing=0.0,
    epochs=8,
    patience=8,
    batch_size=32,
    trainer_buckets=2**14,
    trainer_dim=32,
    trainer_hidden=64,
    bottleneck=32,
    filters=32,
    hidden=(64,),
    learning_rate=5e-3,
)


def _slice(split: str, labels: int, per_label: int) -> Dataset:
    return per_intent(load_corpus("banking77", split), labels, per_label)


@pytest.fixture(scope="module")
def small_data() -> tuple[Dataset, Dataset, Dataset]:
    return _slice("train", 6, 40), _slice("dev", 6, 10), _slice("test", 6, 20)


@pytest.mark.parametrize(
    ("design", "trainer", "max_pool", "mean_pool"),
    [
        ("token", "ffn", False, False),
        ("text", "ffn", False, False),
        ("token", "lstm", False, False),
        ("token", "ffn", True, False),
        ("token", "ffn", False, True),
    ],
)
def test_networks_learn(
    small_data, design: str, trainer: str, max_pool: bool, mean_pool: bool
) -> None:
    train_data, dev_data, test_data = small_data
    # the trainer trains over the whole run, so the joint loss holds both networks' learning
    pools = {"max_pool": max_pool, "mean_pool": mean_pool}
    config = TrainConfig(design=design, trainer=trainer, trainer_share=1.0, **pools, **SMALL)
    result = train(train_data, dev_data, test_data, config=config, progress=False)
    history = result.metrics["history"]
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    chance = 1 / 6
    assert result.metrics["projection"]["test"]["accuracy"] > 3 * chance
    assert result.metrics["trainer"]["test"]["accuracy"] > 3 * chance
    assert result.metrics["projection"]["test"]["n"] == len(test_data)
    assert set(result.labels) == set(train_data.labels)
    # the on-device model in memory scores the quantized network's test accuracy
    device = np.array(result.classifier.predict(test_data.texts)) == np.array(test_data.labels)
    measured = result.metrics["projection"]["test"]["accuracy"]
    assert device.mean() == pytest.approx(measured, abs=1.5 / len(test_data))  # a near tie
    for key, on in pools.items():
        assert result.classifier.header["network"].get(key, False) == on


def _long(data: Dataset, words: int) -> Dataset:
    """Each text followed by filler words, so the median text has more than ``words`` tokens."""
    filler = " ".join(["etc"] * words)
    return dataclasses.replace(data, texts=[f"{text} {filler}" for text in data.texts])


@pytest.mark.parametrize("given", [None, True, False])
def test_pooling_follows_the_texts_length_unless_given(small_data, given) -> None:
    train_data, dev_data, _ = small_data
    config = TrainConfig(max_pool=given, **{**SMALL, "epochs": 1})
    for data, short in ((train_data, True), (_long(train_data, MAX_POOL_MEDIAN_TOKENS), False)):
        result = train(data, dev_data, config=config, progress=False)
        network, trained = result.classifier.header["network"], result.metrics["config"]["train"]
        expected = {"max_pool": short if given is None else given, "mean_pool": not short}
        for key, on in expected.items():
            assert network.get(key, False) is on and trained[key] is on, (key, short)
        assert trained["min_steps"] == (MIN_STEPS if short else LONG_TEXTS_MIN_STEPS)


def test_pooling_rule_is_the_median_token_count() -> None:
    auto = TrainConfig()
    assert auto.max_pool is auto.mean_pool is None
    short, long = {"max_pool": True, "mean_pool": False}, {"max_pool": False, "mean_pool": True}
    assert auto.pooling_for(MAX_POOL_MEDIAN_TOKENS) == short
    assert auto.pooling_for(MAX_POOL_MEDIAN_TOKENS + 0.5) == long
    none = {"max_pool": False, "mean_pool": False}
    assert TrainConfig(design="text").pooling_for(1) == none  # no token windows to pool
    assert TrainConfig(design="text").pooling_for(10**6) == none
    both = TrainConfig(max_pool=True, mean_pool=True)
    assert both.pooling_for(10**6) == both.pooling_for(0) == {"max_pool": True, "mean_pool": True}
    assert TrainConfig(max_pool=False, mean_pool=False).pooling_for(0) == none
    for key in ("max_pool", "mean_pool"):
        with pytest.raises(ConfigError, match=f"{key} must be true, false or null, got 1"):
            TrainConfig(**{key: 1})


def test_same_seed_gives_identical_model(small_data) -> None:
    train_data, dev_data, _ = small_data
    config = TrainConfig(**{**SMALL, "epochs": 2})
    first = train(train_data, dev_data, config=config, progress=False)
    second = train(train_data, dev_data, config=config, progress=False)
    assert first.tensors.keys() == second.tensors.keys()
    for name in first.tensors:
        np.testing.assert_array_equal(first.tensors[name], second.tensors[name])
    other = train(
        train_data,
        dev_data,
        config=TrainConfig(**{**SMALL, "epochs": 2, "seed": 1}),
        progress=False,
    )
    assert any(
        not np.array_equal(first.tensors[name], other.tensors[name]) for name in first.tensors
    )


def test_distillation_term_stops_gradient_at_trainer() -> None:
    torch.manual_seed(0)
    trainer_logits = torch.randn(4, 3, requires_grad=True)
    projection_logits = torch.randn(4, 3, requires_grad=True)
    targets = torch.tensor([0, 1, 2, 0])
    only_distill = TrainConfig(lambda_trainer=0.0, lambda_labels=0.0, lambda_distill=1.0)
    joint_loss(trainer_logits, [projection_logits], targets, only_distill).backward()
    assert trainer_logits.grad is None or torch.all(trainer_logits.grad == 0)
    assert projection_logits.grad.abs().sum() > 0

    trainer_logits.grad = None
    through = TrainConfig(
        lambda_trainer=0.0, lambda_labels=0.0, lambda_distill=1.0, distill_to_trainer=True
    )
    joint_loss(trainer_logits, [projection_logits], targets, through).backward()
    assert trainer_logits.grad.abs().sum() > 0


def test_joint_loss_is_the_weighted_sum_of_three_terms() -> None:
    torch.manual_seed(1)
    t, p = torch.randn(5, 4), torch.randn(5, 4)
    y = torch.tensor([0, 1, 2, 3, 0])
    ce = torch.nn.functional.cross_entropy
    soft = torch.softmax(t / 2.0, dim=1)
    distill = -(soft * torch.log_softmax(p / 2.0, dim=1)).sum(1).mean() * 4.0
    config = TrainConfig(
        lambda_trainer=0.5,
        lambda_distill=0.3,
        lambda_labels=2.0,
        temperature=2.0,
        label_smoothing=0.0,
    )
    expected = 0.5 * ce(t, y) + 0.3 * distill + 2.0 * ce(p, y)
    assert torch.isclose(joint_loss(t, [p], y, config), expected)
    alone = TrainConfig(lambda_distill=0.0, label_smoothing=0.0)
    assert torch.isclose(joint_loss(t, [p], y, alone), ce(t, y) + ce(p, y))
    # label smoothing s mixes the projection's label term with the mean over all labels
    smoothed = TrainConfig(lambda_distill=0.0, label_smoothing=0.2)
    uniform = -torch.log_softmax(p, dim=1).mean(1).mean()
    assert torch.isclose(joint_loss(t, [p], y, smoothed), ce(t, y) + 0.8 * ce(p, y) + 0.2 * uniform)


def test_consistency_loss_is_the_mean_of_both_kl_directions() -> None:
    torch.manual_seed(2)
    a, b = torch.randn(6, 5), torch.randn(6, 5)
    log_a, log_b = torch.log_softmax(a, dim=1), torch.log_softmax(b, dim=1)
    kl = torch.nn.functional.kl_div  # kl_div(log q, log p, log_target=True) = KL(p || q)
    both = kl(log_b, log_a, reduction="batchmean", log_target=True)
    both = both + kl(log_a, log_b, reduction="batchmean", log_target=True)
    assert torch.isclose(consistency_loss(a, b, False), both / 2)
    assert torch.isclose(consistency_loss(a, b, False), consistency_loss(b, a, False))
    assert consistency_loss(a, a, False) == 0 and consistency_loss(a, a, True) == 0
    p, q = torch.sigmoid(a), torch.sigmoid(b)
    bernoulli = p * torch.log(p / q) + (1 - p) * torch.log((1 - p) / (1 - q))
    bernoulli = bernoulli + q * torch.log(q / p) + (1 - q) * torch.log((1 - q) / (1 - p))
    assert torch.isclose(consistency_loss(a, b, True), bernoulli.sum(1).mean() / 2)


def test_joint_loss_with_two_draws_averages_them_and_adds_their_divergence() -> None:
    torch.manual_seed(3)
    t, p, q = torch.randn(5, 4), torch.randn(5, 4), torch.randn(5, 4)
    y = torch.tensor([0, 1, 2, 3, 0])
    config = TrainConfig(lambda_distill=0.3, label_smoothing=0.1)
    mean = (joint_loss(t, [p], y, config) + joint_loss(t, [q], y, config)) / 2
    assert torch.isclose(joint_loss(t, [p, q], y, config), mean)
    expected = mean + 0.7 * consistency_loss(p, q, False)
    assert torch.isclose(joint_loss(t, [p, q], y, config, consistency=0.7), expected)


def test_small_training_sets_get_two_dropout_draws_by_default() -> None:
    config = TrainConfig(consistency=None)
    assert config.consistency_for(SMALL_DATA_TEXTS - 1) == SMALL_DATA_CONSISTENCY
    assert config.consistency_for(SMALL_DATA_TEXTS) == 0
    assert config.consistency_for(10, unlabeled=True) == 0  # the transfer texts regularise
    assert TrainConfig(consistency=0.5).consistency_for(10**6) == 0.5
    with pytest.raises(
        ConfigError, match="consistency must be a finite number >= 0 or null, got -1"
    ):
        TrainConfig(consistency=-1)
    data = per_intent(load_corpus("banking77", "train"), 4, 30)
    runs = {
        alpha: train(
            data, config=TrainConfig(**{**TINY_CONFIG, "consistency": alpha}), progress=False
        )
        for alpha in (None, 1.0, 0)
    }
    assert runs[None].metrics["consistency"] == SMALL_DATA_CONSISTENCY == 1.0
    assert runs[0].metrics["consistency"] == 0
    for name, tensor in runs[None].tensors.items():  # the default is the explicit weight ...
        assert np.array_equal(tensor, runs[1.0].tensors[name])
    assert any(  # ... and two draws train another network than one
        not np.array_equal(tensor, runs[0].tensors[name])
        for name, tensor in runs[None].tensors.items()
    )
    default = TrainConfig(**{**TINY_CONFIG, "consistency": None})
    with_unlabeled = train(data, config=default, progress=False, unlabeled=["an unlabelled text"])
    assert with_unlabeled.metrics["consistency"] == 0


def test_dev_split_is_deterministic_and_disjoint() -> None:
    data = Dataset([f"text {i}" for i in range(100)], [str(i % 3) for i in range(100)], "x")
    train_a, dev_a = split_off_dev(data, 0.1, seed=3)
    train_b, dev_b = split_off_dev(data, 0.1, seed=3)
    assert dev_a.texts == dev_b.texts and train_a.texts == train_b.texts
    assert len(dev_a) == 10 and len(train_a) == 90
    assert not set(dev_a.texts) & set(train_a.texts)
    assert split_off_dev(data, 0.1, seed=4)[1].texts != dev_a.texts


def test_too_few_examples_for_a_dev_split_are_refused_before_training() -> None:
    one_each = Dataset(["hello there", "bye now"], ["greet", "leave"], "a.csv")
    with pytest.raises(ConfigError) as refused:
        train(one_each, None, config=TrainConfig(**SMALL), progress=False)
    assert str(refused.value) == (
        "a.csv: 2 training examples leave none for a dev split (every label keeps one for "
        "training); give a dev set (dev_data) or more examples"
    )
    train_part, dev_part = split_off_dev(Dataset(["a", "b", "c"], ["x", "y", "x"], "b"), 0.1, 0)
    assert (len(train_part), dev_part.labels) == (2, ["x"])  # one spare text makes a dev split


def test_train_reads_data_files_and_pairs_texts_with_labels(monkeypatch, tmp_path) -> None:
    import textproj.training as training

    seen = []
    monkeypatch.setattr(training, "_train", lambda *args: seen.append(args[:3] + args[12:13]))
    rows = Dataset(["good", "bad", "fine"], ["pos", "neg", "pos"], "rows")
    write_dataset(rows, tmp_path / "train.csv")
    write_dataset(Dataset(["meh"], ["neg"], "dev"), tmp_path / "dev.jsonl")
    (tmp_path / "more.txt").write_text("great\nawful\n", encoding="utf-8")
    train(tmp_path / "train.csv", str(tmp_path / "dev.jsonl"), progress=False)
    texts, labels = ["a b", "c d"], ["x", "y"]
    train(texts, labels, tmp_path / "train.csv", unlabeled=tmp_path / "more.txt", progress=False)
    (train_a, dev_a, test_a, _), (train_b, dev_b, test_b, unlabeled) = seen
    assert (train_a.texts, train_a.labels) == (rows.texts, rows.labels)
    assert (dev_a.texts, dev_a.labels, test_a) == (["meh"], ["neg"], None)
    assert (train_b.texts, train_b.labels, dev_b) == (texts, labels, None)
    assert test_b.texts == rows.texts and unlabeled == ["great", "awful"]
    with pytest.raises(TypeError, match="labels is one str; give a list of labels"):
        train(["a", "b"], "xy", progress=False)


ROWS = Dataset(["good", "bad"], ["pos", "neg"], "rows")
LISTS = "give texts and labels as lists: train(texts, labels)"
A_DATASET = "give a Dataset(texts, labels, source)"
A_LIST = "give the texts as a list: train(..., unlabeled=texts)"


def as_a_path(data: str, name: str, how: str) -> str:
    """The error for a str ``data`` given as ``name`` that names no file."""
    return f"{data}: no such file ({name} as a str is read as a file's path; {how})"


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        pytest.param(("abc", "xyz"), {}, as_a_path("abc", "train_data", LISTS), id="str-train"),
        pytest.param(
            ("abc",), {"stream_cache": "cache"}, as_a_path("abc", "train_data", LISTS),
            id="str-train-streamed",
        ),
        pytest.param(
            ("train.tsv", "xyz"), {}, as_a_path("xyz", "dev_data", A_DATASET), id="str-dev"
        ),
        pytest.param(
            ("train.tsv", None, "t.tsv"), {}, as_a_path("t.tsv", "test_data", A_DATASET),
            id="str-test",
        ),
        pytest.param(
            (["good", "bad"], ["pos", "neg"]), {"unlabeled": "more texts"},
            as_a_path("more texts", "unlabeled", A_LIST), id="str-unlabeled-of-texts",
        ),
        pytest.param((Path("abc"),), {}, "abc: no such file", id="Path-train"),
        pytest.param((ROWS, Path("abc")), {}, "abc: no such file", id="Path-dev"),
        pytest.param((ROWS, None, Path("abc")), {}, "abc: no such file", id="Path-test"),
        pytest.param((ROWS,), {"unlabeled": Path("abc")}, "abc: no such file", id="Path-unlabeled"),
        pytest.param(
            (Path("folder"),), {}, "folder: is a directory, not a data file", id="dir-train"
        ),
        pytest.param(
            ("folder.tsv",), {}, "folder.tsv: is a directory, not a data file", id="dir-str-train"
        ),
        pytest.param(
            (ROWS,), {"unlabeled": "folder"}, "folder: is a directory, not a data file",
            id="dir-unlabeled",
        ),
    ],
)  # fmt: skip
def test_a_missing_data_file_is_named_as_missing_before_any_work(
    args: tuple, kwargs: dict, message: str, monkeypatch, tmp_path
) -> None:
    """``train("abc", "xyz")`` and ``train(Path("abc"))`` blamed the extension of "abc"; a str
    naming no file also says how to give texts."""
    import textproj.training as training

    monkeypatch.setattr(training, "_train", lambda *args: pytest.fail("training started"))
    monkeypatch.chdir(tmp_path)
    write_dataset(ROWS, tmp_path / "train.tsv")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder.tsv").mkdir()
    with pytest.raises(DataError) as caught:
        train(*args, output_dir="out", progress=False, **kwargs)
    assert str(caught.value) == message
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_an_existing_file_keeps_the_readers_extension_error(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "abc").write_text("good\tpos\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"^abc: unknown file extension; supported: "):
        train("abc", progress=False)


def test_a_label_with_a_lone_surrogate_is_refused_before_training(tmp_path) -> None:
    texts = ["good film", "bad film", "fine film", "awful film"]
    rows = Dataset(texts, ["pos", "neg\udc80", "pos", "neg\udc80"], "rows")
    out = tmp_path / "out"
    with pytest.raises(ConfigError) as caught:  # it crashed writing model.tpn, after training
        train(rows, config=TrainConfig(**TINY_CONFIG), output_dir=out, progress=False)
    assert str(caught.value) == (
        "rows:train: label 'neg\\udc80' holds a lone surrogate (U+DC80, half of a UTF-16 pair), "
        "which UTF-8 cannot encode; a model file could not store it"
    )
    assert not out.exists()


def test_ragged_positions_gathers_rows_of_chosen_items() -> None:
    offsets = np.array([0, 2, 2, 5, 6])
    positions, lengths = ragged_positions(offsets, np.array([2, 0, 1, 3]))
    assert positions.tolist() == [2, 3, 4, 0, 1, 5]
    assert lengths.tolist() == [3, 2, 0, 1]


def test_unseen_labels_count_as_errors(small_data) -> None:
    train_data, dev_data, test_data = small_data
    odd = Dataset(test_data.texts[:10], ["never-seen"] * 10, "odd")
    result = train(
        train_data, dev_data, odd, config=TrainConfig(**{**SMALL, "epochs": 1}), progress=False
    )
    assert result.metrics["projection"]["test"]["accuracy"] == 0.0


def test_texts_reaching_the_token_cap_are_counted_and_warned_of(small_data) -> None:
    train_data, dev_data, _ = small_data
    config = TrainConfig(**{**SMALL, "epochs": 1})
    cap = 8
    at_cap = sum(len(tokens(text)) >= cap for text in train_data.texts)
    assert 0 < at_cap < len(train_data)
    with pytest.warns(
        UserWarning,
        match=rf"{at_cap} of {len(train_data)} training texts \(\d+%\) "
        rf"reach the {cap}-token cap; no token past it is read \(FeatureConfig.max_tokens\)$",
    ):
        capped = train(
            train_data, dev_data, config=config, features=FeatureConfig(max_tokens=cap),
            progress=False,
        )  # fmt: skip
    assert capped.metrics["texts_at_token_cap"] == at_cap
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default cap: no text of this slice reaches it
        result = train(train_data, dev_data, config=config, progress=False)
    assert result.metrics["texts_at_token_cap"] == 0
    text_design = train(
        train_data, dev_data, config=dataclasses.replace(config, design="text"), progress=False
    )
    assert text_design.metrics["texts_at_token_cap"] is None  # its inputs keep no tokens


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"dropout": "0.2"}, "TrainConfig.dropout must be a number, got '0.2'"),
        ({"temperature": None}, "TrainConfig.temperature must be a number, got None"),
        ({"lambda_distill": True}, "TrainConfig.lambda_distill must be a number, got True"),
        ({"trainer_dropout": "x"}, "TrainConfig.trainer_dropout must be a number or null, got 'x'"),
        ({"multi_label": "yes"}, "TrainConfig.multi_label must be true or false, got 'yes'"),
        ({"distill_to_trainer": 1}, "TrainConfig.distill_to_trainer must be true or false, got 1"),
    ],
)
def test_a_config_value_of_the_wrong_kind_is_refused_by_name(changes: dict, message: str) -> None:
    """A string once failed a range check with a TypeError, and True passed one as 1."""
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        TrainConfig(**changes)


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="design"):
        TrainConfig(design="rnn")
    with pytest.raises(ValueError, match="dev_fraction"):
        TrainConfig(dev_fraction=1.5)
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\)"):
        TrainConfig(label_smoothing=1.0)
    with pytest.raises(ValueError, match=r"trainer_dropout must be in \[0, 1\)"):
        TrainConfig(trainer_dropout=1.0)
    with pytest.raises(ValueError, match=r"trainer_share must be in \(0, 1\], got 0"):
        TrainConfig(trainer_share=0.0)
    with pytest.raises(ValueError, match=r"trainer_share must be a number, got None"):
        TrainConfig(trainer_share=None)
    assert TrainConfig.from_dict({"trainer_share": None}).trainer_share == 1  # an older file
    with pytest.raises(ValueError, match="trainer_table_learning_rate must be > 0"):
        TrainConfig(trainer_table_learning_rate=0.0)
    for field in ("learning_rate", "temperature", "lambda_distill", "weight_decay"):
        for value in (math.inf, math.nan):
            with pytest.raises(ConfigError, match=rf"TrainConfig\.{field} must be .* finite"):
                TrainConfig(**{field: value})
    assert TrainConfig.from_dict(TrainConfig(hidden=(8, 4)).to_dict()) == TrainConfig(hidden=(8, 4))
    for bits in (5, 4.0, "4"):
        with pytest.raises(ValueError, match=r"weight_bits must be one of \(8, 4\)"):
            TrainConfig(weight_bits=bits)


def test_four_bit_weights_are_stored_as_int4(small_data, tmp_path) -> None:
    """weight_bits=4: the written model.tpn holds every layer weight as int4 (levels -7..7, half
    the bytes of the 8-bit run's) and predicts as the run's in-memory classifier."""
    train_data, dev_data, _ = small_data
    sizes, weight_bytes = {}, {}
    for bits in (8, 4):
        out = tmp_path / f"bits{bits}"
        config = TrainConfig(**{**SMALL, "epochs": 2, "weight_bits": bits})
        result = train(train_data, dev_data, config=config, output_dir=out, progress=False)
        raw = (out / MODEL_NAME).read_bytes()
        assert result.model_bytes() == raw and result.metrics["model_bytes"] == len(raw)
        table = describe_model(out / MODEL_NAME)["tensors"]
        weights = [t for t in table if t["name"].endswith(".weight")]
        assert {t["dtype"] for t in weights} == {"int4" if bits == 4 else "int8"}
        assert result.int4 == ({t["name"] for t in weights} if bits == 4 else set())
        assert (
            max(int(np.abs(result.tensors[t["name"]]).max()) for t in weights)
            == 2 ** (bits - 1) - 1
        )
        texts = dev_data.texts[:20]
        assert load(out).predict(texts) == result.classifier.predict(texts)
        sizes[bits] = len(raw)
        weight_bytes[bits] = sum(t["bytes"] for t in weights)
    halves = sum(-(-t.size // 2) for n, t in result.tensors.items() if n.endswith(".weight"))
    assert weight_bytes[4] == halves and weight_bytes[8] // 2 <= halves <= weight_bytes[8] // 2 + 8
    assert sizes[8] - sizes[4] >= weight_bytes[8] - halves - 64  # (header lengths may differ)


def test_on_epoch_receives_each_history_row(small_data) -> None:
    train_data, dev_data, _ = small_data
    rows: list[dict] = []
    result = train(
        train_data, dev_data, config=TrainConfig(**SMALL), progress=False, on_epoch=rows.append
    )
    assert rows == result.metrics["history"]
    assert [row["epoch"] for row in rows] == list(range(1, len(rows) + 1))
    assert set(rows[0]) == {"epoch", "loss", "dev_projection", "dev_trainer"}


class Interrupt(Exception):
    """Raised from on_epoch to stop a run as a kill would."""


def _interrupt_after(epoch: int):
    def on_epoch(row: dict) -> None:
        if row["epoch"] == epoch:
            raise Interrupt

    return on_epoch


def test_resume_gives_the_model_of_an_uninterrupted_run(small_data, tmp_path) -> None:
    train_data, dev_data, test_data = small_data
    config = TrainConfig(**{**SMALL, "epochs": 4})
    whole = train(
        train_data, dev_data, test_data, config=config, output_dir=tmp_path / "a", progress=False
    )
    assert not (tmp_path / "a" / CHECKPOINT_NAME).exists()  # removed once the run completes
    with pytest.raises(Interrupt):
        train(
            train_data, dev_data, test_data, config=config, output_dir=tmp_path / "b",
            progress=False, on_epoch=_interrupt_after(2), checkpoint_seconds=0,
        )  # fmt: skip
    assert (tmp_path / "b" / CHECKPOINT_NAME).exists()
    assert not (tmp_path / "b" / MODEL_NAME).exists()
    with pytest.raises(Interrupt):  # by default the first checkpoint waits for 30 s of training
        train(
            train_data, dev_data, test_data, config=config, output_dir=tmp_path / "c",
            progress=False, on_epoch=_interrupt_after(2),
        )  # fmt: skip
    assert not (tmp_path / "c" / CHECKPOINT_NAME).exists()
    rows: list[dict] = []
    resumed = train(
        train_data, dev_data, test_data, config=config, output_dir=tmp_path / "b",
        progress=False, resume=True, on_epoch=rows.append,
    )  # fmt: skip
    assert [row["epoch"] for row in rows] == [3, 4]
    assert (tmp_path / "b" / MODEL_NAME).read_bytes() == (tmp_path / "a" / MODEL_NAME).read_bytes()
    assert resumed.metrics["history"] == whole.metrics["history"]


def test_a_failed_save_keeps_the_checkpoint_and_leaves_no_staging(
    small_data, tmp_path, monkeypatch
) -> None:
    train_data, dev_data, test_data = small_data
    config = TrainConfig(**{**SMALL, "epochs": 2})
    out = tmp_path / "run"
    with pytest.raises(Interrupt):
        train(
            train_data, dev_data, test_data, config=config, output_dir=out,
            progress=False, on_epoch=_interrupt_after(1), checkpoint_seconds=0,
        )  # fmt: skip
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    assert CHECKPOINT_NAME in before

    def disk_full(path, data) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(fsio, "write_json", disk_full)
        with pytest.raises(OSError, match="No space left on device"):
            train(
                train_data, dev_data, test_data, config=config, output_dir=out,
                progress=False, resume=True,
            )  # fmt: skip
    assert [path.name for path in tmp_path.iterdir()] == ["run"]
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    train(
        train_data, dev_data, test_data, config=config, output_dir=out,
        progress=False, resume=True,
    )  # fmt: skip
    assert (out / MODEL_NAME).exists() and not (out / CHECKPOINT_NAME).exists()


def test_a_trainer_share_freezes_the_trainer_at_its_best_and_resumes_alike(
    small_data, tmp_path
) -> None:
    train_data, dev_data, test_data = small_data
    config = TrainConfig(**{**SMALL, "epochs": 4, "patience": 4, "trainer_share": 0.5})
    whole = train(
        train_data, dev_data, test_data, config=config, output_dir=tmp_path / "a", progress=False
    )
    trainer_dev = [row["dev_trainer"] for row in whole.metrics["history"]]
    assert len(trainer_dev) == 4
    assert trainer_dev[2] == trainer_dev[3] == max(trainer_dev[:2])  # frozen after epoch 2
    assert whole.metrics["best_epoch"]["trainer"] <= 2
    with pytest.raises(Interrupt):  # interrupted once frozen, the resume stays frozen
        train(
            train_data, dev_data, test_data, config=config, output_dir=tmp_path / "b",
            progress=False, on_epoch=_interrupt_after(3), checkpoint_seconds=0,
        )  # fmt: skip
    resumed = train(
        train_data, dev_data, test_data, config=config, output_dir=tmp_path / "b",
        progress=False, resume=True,
    )  # fmt: skip
    assert (tmp_path / "b" / MODEL_NAME).read_bytes() == (tmp_path / "a" / MODEL_NAME).read_bytes()
    assert resumed.metrics["history"] == whole.metrics["history"]


def test_resume_refuses_other_data_or_config(small_data, tmp_path) -> None:
    train_data, dev_data, _ = small_data
    config = TrainConfig(**{**SMALL, "epochs": 3})
    with pytest.raises(Interrupt):
        train(
            train_data, dev_data, config=config, output_dir=tmp_path, progress=False,
            on_epoch=_interrupt_after(1), checkpoint_seconds=0,
        )  # fmt: skip
    other_config = TrainConfig(**{**SMALL, "epochs": 3, "seed": 5})
    with pytest.raises(ValueError, match="training options differ from the interrupted run's;"):
        train(train_data, dev_data, config=other_config, output_dir=tmp_path, resume=True)
    fewer = Dataset(train_data.texts[1:], train_data.labels[1:], "fewer")
    with pytest.raises(ValueError, match=r"the data differ from the interrupted run's \(a data"):
        train(fewer, dev_data, config=config, output_dir=tmp_path, resume=True)
    with pytest.raises(ValueError, match="no checkpoint to resume"):
        train(train_data, dev_data, config=config, output_dir=tmp_path / "none", resume=True)


def test_resume_refuses_a_checkpoint_whose_default_shape_has_changed(
    small_data, tmp_path, monkeypatch
) -> None:
    train_data, dev_data, _ = small_data
    config = TrainConfig(**{**SMALL, "epochs": 3, "num_projections": None})
    monkeypatch.setitem(PROJECTION_DEFAULTS, "token", (4, 8))  # an older version's default
    with pytest.raises(Interrupt):
        train(
            train_data, dev_data, config=config, output_dir=tmp_path, progress=False,
            on_epoch=_interrupt_after(1), checkpoint_seconds=0,
        )  # fmt: skip
    monkeypatch.setitem(PROJECTION_DEFAULTS, "token", (6, 8))
    with pytest.raises(CheckpointError, match=r"networks' shapes differ .* cannot resume$"):
        train(train_data, dev_data, config=config, output_dir=tmp_path, resume=True)


def _multi_label_slice(split: str, per_label: int) -> Dataset:
    """Each banking77 text alone (one label) and joined to a text of another intent (both)."""
    single = _slice(split, 6, per_label)
    texts, labels = list(single.texts), [(label,) for label in single.labels]
    shift = len(single) // 2 + 1
    for i, (text, label) in enumerate(zip(single.texts, single.labels, strict=True)):
        j = (i + shift) % len(single)
        if single.labels[j] != label:
            texts.append(f"{text} {single.texts[j]}")
            labels.append(tuple(sorted({label, single.labels[j]})))
    return Dataset(texts, labels, f"multi-{split}")


def test_multi_label_learns_and_ships_thresholds(tmp_path) -> None:
    train_data, dev_data = _multi_label_slice("train", 60), _multi_label_slice("dev", 10)
    config = TrainConfig(**{**SMALL, "multi_label": True, "epochs": 10, "patience": 10})
    result = train(train_data, dev_data, config=config, output_dir=tmp_path, progress=False)
    scores = result.metrics["projection"]["dev"]
    assert set(scores) == {"accuracy", "micro_f1", "macro_f1", "n"}
    assert scores["micro_f1"] > 0.7  # always predicting the two most common labels: < 0.4
    assert result.metrics["trainer"]["dev"]["micro_f1"] > 0.7
    classifier = load(tmp_path / MODEL_NAME)
    assert classifier.multi_label
    assert classifier.thresholds.tolist() == pytest.approx(result.header["thresholds"])
    predicted = classifier.predict(dev_data.texts)
    assert all(isinstance(label_set, list) for label_set in predicted)
    assert any(len(label_set) == 2 for label_set in predicted)


def test_trainer_can_have_its_own_char_ngrams_and_learning_rate() -> None:
    from textproj.config import FeatureConfig
    from textproj.inputs import trainer_features
    from textproj.training import build_networks, make_optimiser

    features = FeatureConfig()
    assert trainer_features(TrainConfig(trainer_char_ngrams=None), features) == features
    own = trainer_features(TrainConfig(trainer_char_ngrams=(2, 5)), features)
    assert (own.char_ngram_min, own.char_ngram_max) == (2, 5)
    assert own.word_ngrams == features.word_ngrams
    config = TrainConfig(
        **{**SMALL, "learning_rate": 1e-3, "trainer_learning_rate": 4e-3},
        trainer_table_learning_rate=None,
    )
    projection, trainer = build_networks(config, 64, 3)
    table_group, trainer_group, projection_group = make_optimiser(
        projection, trainer, config
    ).param_groups
    assert table_group["lr"] == trainer_group["lr"] == 4e-3
    assert table_group["weight_decay"] == 0.0
    assert table_group["params"] == [trainer.embedding.weight]
    assert projection_group["lr"] == 1e-3
    assert {id(p) for p in projection_group["params"]} == {id(p) for p in projection.parameters()}


def test_trainer_table_rate_and_dropout_are_its_own() -> None:
    from textproj.training import build_networks, make_optimiser

    config = TrainConfig(
        **{**SMALL, "dropout": 0.3, "trainer_learning_rate": 4e-3},
        trainer_table_learning_rate=0.05,
        trainer_dropout=0.5,
    )
    projection, trainer = build_networks(config, 64, 3)
    table_group, trainer_group, _ = make_optimiser(projection, trainer, config).param_groups
    assert (table_group["lr"], trainer_group["lr"]) == (0.05, 4e-3)
    assert trainer.dropout.p == 0.5 and projection.dropout.p == 0.3
    same = dataclasses.replace(config, trainer_table_learning_rate=None, trainer_dropout=None)
    projection, trainer = build_networks(same, 64, 3)
    table_group, trainer_group, _ = make_optimiser(projection, trainer, same).param_groups
    assert table_group["lr"] == trainer_group["lr"] == 4e-3
    assert trainer.dropout.p == projection.dropout.p == 0.3


@pytest.mark.parametrize(
    ("texts", "labels", "kwargs", "error", "message"),
    [
        (["a", "b"], [1, 2], {}, TypeError, "train(texts, labels): labels[0] is int 1, not a str"),
        (["a", "b"], np.array([3, 4]), {}, TypeError, "labels[0] is int64 np.int64(3), not a str"),
        (["a", "b"], ["x", " "], {}, DataError, "labels[1]: row has no label"),
        (["a", None], ["x", "y"], {}, TypeError, "texts[1] is NoneType None, not a str"),
        (["a", "b"], None, {}, TypeError, "labels are missing; give one label per text"),
        (None, ["x"], {}, TypeError, "train(texts, labels): texts is NoneType; give a list of"),
        (["a"], ["x", "y"], {}, ValueError, "train(texts, labels): 1 texts but 2 labels"),
        (["a", "b"], [("x", "y"), "z"], {}, DataError, "labels[0]: row has 2 labels; read it as"),
        (["a", "b"], ["x", "y"], {"config": {"epochs": 1}}, TypeError,
         "train: config is a dict, not a TrainConfig; give TrainConfig(**config)"),
        (["a", "b"], ["x", "y"], {"features": {}}, TypeError,
         "train: features is a dict, not a FeatureConfig; give FeatureConfig(**features)"),
    ],
)  # fmt: skip
def test_train_refuses_bad_texts_labels_and_configs_naming_them(
    monkeypatch, tmp_path, texts, labels, kwargs, error, message
) -> None:
    import textproj.training as training

    monkeypatch.setattr(training, "_train", lambda *args: pytest.fail("training started"))
    out = tmp_path / "out"
    with pytest.raises(error) as caught:
        train(texts, labels, output_dir=out, progress=False, **kwargs)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not out.exists()


@pytest.mark.parametrize(
    ("labels", "split", "error", "message"),
    [
        ([1, 2], "train_data", TypeError,
         "train: train_data Dataset 'rows': labels[0] is int 1, not a str"),
        (["x", " "], "train_data", DataError,
         "train: train_data Dataset 'rows': labels[1]: row has no label"),
        (["x", 2.0], "dev_data", TypeError,
         "train: dev_data Dataset 'rows': labels[1] is float 2.0, not a str"),
        ([("x", "y"), "z"], "test_data", DataError,
         "train: test_data Dataset 'rows': labels[0]: row has 2 labels; read it as"),
    ],
)  # fmt: skip
def test_train_refuses_a_datasets_bad_labels_by_the_texts_labels_rule(
    monkeypatch, tmp_path, labels, split, error, message
) -> None:
    """A Dataset given directly is checked as ``train(texts, labels)`` is, before any work."""
    import textproj.training as training

    monkeypatch.setattr(training, "_train", lambda *args: pytest.fail("training started"))
    good = Dataset(["good", "bad"], ["pos", "neg"], "good")
    splits = {"train_data": good, "dev_data": good, "test_data": good}
    splits[split] = Dataset(["a", "b"], labels, "rows")
    out = tmp_path / "out"
    with pytest.raises(error) as caught:
        train(**splits, output_dir=out, progress=False)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
    assert not out.exists()


def test_a_dataset_given_directly_is_trimmed_as_the_file_readers_trim() -> None:
    import textproj.training as training

    rows = Dataset(["good film", "bad film", "fine"], [" pos", "neg ", "pos"], "rows")
    single, dev, test = training._datasets(rows, None, rows, False, ())
    assert single.labels == test.labels == ["pos", "neg", "pos"] and dev is None
    assert single.texts == rows.texts and single.source == test.source == "rows"
    read = Dataset(["a", "b"], [("a", "b"), ("c",)], "multi.jsonl")  # as read_dataset gives
    multi, _, _ = training._datasets(read, None, None, True, ())
    assert multi == read  # the readers' Datasets already keep the rule: unchanged


def test_train_takes_numpy_texts_and_labels_trimmed_as_the_file_readers_trim() -> None:
    import textproj.training as training

    texts = np.array(["good film", "bad film", "fine"])
    single, _, _ = training._datasets(texts, np.array([" pos", "neg ", "pos"]), None, False, ())
    assert single.labels == ["pos", "neg", "pos"] and single.texts == list(texts)
    assert all(type(item) is str for item in single.texts + single.labels)
    multi, _, _ = training._datasets(texts, ["a| b", ["b", " c "], ("a",)], None, True, ())
    assert multi.labels == [("a", "b"), ("b", "c"), ("a",)]
