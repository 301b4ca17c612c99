"""The CLI end to end on a small slice: train, info, predict, evaluate, and clean errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from textproj.cli import app
from textproj.corpora import load_corpus
from textproj.data import Dataset, write_dataset

runner = CliRunner()

TINY = ["--epochs", "3", "--bottleneck", "16", "--filters", "16", "--quiet"]


@pytest.fixture(scope="module")
def data_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("data")
    files = {}
    for split, n in (("train", 400), ("dev", 80), ("test", 120)):
        data = load_corpus("sentiment_sentences", split)
        path = folder / f"{split}.jsonl" if split == "test" else folder / f"{split}.tsv"
        write_dataset(Dataset(data.texts[:n], data.labels[:n], split), path)
        files[split] = path
    return files


@pytest.fixture(scope="module")
def trained(data_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model")
    args = ["train", "--train", str(data_files["train"]), "--dev", str(data_files["dev"])]
    args += ["--test", str(data_files["test"]), "--output", str(out), *TINY]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "on-device (int8)" in result.output
    return out


def test_train_writes_model_trainer_and_metrics(trained: Path) -> None:
    assert {p.name for p in trained.iterdir()} >= {
        "model.tpn",
        "trainer.npz",
        "trainer.json",
        "metrics.json",
    }
    metrics = json.loads((trained / "metrics.json").read_text())
    for key in ("corpus", "labels", "model_bytes", "train_seconds", "config"):
        assert key in metrics
    for network in ("projection", "trainer"):
        assert set(metrics[network]) == {"dev", "test"}
        assert set(metrics[network]["test"]) >= {"accuracy", "macro_f1", "n"}
        assert metrics[network]["test"]["n"] == 120
    assert metrics["model_bytes"] == (trained / "model.tpn").stat().st_size
    assert sorted(metrics["labels"]) == ["negative", "positive"]


def test_info_describes_the_model(trained: Path) -> None:
    result = runner.invoke(app, ["info", str(trained)])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["labels"] == ["negative", "positive"]
    assert info["file_bytes"] == (trained / "model.tpn").stat().st_size


def test_predict_arguments_stdin_and_json(trained: Path) -> None:
    result = runner.invoke(app, ["predict", str(trained), "great phone", "awful, broke in a day"])
    assert result.exit_code == 0, result.output
    assert all(line in ("negative", "positive") for line in result.output.splitlines())
    assert len(result.output.splitlines()) == 2
    piped = runner.invoke(
        app, ["predict", str(trained / "model.tpn"), "--json"], input="one\ntwo\n"
    )
    records = [json.loads(line) for line in piped.output.splitlines()]
    assert [r["text"] for r in records] == ["one", "two"]
    assert abs(sum(records[0]["probabilities"].values()) - 1) < 1e-4


def test_evaluate_matches_training_metrics(trained: Path, data_files: dict[str, Path]) -> None:
    result = runner.invoke(
        app, ["evaluate", str(trained), "--test", str(data_files["test"]), "--json"]
    )
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)
    metrics = json.loads((trained / "metrics.json").read_text())
    assert scores["accuracy"] == pytest.approx(metrics["projection"]["test"]["accuracy"])
    assert scores["n"] == 120 and scores["unseen_labels"] == []


def test_evaluate_reports_unseen_labels(trained: Path, tmp_path: Path) -> None:
    odd = tmp_path / "odd.txt"
    odd.write_text("__label__sarcastic oh great\n__label__positive lovely\n", encoding="utf-8")
    result = runner.invoke(app, ["evaluate", str(trained), "--test", str(odd)])
    assert result.exit_code == 0, result.output
    assert "1 examples carry 1 labels the model was not trained on" in result.output
    assert "sarcastic" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["info", "missing-dir"], "missing-dir"),
        (["predict", "nowhere/model.tpn", "x"], "model.tpn"),
        (["train", "--train", "nothing.tsv"], "nothing.tsv"),
        (["train", "--corpus", "nope"], "nope"),
        (["train", "--corpus", "banking77", "--train", "x.tsv"], "either --corpus or --train"),
        (["train", "--design", "rnn"], "design"),
        (["evaluate", "m"], "exactly one of --corpus or --test"),
    ],
)
def test_errors_are_one_line_without_traceback(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_damaged_model_gets_a_clean_error(trained: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "model.tpn"
    raw = bytearray((trained / "model.tpn").read_bytes())
    raw[len(raw) // 2] ^= 0x10
    damaged.write_bytes(bytes(raw))
    result = runner.invoke(app, ["predict", str(damaged), "hello"])
    assert result.exit_code == 1
    assert "checksum" in result.output and "Traceback" not in result.output


def test_bad_data_file_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("text\tlabel\nfine\tpos\nno label here\t\n", encoding="utf-8")
    result = runner.invoke(app, ["train", "--train", str(bad), "--quiet"])
    assert result.exit_code == 1
    assert "bad.tsv:3" in result.output


def test_resume_finishes_an_interrupted_run(data_files: dict[str, Path], tmp_path: Path) -> None:
    from textproj import TrainConfig, read_dataset
    from textproj.layout import MODEL_NAME
    from textproj.training import train

    config = TrainConfig(epochs=3, trainer_buckets=2**12, bottleneck=16, filters=16)
    run = {"corpus": None, "train": str(data_files["train"]), "dev": str(data_files["dev"])}
    run["test"] = None
    data = [read_dataset(data_files[split]) for split in ("train", "dev")]

    def stop_after_first_epoch(row: dict) -> None:
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(*data, config=config, output_dir=tmp_path / "b", progress=False, run=run,
              on_epoch=stop_after_first_epoch)  # fmt: skip
    train(*data, config=config, output_dir=tmp_path / "a", progress=False)
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "b"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "b" / MODEL_NAME).read_bytes() == (tmp_path / "a" / MODEL_NAME).read_bytes()
    again = runner.invoke(app, ["train", "--resume", str(tmp_path / "b")])
    assert again.exit_code == 1 and "no checkpoint to resume" in again.output
    mixed = runner.invoke(app, ["train", "--resume", str(tmp_path / "b"), "--epochs", "9"])
    assert mixed.exit_code == 1 and "Traceback" not in mixed.output


def test_multi_label_train_evaluate_predict(tmp_path: Path) -> None:
    single = load_corpus("sentiment_sentences", "train")
    texts, labels = [], []
    for i, text in enumerate(single.texts[:300]):
        tags = [single.labels[i]] + (["question"] if i % 3 == 0 else [])
        texts.append(text + (" what do you think?" if i % 3 == 0 else ""))
        labels.append(tuple(tags))
    write_dataset(Dataset(texts[:240], labels[:240], "train"), tmp_path / "train.jsonl")
    write_dataset(Dataset(texts[240:], labels[240:], "test"), tmp_path / "test.tsv")
    out = tmp_path / "model"
    args = ["train", "--train", str(tmp_path / "train.jsonl"), "--multi-label"]
    result = runner.invoke(app, [*args, "--output", str(out), *TINY])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["multi_label"] and "micro_f1" in metrics["projection"]["dev"]
    scored = runner.invoke(app, ["evaluate", str(out), "--test", str(tmp_path / "test.tsv")])
    assert scored.exit_code == 0, scored.output
    scores = json.loads(
        runner.invoke(
            app, ["evaluate", str(out), "--test", str(tmp_path / "test.tsv"), "--json"]
        ).output
    )
    assert set(scores) >= {"accuracy", "micro_f1", "macro_f1", "n", "unseen_labels"}
    assert scores["n"] == 60
    predicted = runner.invoke(app, ["predict", str(out), "is it good? what do you think?"])
    assert predicted.exit_code == 0, predicted.output
    assert set(predicted.output.strip().split("|")) <= {"negative", "positive", "question"}
