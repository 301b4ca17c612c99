"""The CLI end to end on a small slice: train, info, predict, evaluate, and clean errors."""

from __future__ import annotations

import csv
import gzip
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import typer
from conftest import EMPTY_DATA_FILES, old_unicode_model
from typer.testing import CliRunner

import textproj
from textproj.cli import app
from textproj.config import FeatureConfig, TrainConfig
from textproj.corpora import load_corpus
from textproj.data import Dataset, read_dataset, write_dataset
from textproj.errors import ConfigError
from textproj.model_file import read_model
from textproj.rundir import check_output_dir, holds_run
from textproj.runtime import load_warnings

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
    assert "on-device (int4)" in result.output
    assert "trainer + on-device" in result.output  # the served ensemble's row
    # 400 training texts: the small-set defaults, two augmented copies of each and R-Drop
    extras = "with 800 transfer texts in the distillation term (--augment, --unlabeled); R-Drop"
    assert extras + " at 1 (--consistency)" in " ".join(result.output.split())
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
    result = runner.invoke(app, ["info", str(trained), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["labels"] == ["negative", "positive"]
    assert info["file_bytes"] == (trained / "model.tpn").stat().st_size
    summary = runner.invoke(app, ["info", str(trained)])
    assert summary.exit_code == 0, summary.output
    lines = summary.output.splitlines()
    size = info["file_bytes"]
    assert (
        lines[0]
        == f"file        {trained / 'model.tpn'}: {size:,} bytes (format 1, Unicode 14.0.0)"
    )
    assert lines[1] == "labels      2, single-label: negative, positive"
    t, d = info["projector"]["num_projections"], info["projector"]["bits_per_projection"]
    assert f"projection  {t} × {d} = {t * d:,} bits per token" in summary.output
    dev = json.loads((trained / "metrics.json").read_text())["projection"]["dev"]["accuracy"]
    assert f"scores      dev accuracy {dev:.4f}, test accuracy" in summary.output
    rows = {line.split()[0]: line.split()[1:] for line in lines[8:-1]}
    assert len(rows) == len(info["tensors"])
    for tensor in info["tensors"]:
        shape = "×".join(map(str, tensor["shape"]))
        assert rows[tensor["name"]] == [tensor["dtype"], shape, f"{tensor['bytes']:,}"]
    weights = sum(tensor["bytes"] for tensor in info["tensors"])
    assert f"{weights:,}  (header and checksum {size - weights:,})" in lines[-1]
    alone = trained.parent / "alone.tpn"
    alone.write_bytes((trained / "model.tpn").read_bytes())
    assert "scores" not in runner.invoke(app, ["info", str(alone)]).output  # no metrics.json


def test_predict_arguments_stdin_and_json(trained: Path) -> None:
    texts = ["great phone", "awful, broke in a day"]
    result = runner.invoke(app, ["predict", str(trained), *texts])
    assert result.exit_code == 0, result.output
    clf = textproj.load(trained)
    proba = clf.predict_proba(texts)
    expected = [
        f"{label}\t{row.max():.4f}" for label, row in zip(clf.predict(texts), proba, strict=True)
    ]
    assert result.stdout.splitlines() == expected
    piped = runner.invoke(
        app, ["predict", str(trained / "model.tpn"), "--json"], input="one\ntwo\n"
    )
    records = [json.loads(line) for line in piped.stdout.splitlines()]
    assert [r["text"] for r in records] == ["one", "two"]
    assert abs(sum(records[0]["probabilities"].values()) - 1) < 1e-4


def test_predict_and_evaluate_with_the_ensemble(
    trained: Path, data_files: dict[str, Path], tmp_path: Path
) -> None:
    from textproj.ensemble import load_ensemble

    texts = ["great phone", "awful, broke in a day"]
    result = runner.invoke(app, ["predict", str(trained), "--ensemble", *texts])
    assert result.exit_code == 0, result.output
    ensemble = load_ensemble(trained)
    proba = ensemble.predict_proba(texts)
    expected = [
        f"{label}\t{row.max():.4f}"
        for label, row in zip(ensemble.predict(texts), proba, strict=True)
    ]
    assert result.stdout.splitlines() == expected
    test = str(data_files["test"])
    scored = runner.invoke(
        app, ["evaluate", str(trained / "model.tpn"), "--ensemble", "--test", test, "--json"]
    )
    assert scored.exit_code == 0, scored.output
    metrics = json.loads((trained / "metrics.json").read_text())["ensemble"]["test"]
    n_test = metrics["n"]
    assert json.loads(scored.stdout)["accuracy"] == pytest.approx(
        metrics["accuracy"], abs=1.5 / n_test
    )  # numpy against torch rounding may flip a near tie
    explained = runner.invoke(app, ["predict", str(trained), "--ensemble", "--explain", "x"])
    assert explained.exit_code == 2
    assert "does not go with --ensemble" in explained.output
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "model.tpn").write_bytes((trained / "model.tpn").read_bytes())
    missing = runner.invoke(app, ["predict", str(alone), "--ensemble", "x"])
    assert missing.exit_code == 1
    assert "trainer.json" in missing.output


def test_predict_top_k_threshold_and_input_file(trained: Path, tmp_path: Path) -> None:
    texts = ["great phone", "awful, broke in a day", "it is a film"]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    proba = textproj.load(trained).predict_proba(texts)
    top2 = runner.invoke(
        app, ["predict", str(trained), "--input", str(tmp_path / "in.txt"), "-k", "2"]
    )
    assert top2.exit_code == 0, top2.output
    for line, row in zip(top2.output.splitlines(), proba, strict=True):
        fields = line.split("\t")
        assert len(fields) == 4 and float(fields[1]) >= float(fields[3])
        assert abs(float(fields[1]) + float(fields[3]) - 1) < 2e-4  # two labels: all the mass
        assert float(fields[1]) == pytest.approx(row.max(), abs=5e-5)
    cut = float(np.median(proba.max(axis=1)))
    sure = runner.invoke(app, ["predict", str(trained), "--threshold", str(cut), *texts])
    assert [bool(line) for line in sure.output.splitlines()] == list(proba.max(axis=1) >= cut)
    both = runner.invoke(app, ["predict", str(trained), "x", "--input", str(tmp_path / "in.txt")])
    assert both.exit_code == 2 and "not both" in both.output


def test_evaluate_without_data_scores_the_bundled_corpus_the_model_was_trained_on(
    trained: Path, tmp_path: Path
) -> None:
    bundled = Path(__file__).resolve().parents[1] / "app" / "models" / "banking77"
    assert json.loads((bundled / "metrics.json").read_text())["corpus"] == "banking77"
    result = runner.invoke(app, ["evaluate", str(bundled), "--json"])
    assert result.exit_code == 0, result.output
    same = runner.invoke(app, ["evaluate", str(bundled), "--corpus", "banking77", "--json"])
    assert result.stdout == same.stdout
    assert "scoring on banking77's test split" in result.stderr
    assert json.loads(result.stdout)["n"] == len(load_corpus("banking77", "test"))
    from_files = runner.invoke(app, ["evaluate", str(trained)])  # trained on files
    assert from_files.exit_code == 2
    assert "not trained on a bundled corpus" in " ".join(from_files.output.split())
    alone = tmp_path / "model.tpn"  # no metrics.json beside it: it was, but nothing says so
    alone.write_bytes((bundled / "model.tpn").read_bytes())
    moved = runner.invoke(app, ["evaluate", str(alone)])
    assert moved.exit_code == 2
    assert (
        f"give --corpus or --test (no metrics.json of this model beside {alone} says what it "
        "was trained on)" in " ".join(moved.output.split())
    )
    assert "not trained on a bundled corpus" not in moved.output


def test_predict_reads_the_text_column_of_a_data_file(trained: Path, tmp_path: Path) -> None:
    texts = ["great phone", "", "awful, broke in a day"]
    with (tmp_path / "in.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["id", "review"], *([i, t] for i, t in enumerate(texts))])
    labels = textproj.load(trained).predict([texts[0], texts[2]])
    result = runner.invoke(
        app, ["predict", str(trained), "--input", str(tmp_path / "in.csv"), "--text-column",
              "review", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["label"] for r in records] == [labels[0], None, labels[1]]  # a blank text: no label
    lines = tmp_path / "in.jsonl.gz"
    lines.write_bytes(gzip.compress(b'{"text": "great phone", "label": "ignored"}\n'))
    plain = runner.invoke(app, ["predict", str(trained), "--input", str(lines)])
    assert plain.exit_code == 0 and plain.output.split("\t")[0] == labels[0]
    missing = runner.invoke(app, ["predict", str(trained), "--input", str(tmp_path / "in.csv")])
    assert missing.exit_code == 1 and "in.csv:1: header has no 'text' column" in missing.output
    misplaced = runner.invoke(app, ["predict", str(trained), "--text-column", "review", "hi"])
    assert misplaced.exit_code == 2
    assert "--text-column names a column of a .tsv/.csv/.jsonl --input file" in " ".join(
        misplaced.output.split()
    )


def test_predict_reads_input_records_as_training_does(trained: Path, tmp_path: Path) -> None:
    texts = ["great phone", 'the "best" film', "awful,\nbroke in a day", "it is a film"]
    clf = textproj.load(trained)
    for name in ("in.csv", "in.tsv", "in.ft"):
        path = tmp_path / name
        ft = name.endswith(".ft")  # its label tokens are not text
        rows = [t.replace("\n", " ") for t in texts] if ft else texts
        write_dataset(Dataset(rows, ["pos", "neg"] * 2, "made"), path)
        result = runner.invoke(app, ["predict", str(trained), "--input", str(path), "--json"])
        assert result.exit_code == 0, result.output
        records = [json.loads(line) for line in result.stdout.splitlines()]
        assert [r["label"] for r in records] == clf.predict(rows)  # one line per record
        assert [r["text"] for r in records] == rows
    piped = runner.invoke(app, ["predict", str(trained), "--json"], input=path.read_text())
    assert [json.loads(line)["text"] for line in piped.stdout.splitlines()] == rows  # stdin: .ft
    short = tmp_path / "short.csv"
    short.write_text("id,text\n1,great phone\n2\n3,it is a film\n", encoding="utf-8")
    refused = runner.invoke(app, ["predict", str(trained), "--input", str(short)])
    assert refused.exit_code == 1 and refused.stdout == ""  # refused before any prediction
    assert refused.output == f"error: {short}:3: row has 1 field(s), expected at least 2\n"


def test_lone_surrogates_in_jsonl_are_refused_at_reading(trained: Path, tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"  # json.loads accepts the escape; UTF-8 cannot hold it
    path.write_text('{"text": "fine", "label": "pos"}\n{"text": "a\\udc80", "label": "pos"}\n')
    why = f"error: {path}:2: 'text' holds a lone surrogate (U+DC80, half of a UTF-16 pair), "
    why += "which UTF-8 cannot encode"
    predicted = runner.invoke(app, ["predict", str(trained), "--json", "--input", str(path)])
    assert predicted.exit_code == 1 and predicted.stdout == ""  # a crash writing JSON before
    assert predicted.output.splitlines()[-1] == why  # after a first run's kernel-compile notice
    scores = tmp_path / "p.tsv"
    args = ["evaluate", str(trained), "--test", str(path), f"--predictions={scores}"]
    evaluated = runner.invoke(app, args)
    assert evaluated.exit_code == 1 and evaluated.output.splitlines()[-1] == why
    assert not scores.exists()
    label = tmp_path / "l.jsonl"  # crashed writing model.tpn after training
    label.write_text('{"text": "fine", "label": "pos"}\n{"text": "a", "label": "\\udc80"}\n')
    out = tmp_path / "out"
    trained_on = runner.invoke(app, ["train", "--train", str(label), "--output", str(out)])
    assert trained_on.exit_code == 1 and not out.exists()
    assert trained_on.output.startswith(f"error: {label}:2: 'label' holds a lone surrogate")


def test_predict_stdin_crlf_blank_lines_and_bad_utf8(trained: Path) -> None:
    piped = runner.invoke(
        app, ["predict", str(trained), "--json"], input="good film\r\n\n   \nbad\n"
    )
    records = [json.loads(line) for line in piped.stdout.splitlines()]
    assert [r["text"] for r in records] == ["good film", "", "   ", "bad"]
    assert [r["label"] is None for r in records] == [False, True, True, False]
    assert records[1]["probabilities"] == {}
    plain = runner.invoke(app, ["predict", str(trained)], input="good film\r\n\n")
    assert plain.output.split("\n")[1:] == ["", ""]  # the blank line stays a blank line
    bad = runner.invoke(app, ["predict", str(trained), "--json"], input=b"fine\n\xff oops\n")
    assert bad.exit_code == 1 and "stdin:2: invalid UTF-8 (byte 0xff)" in bad.output
    assert "fine" not in bad.output  # refused before any output


def test_predict_input_errors_read_as_data_file_errors(trained: Path, tmp_path: Path) -> None:
    for name, message in (
        ("missing.txt", "missing.txt: no such file"),
        ("missing.tsv", "missing.tsv: no such file"),
        (".", ": is a directory, not a data file"),
    ):
        result = runner.invoke(app, ["predict", str(trained), "-i", str(tmp_path / name)])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert result.output.startswith("error: ") and message in result.output


@pytest.mark.parametrize(
    "entry",
    [
        ["train", "--train", "{path}"],
        ["train", "--train", "{train}", "--dev", "{path}"],
        ["train", "--train", "{train}", "--test", "{path}"],
        ["train", "--train", "{train}", "--unlabeled", "{path}"],
        ["train", "--train", "{path}", "--stream", "--cache-dir", "{cache}"],
        [
            "train",
            "--train",
            "{train}",
            "--unlabeled",
            "{path}",
            "--stream",
            "--cache-dir",
            "{cache}",
        ],
        ["evaluate", "{model}", "--test", "{path}"],
        ["predict", "{model}", "-i", "{path}"],
        ["sweep", "--train", "{path}"],
    ],
    ids=lambda entry: " ".join(entry).replace("{", "").replace("}", ""),
)
@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("abc", "no such file"),  # was 'abc: unknown file extension; supported: ...'
        ("folder", "is a directory, not a data file"),
        ("folder.tsv", "is a directory, not a data file"),
    ],
)
def test_every_data_file_option_names_a_missing_file_or_a_directory(
    entry: list[str],
    name: str,
    message: str,
    trained: Path,
    data_files: dict[str, Path],
    tmp_path: Path,
) -> None:
    """One line, before its extension is judged and before any output or cache is written:
    ``--train abc`` said 'abc: unknown file extension'."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder.tsv").mkdir()
    path, out, cache = tmp_path / name, tmp_path / "out", tmp_path / "cache"
    values = {"path": path, "train": data_files["train"], "model": trained, "cache": cache}
    args = [arg.format(**values) for arg in entry]
    if entry[0] in ("train", "sweep"):
        args += ["--output", str(out)]
    result = runner.invoke(app, args)
    assert (result.exit_code, result.stderr) == (1, f"error: {path}: {message}\n")
    assert result.stdout.strip() == ""  # (a progress display ends with a line break)
    assert not out.exists() and not cache.exists()


@pytest.mark.parametrize(
    "command", [["evaluate", "{model}", "--test"], ["predict", "{model}", "-i"]]
)
def test_a_missing_data_file_is_named_before_the_model_is_loaded(
    command: list[str], tmp_path: Path
) -> None:
    """The model was loaded (its kernels compiled, on a first run) before --test / -i was read."""
    model, path = tmp_path / "no-model", tmp_path / "abc"
    args = [arg.format(model=model) for arg in command] + [str(path)]
    result = runner.invoke(app, args)
    assert (result.exit_code, result.stderr) == (1, f"error: {path}: no such file\n")


def test_every_empty_input_predicts_nothing_with_one_warning(trained: Path, tmp_path: Path) -> None:
    """An empty .tsv/.csv was an error, any other empty input silent; evaluate refuses each."""
    for name, content in EMPTY_DATA_FILES:
        path = tmp_path / name
        path.write_bytes(content)
        predicted = runner.invoke(app, ["predict", str(trained), "-i", str(path)])
        assert predicted.exit_code == 0 and predicted.stdout == ""
        warned = [line for line in predicted.stderr.splitlines() if line.startswith("warning:")]
        assert warned == [f"warning: {path}: no texts to predict"]
        evaluated = runner.invoke(app, ["evaluate", str(trained), "--test", str(path)])
        assert evaluated.exit_code == 1 and evaluated.stdout == ""
        assert evaluated.stderr.splitlines()[-1] == f"error: {path}: no data rows"
    for args in ([], ["-i", "-"]):  # empty stdin stays silent, as in a pipeline
        piped = runner.invoke(app, ["predict", str(trained), *args], input="")
        assert piped.exit_code == 0 and piped.stdout == "" and "warning" not in piped.stderr


def test_a_text_that_is_a_files_path_is_predicted_with_one_warning(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("notes.txt").write_text("great phone\n", encoding="utf-8")
    Path("my data.csv").write_text("text\ngreat phone\n", encoding="utf-8")
    texts = ["notes.txt", "great phone", "my data.csv", "notes.txt", "x" * 5000]
    result = runner.invoke(app, ["predict", str(trained), "--json", *texts])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == texts
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warned == [
        "warning: 'notes.txt' is a file here; it is predicted as a text (read its lines with "
        "--input notes.txt)"
    ]  # once per run; a text too long to be a path is no file, not a crash
    data = runner.invoke(app, ["predict", str(trained), "my data.csv"])
    assert data.stderr.splitlines()[-1] == (
        "warning: 'my data.csv' is a file here; it is predicted as a text (read its text column "
        "with --input 'my data.csv')"
    )
    texts_only = runner.invoke(app, ["predict", str(trained), "notes", "."])  # "." is no file
    assert texts_only.exit_code == 0 and "warning" not in texts_only.stderr


def test_predict_explain_shares_add_up_to_the_logit(tiny_models: dict[str, Path]) -> None:
    model = tiny_models["token"]
    result = runner.invoke(app, ["predict", str(model), "--json", "--explain", "my card is lost"])
    record = json.loads(result.stdout)
    explanation = textproj.load(model).explain("my card is lost")
    assert [token for token, _ in record["explanation"]] == ["my", "card", "is", "lost"]
    assert [w for _, w in record["explanation"]] == [
        round(float(w), 4) for w in explanation.weights
    ]
    plain = runner.invoke(app, ["predict", str(model), "--explain", "my card is lost"])
    assert plain.output.splitlines()[1].startswith("  tokens: ")
    text_model = runner.invoke(app, ["predict", str(tiny_models["text"]), "--explain", "x"])
    assert text_model.exit_code == 2 and "token-design model" in text_model.output


def test_evaluate_matches_training_metrics(trained: Path, data_files: dict[str, Path]) -> None:
    result = runner.invoke(
        app, ["evaluate", str(trained), "--test", str(data_files["test"]), "--json"]
    )
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    metrics = json.loads((trained / "metrics.json").read_text())
    assert scores["accuracy"] == pytest.approx(metrics["projection"]["test"]["accuracy"])
    assert scores["macro_f1"] == pytest.approx(metrics["projection"]["test"]["macro_f1"])
    assert scores["n"] == 120 and scores["unseen_labels"] == []


def test_evaluate_per_label_confusion_pairs_predictions_and_plot(
    trained: Path, data_files: dict[str, Path], tmp_path: Path
) -> None:
    test = read_dataset(data_files["test"])
    predicted = textproj.load(trained).predict(test.texts)
    args = ["evaluate", str(trained), "--test", str(data_files["test"])]
    out = [f"--predictions={tmp_path / 'p.tsv'}", f"--plot={tmp_path / 'c.png'}"]
    scores = json.loads(runner.invoke(app, [*args, "--json", *out]).stdout)
    labels = scores["confusion"]["labels"]
    matrix = np.array(scores["confusion"]["matrix"])
    assert labels == ["negative", "positive"] and matrix.sum() == len(test)
    for i, gold in enumerate(labels):
        hits = sum(g == p == gold for g, p in zip(test.labels, predicted, strict=True))
        assert matrix[i, i] == hits
        assert matrix[i].sum() == scores["per_label"][gold]["support"] == test.labels.count(gold)
        assert scores["per_label"][gold]["recall"] == pytest.approx(hits / matrix[i].sum())
        assert scores["per_label"][gold]["precision"] == pytest.approx(
            hits / max(1, matrix[:, i].sum())
        )
    worst = scores["confused_pairs"][0]
    assert worst["count"] == max(matrix[0, 1], matrix[1, 0])
    assert (tmp_path / "c.png").read_bytes().startswith(b"\x89PNG")
    rows = read_dataset(tmp_path / "p.tsv")  # text and gold label columns, like any data file
    assert rows.texts == test.texts and rows.labels == test.labels
    written = (tmp_path / "p.tsv").read_text(encoding="utf-8").splitlines()
    assert written[0].split("\t") == ["text", "label", "predicted", "probability", "correct"]
    assert [line.split("\t")[2] for line in written[1:]] == predicted
    text = runner.invoke(app, [*args, "--confusion"]).output
    assert "precision  recall" in text and "most confused" in text and "confusion matrix" in text


def _predicted_in_csv(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as file:
        header, *rows = list(csv.reader(file))
    assert header == ["text", "label", "predicted", "probability", "correct"]
    return [row[2] for row in rows]


def _predicted_in_gzipped_jsonl(path: Path) -> list[str]:
    return [
        json.loads(line)["predicted"] for line in gzip.decompress(path.read_bytes()).splitlines()
    ]


@pytest.mark.parametrize(
    ("name", "predicted_in"),
    [("p.csv", _predicted_in_csv), ("p.jsonl.gz", _predicted_in_gzipped_jsonl)],
)
def test_evaluate_writes_predictions_in_the_format_their_name_gives(
    trained: Path, data_files: dict[str, Path], tmp_path: Path, name: str, predicted_in
) -> None:
    test = read_dataset(data_files["test"])
    path = tmp_path / name
    args = ["evaluate", str(trained), "--test", str(data_files["test"]), f"--predictions={path}"]
    assert runner.invoke(app, args).exit_code == 0
    assert predicted_in(path) == textproj.load(trained).predict(test.texts)
    rows_read = read_dataset(path)  # a data file like any other
    assert rows_read.texts == test.texts and rows_read.labels == test.labels


@pytest.mark.parametrize("name", ["p.json", "p.gz", "p.txt", "p.json.gz"])
def test_evaluate_refuses_a_predictions_name_it_cannot_honour(tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    # The model does not exist: the name is refused before the model is loaded or scored.
    result = runner.invoke(
        app, ["evaluate", str(tmp_path / "no-model"), "--test", "t.tsv", "--predictions", target]
    )
    assert result.exit_code == 2
    assert " ".join(result.stderr.split()) == (
        f"error: --predictions {target}: predictions are written as .tsv, .csv, .jsonl (each "
        "optionally .gz); give a name ending in one of them"
    )
    assert not target.exists()


def test_evaluate_checks_its_output_targets_before_scoring(tmp_path: Path) -> None:
    (tmp_path / "taken.tsv").mkdir()
    (tmp_path / "file").write_text("mine", encoding="utf-8")
    model = str(tmp_path / "no-model")  # never loaded: the targets are checked first
    cases = {
        ("--predictions", tmp_path / "taken.tsv"): "is a directory; give a file name",
        ("--predictions", tmp_path / "file" / "p.tsv"): (
            f"{tmp_path / 'file'} is a file, not a directory; give another path"
        ),
        ("--plot", tmp_path / "file" / "c.png"): (
            f"{tmp_path / 'file'} is a file, not a directory; give another path"
        ),
    }
    for (option, target), message in cases.items():
        result = runner.invoke(app, ["evaluate", model, "--test", "t.tsv", option, target])
        assert result.exit_code == 1
        assert " ".join(result.stderr.split()) == f"error: {option} {target}: {message}"
    assert (tmp_path / "file").read_text(encoding="utf-8") == "mine"


def test_evaluate_reports_unseen_labels(trained: Path, tmp_path: Path) -> None:
    odd = tmp_path / "odd.txt"
    odd.write_text("__label__sarcastic oh great\n__label__positive lovely\n", encoding="utf-8")
    result = runner.invoke(app, ["evaluate", str(trained), "--test", str(odd)])
    assert result.exit_code == 0, result.output
    assert "1 examples carry 1 labels the model was not trained on" in result.output
    assert "sarcastic" in result.output


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["info", "missing-dir"], "missing-dir", 1),
        (["predict", "nowhere/model.tpn", "x"], "model.tpn", 1),
        (["train", "--train", "nothing.tsv"], "nothing.tsv", 1),
        (["train", "--train", "."], "is a directory", 1),
        (["train", "--corpus", "nope"], "nope", 1),
        (["train", "--corpus", "banking77", "--train", "x.tsv"], "either --corpus or --train", 2),
        (["train", "--design", "rnn"], "'rnn' is not one of 'token', 'text'", 2),
        (["train", "-T", "0"], "--projections must be an int >= 1, got 0", 2),
        (["train", "-d", "0"], "--bits must be an int >= 1, got 0", 2),
        (["train", "-T", "-3"], "--projections must be an int >= 1, got -3", 2),
        (["train", "--design", "text", "--hidden", "8,0"], "--hidden takes comma-separated", 2),
        (["train", "--design", "text", "--hidden", ""], "--hidden takes comma-separated", 2),
        (
            ["train", "--train", "x.tsv", "--dev-fraction", "1"],
            "--dev-fraction must be in (0, 1)",
            2,
        ),
        (["train", "--lr", "0"], "--lr must be > 0", 2),
        (["train", "--lr", "inf"], "--lr must be > 0 and finite, got inf", 2),
        (["train", "--temperature", "inf"], "--temperature must be > 0 and finite, got inf", 2),
        (["train", "--temperature", "nan"], "--temperature must be > 0 and finite, got nan", 2),
        (["train", "--lambda-distill", "-1"], "--lambda-distill must be >= 0 and finite, got", 2),
        (["train", "--lambda-transfer", "inf"], "--lambda-transfer must be >= 0 and finite", 2),
        (["train", "--consistency", "inf"], "--consistency must be a finite number >= 0", 2),
        (["train", "--patience", "0"], "--patience must be an int >= 1", 2),
        (["train", "--trainer-buckets", "0"], "--trainer-buckets must be an int >= 1", 2),
        (["train", "--trainer-dropout", "1"], "--trainer-dropout must be in [0, 1)", 2),
        (["train", "--trainer-table-lr", "0"], "--trainer-table-lr must be > 0", 2),
        (["train", "--consistency", "-1"], "--consistency must be a finite number >= 0 or null", 2),
        (["train", "--weight-bits", "6"], "--weight-bits must be one of (8, 4), not 6", 2),
        (["train", "--max-tokens", "0"], "--max-tokens", 2),
        (["train", "--max-tokens", "2147483648"], "--max-tokens must be an int below 2**31", 2),
        (["train", "--train", "x.tsv", "--stream", "--augment", "1"], "makes no augmented", 2),
        (["train", "--train", "x.tsv", "--cache-dir", "c"], "give --stream too", 2),
        (["train", "--train", "x.tsv", "--dev", "d.tsv", "--dev-fraction", "0.2"], "carves", 2),
        (["train", "--dev-fraction", "0.2"], "not go with --dev or a bundled corpus", 2),
        (["evaluate", "m", "--corpus", "c", "--test", "t"], "exactly one of --corpus or --test", 2),
        (
            ["evaluate", "m", "--corpus", "banking77", "--text-column", "t"],
            "--text-column names a column of your data files (--test); a bundled corpus keeps",
            2,
        ),
        (
            ["sweep", "--text-column", "t", "--label-column", "y"],
            "--text-column and --label-column name columns of your data files (--train);",
            2,
        ),
        (
            ["train", "--corpus", "banking77", "--label-column", "y"],
            "--label-column names a column of your data files (--train, --dev, --test, --unl",
            2,
        ),
        (["evaluate", "m", "--plot", "c.jpg"], "--plot writes a PNG image: give a FILE.png", 2),
        (["predict", "m", "-k", "0"], "-k", 2),
        (["export", "m"], "give --c DIR, --wasm DIR or both", 2),
    ],
)
def test_errors_are_one_line_without_traceback(args: list[str], message: str, code: int) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == code
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["predict", "m", "-k", "0"], "-k: got 0; it should be greater than or equal to 1"),
        (["predict", "m", "x", "--threshold", "2"], "--threshold: got 2; it should be less than "
         "or equal to 1"),
        (["train", "--max-tokens", "0"], "--max-tokens: got 0; it should be greater than or "
         "equal to 1"),
        (["train", "--checkpoint-every", "-1"], "--checkpoint-every: got -1; it should be "
         "greater than or equal to 0"),
        (["train", "--processes", "0"], "--processes: got 0; it should be greater than or equal "
         "to 1"),
        (["sweep", "--limit", "0"], "--limit: got 0; it should be greater than or equal to 1"),
        (["train", "-T", "x"], "--projections: got x; it should be a valid integer, unable to "
         "parse string as an integer"),
        (["train", "-T", ""], "--projections: got ''; it should be a valid integer, unable to "
         "parse string as an integer"),
        (["train", "--design", "rnn"], "--design: 'rnn' is not one of 'token', 'text'."),
    ],
)  # fmt: skip
def test_bad_option_values_are_one_error_line_naming_the_option(args: list[str], line: str) -> None:
    result = runner.invoke(app, args, prog_name="textproj")
    assert result.exit_code == 2
    assert result.stderr == f"error: {line}\n"  # not click's usage block


def test_a_missing_argument_keeps_clicks_usage_block() -> None:
    result = runner.invoke(app, ["predict"], prog_name="textproj")
    assert result.exit_code == 2
    assert result.stderr.startswith("Usage: textproj predict [OPTIONS] MODEL [TEXTS...]")
    assert "Missing argument 'MODEL'." in result.stderr


def test_bad_options_leave_no_output(tmp_path: Path) -> None:
    out = tmp_path / "never"
    for bad in (["--design", "text", "--hidden", "0"], ["-T", "0"]):
        result = runner.invoke(
            app, ["train", "--corpus", "sentiment_sentences", "--output", out, *bad]
        )
        assert result.exit_code == 2 and not out.exists()


def test_output_that_is_a_file_fails_before_training(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("not a directory")
    result = runner.invoke(
        app, ["train", "--corpus", "sentiment_sentences", "--output", str(tmp_path / "taken")]
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "taken: exists and is not a directory" in result.output
    assert "epoch" not in result.output


def test_another_runs_directory_needs_force(tmp_path: Path, data_files: dict[str, Path]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text("{}")
    args = ["train", "--train", str(data_files["train"]), "--output", str(run), "--quiet"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1 and "holds another run (metrics.json)" in refused.output
    # With --force the output passes; the next check (here a one-label training set) runs.
    one_label = tmp_path / "one.tsv"
    one_label.write_text("text\tlabel\na\tx\nb\tx\nc\tx\n", encoding="utf-8")
    forced = runner.invoke(
        app, ["train", "--train", str(one_label), "--output", str(run), "--force"]
    )
    assert forced.exit_code == 1
    assert f"error: {one_label}" in forced.output
    assert "training data has only the label 'x'" in forced.output
    assert holds_run(run) and not holds_run(tmp_path / "elsewhere")


def test_output_holding_other_files_or_the_data_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run replaces its output directory whole: a directory of the user's files, one holding
    the training data, and the current directory are refused before any work, losing nothing."""
    data = tmp_path / "work" / "docs" / "train.tsv"
    data.parent.mkdir(parents=True)
    (tmp_path / "here").mkdir()
    data.write_text("text\tlabel\na\tx\nb\ty\n", encoding="utf-8")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("mine")
    monkeypatch.chdir(tmp_path / "here")  # for ".": were the check to fail, only tmp_path is lost
    for output, force, expected in [
        (tmp_path / "mine", False, "holds files that are not a textproj run (thesis.txt)"),
        (data.parent, False, f"holds the input {data}"),
        (data.parent, True, f"holds the input {data}"),
        (tmp_path / "work", True, f"holds the input {data}"),
        (Path("."), True, "is the current directory or holds it"),
    ]:
        flags = ["--force"] if force else []
        result = runner.invoke(
            app, ["train", "--train", str(data), "--output", str(output), *flags]
        )
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert result.output.startswith(f"error: {output}: {expected}")
        assert "epoch" not in result.output
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["thesis.txt"]
    with pytest.raises(ConfigError, match="holds the input"):
        textproj.train(str(data), output_dir=data.parent, force=True, progress=False)
    assert data.read_text(encoding="utf-8").startswith("text\tlabel")


@pytest.mark.parametrize("command", ["train", "sweep"])
@pytest.mark.parametrize("split", ["--dev", "--test"])
def test_a_bundled_corpus_takes_no_dev_or_test_file(
    command: str, split: str, tmp_path: Path
) -> None:
    """train used to read --dev/--test in place of the corpus's split, where sweep refused the
    same options (both --help texts say they go with --train)."""
    result = runner.invoke(
        app, [command, "--corpus", "sentiment_sentences", split, "mine.tsv", "--output", tmp_path]
    )
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --dev and --test go with --train (a bundled corpus has its own splits)\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (  # data options before the model's
            ["--corpus", "banking77", "--dev", "d.tsv", "-T", "0"],
            "--dev and --test go with --train (a bundled corpus has its own splits)",
        ),
        (
            ["--label-column", "y", "--epochs", "0"],
            "--label-column names a column of your data files",
        ),
        (  # the model's before the output directory
            ["--design", "text", "-T", "100000", "-d", "64"],
            "layer 'dense.0' would hold",
        ),
    ],
)
def test_train_and_sweep_check_options_in_one_order(
    args: list[str], message: str, tmp_path: Path
) -> None:
    """The same bad command line gets the same first error from both commands: data options,
    then the model's, then the output directory (here one of the user's), then the files."""
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    for command in ("train", "sweep"):
        result = runner.invoke(app, [command, *args, "--output", str(tmp_path)])
        assert result.exit_code == 2, (command, result.stderr)
        assert message in result.stderr


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_missing_data_files_are_reported_before_any_is_read(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing --unlabeled (or --test) file is named before the corpus or --train file, read
    first, costs its time."""
    import textproj.cli

    monkeypatch.setattr(textproj.cli, "load_corpus", lambda *_: pytest.fail("read the corpus"))
    monkeypatch.setattr(textproj.cli, "read_dataset", lambda *_, **__: pytest.fail("read"))
    mine = tmp_path / "mine.tsv"
    mine.write_text("text\tlabel\na\tx\nb\ty\n", encoding="utf-8")
    missing = tmp_path / "missing.txt"
    cases = [["--train", str(mine), "--test", str(missing)]]
    if command == "train":
        cases.append(["--corpus", "banking77", "--unlabeled", str(missing)])
        cases.append(["--train", str(mine), "--unlabeled", str(tmp_path)])
    for args in cases:
        result = runner.invoke(app, [command, *args, "--output", str(tmp_path / "out")])
        assert result.exit_code == 1, result.output
        named = tmp_path if args[-1] == str(tmp_path) else missing
        reason = "is a directory, not a data file" if named == tmp_path else "no such file"
        assert result.stderr == f"error: {named}: {reason}\n"
        assert not (tmp_path / "out").exists()


def test_check_output_dir_rules(tmp_path: Path) -> None:
    check_output_dir(tmp_path / "new")
    check_output_dir(tmp_path)  # an empty directory is fine
    (tmp_path / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(ConfigError) as refused:
        check_output_dir(tmp_path)
    assert str(refused.value) == (  # the API's words; the CLI's are its options
        f"{tmp_path}: holds an interrupted run's checkpoint.pt; continue it with resume=True, or "
        "start over with force=True"
    )
    check_output_dir(tmp_path, resume=True)
    check_output_dir(tmp_path, force=True)
    (tmp_path / "notes.txt").write_text("mine")
    check_output_dir(tmp_path, resume=True)  # a checkpoint's directory continues as it is
    (tmp_path / "checkpoint.pt").unlink()
    with pytest.raises(ConfigError) as refused:
        check_output_dir(tmp_path)
    assert str(refused.value) == (
        f"{tmp_path}: holds files that are not a textproj run (notes.txt), and a run replaces "
        "its output directory whole; give a new or empty directory, or replace it with force=True"
    )
    check_output_dir(tmp_path, force=True)


def test_train_names_its_options_where_the_api_names_arguments(tmp_path: Path) -> None:
    """check_output_dir's force=True and resume=True are, on train's command line, --force and
    the command that continues the run."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"")
    result = runner.invoke(app, ["train", "--corpus", "sentiment_sentences", "--output", str(run)])
    assert result.exit_code == 1
    assert " ".join(result.stderr.split()) == (
        f"error: {run}: holds an interrupted run's checkpoint.pt; continue it with `textproj "
        f"train --resume {run}`, or start over with --force"
    )


def test_export_refuses_an_export_of_the_other_kind_unless_forced(tmp_path: Path) -> None:
    """A C export's directory given as --wasm (or a page's as --c) is named and kept, as a run's
    directory is by train; --force replaces it."""
    from textproj.export import check_export_dir

    model = Path(__file__).parents[1] / "app" / "models" / "banking77" / "model.tpn"
    c_export, web_export = tmp_path / "c", tmp_path / "web"
    for directory, names in (
        (c_export, ("model_data.c", "Makefile", "textproj.h")),
        (web_export, ("textproj.wasm", "textproj.js", "index.html")),
    ):
        directory.mkdir()
        for name in names:
            (directory / name).write_text(f"the export's {name}", encoding="utf-8")
    for option, directory, other, mark in (
        ("--wasm", c_export, "C", "model_data.c"),
        ("--c", web_export, "WebAssembly", "textproj.wasm"),
    ):
        refused = runner.invoke(app, ["export", str(model), option, str(directory)])
        assert refused.exit_code == 1
        assert " ".join(refused.stderr.split()) == (
            f"error: {option} {directory}: holds a {other} export ({mark}); overwrite it with "
            "--force, or give another output directory"
        )
        assert (directory / mark).read_text(encoding="utf-8") == f"the export's {mark}"
    check_export_dir(c_export, "WebAssembly", model, force=True)
    check_export_dir(web_export, "C", model, force=True)
    check_export_dir(c_export, "C", model)  # its own kind's earlier export: replaced unasked
    check_export_dir(web_export, "WebAssembly", model)


def _stub_training(monkeypatch: pytest.MonkeyPatch, effect) -> list[dict]:
    """Replace training by ``effect(kwargs)``; return the list of calls it received."""
    import textproj.training

    calls: list[dict] = []

    def fake(*splits, **kwargs):
        calls.append({"splits": splits, **kwargs})
        return effect(kwargs)

    monkeypatch.setattr(textproj.training, "train", fake)
    return calls


def test_ctrl_c_says_how_to_resume_and_leaves_no_tmp(monkeypatch, data_files, tmp_path) -> None:
    def interrupted(kwargs: dict) -> None:
        out = Path(kwargs["output_dir"])
        out.mkdir(parents=True, exist_ok=True)
        (out / "checkpoint.pt").write_bytes(b"state")
        (out / "checkpoint.pt.tmp").write_bytes(b"half")
        (out / ".model.tpn.1.ab.tmp").write_bytes(b"half")
        raise KeyboardInterrupt

    _stub_training(monkeypatch, interrupted)
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["train", "--train", str(data_files["train"]), "--output", str(out)]
    )
    assert result.exit_code == 130
    assert f"textproj train --resume {out}" in " ".join(result.output.split())
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt"]


def test_train_warns_of_blank_texts_and_shows_training_warnings(monkeypatch, tmp_path) -> None:
    def warn_then_stop(kwargs: dict) -> None:
        warnings.warn("d.jsonl: 1 label(s) never seen in training: 'neutral'", stacklevel=1)
        raise KeyboardInterrupt

    calls = _stub_training(monkeypatch, warn_then_stop)
    write_dataset(
        Dataset(["good", "", "bad", "  ", "fine"], list("pnpnp"), "t"), tmp_path / "t.tsv"
    )
    args = ["train", "--train", str(tmp_path / "t.tsv"), "--output", str(tmp_path / "out")]
    result = runner.invoke(app, [*args, "--lr", "0.01", "--patience", "2"])
    lines = result.output.splitlines()
    assert (
        "warning: " + str(tmp_path / "t.tsv") + ": 2 of 5 texts are empty or white space only"
        in lines
    )
    assert "warning: d.jsonl: 1 label(s) never seen in training: 'neutral'" in lines
    config = calls[0]["config"]
    assert (config.learning_rate, config.patience) == (0.01, 2)


def test_train_writes_trainings_api_words_as_its_options(monkeypatch, tmp_path) -> None:
    """Training's messages name the API's arguments (FeatureConfig.max_tokens, dev_data); train
    names its options for them, in warnings and errors alike."""
    from textproj.training import refuse_empty_dev, warn_long_texts

    def warn_then_refuse(kwargs: dict) -> None:
        warn_long_texts("t.tsv", 2, 2, 8)
        refuse_empty_dev("t.tsv", 2, 0)

    _stub_training(monkeypatch, warn_then_refuse)
    write_dataset(Dataset(["good", "bad"], list("pn"), "t"), tmp_path / "t.tsv")
    args = ["train", "--train", str(tmp_path / "t.tsv"), "--output", str(tmp_path / "out")]
    result = runner.invoke(app, [*args, "--quiet"])  # quiet: no note of a first compile
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "warning: t.tsv: 2 of 2 training texts (100%) reach the 8-token cap; no token past it "
        "is read (--max-tokens)",
        "error: t.tsv: 2 training examples leave none for a dev split (every label keeps one "
        "for training); give a dev set (--dev) or more examples",
    ]


def test_train_notes_a_first_compile_unless_quiet(monkeypatch, data_files, tmp_path) -> None:
    _stub_training(monkeypatch, lambda kwargs: (_ for _ in ()).throw(KeyboardInterrupt))
    asked = []

    def not_compiled(dispatchers) -> bool:
        asked.append([d.py_func.__name__ for d in dispatchers])
        return False

    monkeypatch.setattr("textproj.cli.compiled", not_compiled)
    args = ["train", "--train", str(data_files["train"])]
    result = runner.invoke(app, [*args, "--output", str(tmp_path / "a"), "--design", "text"])
    note = "compiling textproj's text-design kernels for this machine: about 15 s, once per install"
    assert note in " ".join(result.output.split())
    assert asked[0][0] == "project_texts"
    quiet = runner.invoke(app, [*args, "--output", str(tmp_path / "b"), "--quiet"])
    assert "compiling" not in quiet.output
    assert len(asked) == 1  # --quiet does not even look
    monkeypatch.setattr("textproj.cli.compiled", lambda dispatchers: True)
    cached = runner.invoke(app, [*args, "--output", str(tmp_path / "c")])
    assert "compiling" not in cached.output


def test_predict_notes_a_first_compile_on_stderr(monkeypatch, trained: Path) -> None:
    asked = []
    monkeypatch.setattr("textproj.cli.compiled", lambda kernels: asked.append(kernels) or False)
    result = runner.invoke(app, ["predict", str(trained), "great film"])
    assert result.exit_code == 0, result.output
    note = "compiling textproj's token-design kernels for this machine"
    assert note in result.stderr
    assert note not in result.stdout and len(result.stdout.splitlines()) == 1
    assert [kernel.py_func.__name__ for kernel in asked[0]][:2] == [
        "project_tokens",
        "count_tokens",
    ]


def test_train_options_reach_the_config(monkeypatch, data_files, tmp_path) -> None:
    calls = _stub_training(monkeypatch, lambda kwargs: (_ for _ in ()).throw(KeyboardInterrupt))
    options = ["--threads", "2", "--batch-size", "8", "--lr", "0.004", "--patience", "3"]
    options += ["--dev-fraction", "0.2", "--trainer-buckets", "1024", "--design", "text"]
    options += ["--trainer", "lstm", "-T", "4", "-d", "8", "--hidden", "16,8", "--seed", "7"]
    options += ["--trainer-table-lr", "0.2", "--trainer-dropout", "0.3", "--weight-bits", "8"]
    options += ["--max-tokens", "512", "--augment", "1", "--consistency", "0.5"]
    args = ["train", "--train", str(data_files["train"]), "--output", str(tmp_path / "o")]
    runner.invoke(app, [*args, *options])
    assert calls[0]["config"] == TrainConfig(
        threads=2, batch_size=8, learning_rate=0.004, patience=3, dev_fraction=0.2,
        trainer_buckets=1024, design="text", trainer="lstm", num_projections=4,
        bits_per_projection=8, hidden=(16, 8), seed=7, trainer_table_learning_rate=0.2,
        trainer_dropout=0.3, weight_bits=8, augment_copies=1, consistency=0.5,
    )  # fmt: skip
    assert calls[0]["features"] == FeatureConfig(max_tokens=512)
    token = ["--bottleneck", "24", "--filters", "12", "--max-pool", "--no-mean-pool"]
    runner.invoke(app, [*args, *token])
    assert calls[1]["config"] == TrainConfig(
        bottleneck=24, filters=12, max_pool=True, mean_pool=False
    )


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--hidden", "64"], "--hidden sets the text design's network; it does not go with "
         "--design token"),
        (["--design", "token", "--hidden", "8"], "--hidden sets the text design's network; it "
         "does not go with --design token"),
        (["--design", "text", "--bottleneck", "8"], "--bottleneck sets the token design's "
         "network; it does not go with --design text"),
        (["--design", "text", "--filters", "8"], "--filters sets the token design's network; it "
         "does not go with --design text"),
        (["--design", "text", "--no-max-pool"], "--max-pool/--no-max-pool sets the token "
         "design's network; it does not go with --design text"),
        (["--design", "text", "--mean-pool"], "--mean-pool/--no-mean-pool sets the token "
         "design's network; it does not go with --design text"),
        (["--design", "text", "--hidden", "65537"], "--hidden, --projections, --bits: layer "
         "'dense.0' would hold 65537 x 1120 = 73,401,440 weights (80 x 14 input bits, 2 labels), "
         "over the 67,108,864 a model file can hold; make it smaller"),
        (["--design", "text", "--hidden", "8,8388609"], "--hidden: layer 'dense.1' would hold "
         "8388609 x 8 = 67,108,872 weights (80 x 14 input bits, 2 labels), over the 67,108,864 a "
         "model file can hold; make it smaller"),
        (["-T", "256", "-d", "256", "--bottleneck", "1025"], "--bottleneck, --projections, "
         "--bits: layer 'bottleneck' would hold 1025 x 65536 = 67,174,400 weights (256 x 256 "
         "input bits, 2 labels), over the 67,108,864 a model file can hold; make it smaller"),
    ],
)  # fmt: skip
def test_train_refuses_a_network_option_it_cannot_use_before_training(
    monkeypatch, tmp_path: Path, args: list[str], line: str
) -> None:
    """An option of the other design's network, or a layer a model file cannot hold."""
    calls = _stub_training(monkeypatch, lambda kwargs: None)
    result = runner.invoke(app, ["train", "--output", str(tmp_path / "o"), *args])
    assert result.exit_code == 2
    assert result.stderr == f"error: {line}\n"
    assert calls == [] and not (tmp_path / "o").exists()


def test_training_refuses_an_output_layer_a_model_file_cannot_hold() -> None:
    from textproj.training import train

    labels = [f"l{i}" for i in range(40)]
    data = Dataset([f"text {label}" for label in labels] * 2, labels * 2, "many")
    config = TrainConfig(design="text", hidden=(2**21,), num_projections=1, bits_per_projection=1)
    with pytest.raises(ConfigError) as refused:  # dense.0 (2**21 x 1) fits, dense.1 does not
        train(data, data, config=config, progress=False)
    assert str(refused.value) == (
        "TrainConfig.hidden: layer 'dense.1' would hold 40 x 2097152 = 83,886,080 weights "
        "(1 x 1 input bits, 40 labels), over the 67,108,864 a model file can hold; make it smaller"
    )


def test_processes_pass_each_given_option_to_the_workers(monkeypatch, data_files) -> None:
    """An --x/--no-x pair reaches the workers as given: --no-max-pool is not left to the
    default."""
    from textproj import distributed

    launched = []
    monkeypatch.setattr(distributed, "launch", lambda n, args: launched.append((n, args)) or 0)
    options = ["--no-max-pool", "--mean-pool", "--epochs", "3", "--processes", "2"]
    result = runner.invoke(app, ["train", "--train", str(data_files["train"]), *options])
    assert result.exit_code == 0, result.output
    n, args = launched[0]
    assert n == 2 and "--processes" not in args
    assert {"--no-max-pool", "--mean-pool"} <= set(args) and "--max-pool" not in args
    assert args[args.index("--epochs") + 1] == "3"


def test_ctrl_c_before_torchrun_runs_is_the_interrupted_note(monkeypatch, data_files, tmp_path):
    """A Ctrl-C to --processes's launcher before torchrun's handler is in place (while it loads
    torch) exits 130 with the note, as one later does (was: typer's silent exit 130)."""
    from textproj import distributed

    def interrupted(n: int, args: list[str]) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(distributed, "launch", interrupted)
    out = tmp_path / "run"
    args = ["train", "--train", str(data_files["train"]), "--output", str(out), "--processes", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 130
    assert " ".join(result.output.split()) == (
        "interrupted before a checkpoint was written (one is written at the end of the first "
        "epoch after every --checkpoint-every seconds)"
    )
    assert not out.exists()


def test_ctrl_c_during_a_deferred_block_comes_after_it() -> None:
    """The import of torch runs whole: a Ctrl-C during it raises KeyboardInterrupt only after
    it, and Ctrl-C's handler is Python's own again."""
    from textproj.cli import _ctrl_c_deferred

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        finished = []
        with pytest.raises(KeyboardInterrupt), _ctrl_c_deferred():
            signal.raise_signal(signal.SIGINT)
            finished.append(True)
        assert finished == [True]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_version_and_help_text() -> None:
    assert runner.invoke(app, ["--version"]).output.strip() == f"textproj {textproj.__version__}"
    train_help = " ".join(runner.invoke(app, ["train", "--help"]).output.split())
    assert "--design <token|text> Projection network. [default: token]" in train_help
    assert "--trainer <ffn|lstm>" in train_help and "<bool>" not in train_help
    assert "--corpus <str> Bundled corpus to train on [default: banking77]." in train_help
    sweep_help = " ".join(runner.invoke(app, ["sweep", "--help"]).output.split())
    for option in ("-T, --projections <str> T values", "-d, --bits <str> d values"):
        assert f"{option}, comma-separated [default: " in sweep_help
    assert "separated: 8 and/or 4. [default: 4]" in sweep_help and "(8, 4)" not in sweep_help
    evaluate_help = " ".join(runner.invoke(app, ["evaluate", "--help"]).output.split())
    assert "[default: the one the model was trained on]" in evaluate_help
    predict_help = runner.invoke(app, ["predict", "--help"], prog_name="textproj").output
    assert "top 5 probabilities (with -k, the top k)" in " ".join(predict_help.split())
    assert "Usage: textproj predict [OPTIONS] MODEL [TEXTS...]" in predict_help
    for command in ("train", "evaluate", "predict", "info", "sweep", "export", "corpora"):
        usage = runner.invoke(app, [command, "--help"], prog_name="textproj").output
        assert usage.startswith(f"Usage: textproj {command} [OPTIONS]") and "{" not in usage
        assert "<bool>" not in usage


@pytest.mark.parametrize("module", ["textproj", "textproj.cli"])
def test_python_dash_m_runs_the_command(module: str) -> None:
    root = Path(textproj.__file__).parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-m", module, "--version"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"textproj {textproj.__version__}"
    usage = subprocess.run(
        [sys.executable, "-m", module, "predict", "--help"], capture_output=True, text=True, env=env
    )
    assert usage.stdout.startswith("Usage: textproj predict [OPTIONS] MODEL")


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "sweep"])
def test_help_examples_are_command_lines_that_parse(command: str) -> None:
    usage = runner.invoke(app, [command, "--help"], prog_name="textproj").output
    examples = usage.split("\n  Examples:\n")[1].splitlines()
    assert len(examples) >= 2 and all(len(line) < 80 for line in examples)
    parser = typer.main.get_command(app).commands[command]
    for line in examples:
        args = shlex.split(line.split(" # ")[0].split(" | ")[-1])
        assert args[:2] == ["textproj", command], line
        parser.make_context(command, args[2:])  # an unknown option or bad value raises


def test_corpus_registry_errors_are_one_line(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TEXTPROJ_CORPORA", str(tmp_path / "missing"))
    for args in (["corpora"], ["train", "--corpus", "banking77"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert "TEXTPROJ_CORPORA" in result.output


def test_messages_are_printed_verbatim(tmp_path: Path) -> None:
    odd = tmp_path / "[bold]x:train:"
    odd.mkdir()
    result = runner.invoke(app, ["train", "--train", str(odd / "d.tsv")])
    assert f"error: {odd / 'd.tsv'}: no such file" in result.output


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
    assert not Path("textproj-model").exists()


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
              on_epoch=stop_after_first_epoch, checkpoint_seconds=0)  # fmt: skip
    train(*data, config=config, output_dir=tmp_path / "a", progress=False)
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "b"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "b" / MODEL_NAME).read_bytes() == (tmp_path / "a" / MODEL_NAME).read_bytes()
    again = runner.invoke(app, ["train", "--resume", str(tmp_path / "b")])
    assert again.exit_code == 1 and "no checkpoint to resume" in again.output
    mixed = runner.invoke(app, ["train", "--resume", str(tmp_path / "b"), "--epochs", "9"])
    assert mixed.exit_code == 2 and "Traceback" not in mixed.output
    assert "give no other data or model options (got --epochs)" in " ".join(mixed.output.split())


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
    result = runner.invoke(app, [*args, "--output", str(out), *TINY], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["multi_label"] and "micro_f1" in metrics["projection"]["dev"]
    summary = " ".join(result.output.split())
    assert "dev micro-F1" in summary and "test exact-set acc" in summary
    scored = runner.invoke(app, ["evaluate", str(out), "--test", str(tmp_path / "test.tsv")])
    assert scored.exit_code == 0, scored.output
    scores = json.loads(
        runner.invoke(
            app, ["evaluate", str(out), "--test", str(tmp_path / "test.tsv"), "--json"]
        ).output
    )
    assert set(scores) >= {"accuracy", "micro_f1", "macro_f1", "n", "unseen_labels"}
    assert scores["n"] == 60
    text = "is it good? what do you think?"
    predicted = runner.invoke(app, ["predict", str(out), text])
    assert predicted.exit_code == 0, predicted.output
    clf = textproj.load(out)
    fields = predicted.output.rstrip("\n").split("\t")
    assert sorted(fields[::2]) == sorted(clf.predict([text])[0])
    everything = runner.invoke(app, ["predict", str(out), "--threshold", "0", text]).output
    assert len(everything.split("\t")) == 2 * len(clf.labels)


@pytest.mark.slow
def test_named_columns_for_train_evaluate_and_unlabeled(tmp_path: Path) -> None:
    from conftest import tiny_banking

    data = tiny_banking(160)
    named = tmp_path / "named.csv"
    with named.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["intent", "utterance"])
        writer.writerows(zip(data.labels, data.texts, strict=True))
    more = tmp_path / "more.jsonl"
    more.write_text("".join(json.dumps({"utterance": t}) + "\n" for t in data.texts[:30]))
    columns = ["--text-column", "utterance", "--label-column", "intent"]
    options = ["--epochs", "1", "-T", "8", "-d", "16", "--bottleneck", "16", "--quiet"]
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["train", "--train", str(named), "--test", str(named), "--unlabeled", str(more),
              "--output", str(out), *columns, *options],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert sorted(metrics["labels"]) == sorted(set(data.labels))
    assert metrics["projection"]["test"]["n"] == 160
    scored = runner.invoke(app, ["evaluate", str(out), "--test", str(named), *columns, "--json"])
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.output)["n"] == 160
    unnamed = runner.invoke(app, ["evaluate", str(out), "--test", str(named)])
    assert unnamed.exit_code == 1
    assert "header has no 'text' column (found: ['intent', 'utterance']; --text-column" in " ".join(
        unnamed.output.split()
    )
    memory, streamed = tmp_path / "m", tmp_path / "s"  # a streamed run makes no augmented copies
    options += ["--augment", "0", "--unlabeled", str(more)]  # streamed by its named column too
    for out, extra in ((memory, []), (streamed, ["--stream", "--cache-dir", str(tmp_path / "c")])):
        result = runner.invoke(
            app, ["train", "--train", str(named), "--output", str(out), *columns, *options, *extra]
        )
        assert result.exit_code == 0, result.output
    assert (streamed / "model.tpn").read_bytes() == (memory / "model.tpn").read_bytes()
    assert json.loads((streamed / "metrics.json").read_text())["transfer_texts"] == 30


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_an_unwritable_output_is_named_not_its_hidden_temporary(tmp_path: Path) -> None:
    """Where nothing can be created (/proc), export and the atomic writer name the path given;
    they named the hidden staging or temporary sibling (/proc/.x.1234.abcd.tmp)."""
    from textproj import fsio

    model = Path(__file__).parents[1] / "app" / "models" / "banking77" / "model.tpn"
    for option in ("--c", "--wasm"):
        result = runner.invoke(app, ["export", str(model), option, "/proc/textproj-export"])
        assert result.exit_code == 1, result.output
        assert result.output.strip().splitlines() == [
            "error: cannot write /proc/textproj-export: No such file or directory"
        ]
    with pytest.raises(FileNotFoundError, match=r"^cannot write /proc/textproj\.txt: No such"):
        fsio.write_bytes("/proc/textproj.txt", b"x")


@pytest.mark.parametrize("stream", [False, True], ids=["in-memory", "streamed"])
def test_train_into_a_pipe_prints_nothing_but_an_error_on_bad_unlabeled_texts(
    data_files: dict[str, Path], tmp_path: Path, stream: bool
) -> None:
    """Not a terminal: the progress displays print nothing (they printed a blank line)."""
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\n\xff bad\n")
    args = ["train", "--train", str(data_files["train"]), "--unlabeled", str(bad)]
    args += ["--output", str(tmp_path / "o"), "--epochs", "1"]
    if stream:
        args += ["--stream", "--cache-dir", str(tmp_path / "c")]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == f"error: {bad}:2: invalid UTF-8 (byte 0xff)"


def test_train_into_a_pipe_prints_its_summary_alone_on_stdout(
    data_files: dict[str, Path], tmp_path: Path
) -> None:
    """Without --quiet and not on a terminal: no bar or reading spinner on either stream
    (stdout had the last epoch's bar line and a blank line before the table), and each
    epoch's summary as one plain line on stderr, so a log file still shows the run."""
    unlabeled = tmp_path / "more.txt"
    unlabeled.write_text("a fine film\nawful\n")
    args = ["train", "--train", str(data_files["train"]), "--unlabeled", str(unlabeled)]
    args += ["--output", str(tmp_path / "o"), "--epochs", "1", "--bottleneck", "16"]
    result = runner.invoke(app, [*args, "--filters", "16"])
    assert result.exit_code == 0, result.output
    printed = " ".join(result.stdout.split())  # the table and summary, wrapped at 80 columns
    assert printed.startswith(f"textproj on {data_files['train']} ┏━")
    assert printed.endswith(f"s; written to {tmp_path / 'o'}/")
    assert "epoch" not in result.stdout and "reading" not in result.output
    epochs = [line for line in result.stderr.splitlines() if line.startswith("epoch")]
    assert len(epochs) == 1 and re.fullmatch(
        r"epoch 1  loss \d+\.\d{3}  dev acc \d\.\d{4} \(trainer \d\.\d{4}\)", epochs[0]
    ), result.stderr
    assert "━" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--text-column", "review", "hi"], "--text-column names a column of a .tsv/.csv/.jsonl"),
        (["--text-column", "review", "-i", "IN"], "--text-column names a column of a .tsv/.csv"),
        (["hi", "--input", "IN"], "give texts as arguments or with --input, not both"),
        (["hi", "--input", "IN", "--ensemble"], "give texts as arguments or with --input, not"),
    ],
)
def test_predict_refuses_a_bad_command_line_before_loading_the_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str], message: str
) -> None:
    """The model's load can compile kernels for 15 s first: a usage error does not wait."""

    def unexpected(path: Path) -> None:
        raise AssertionError(f"the model was loaded: {path}")

    monkeypatch.setattr("textproj.cli._load_model", unexpected)
    monkeypatch.setattr("textproj.cli._load_ensemble", unexpected)
    (tmp_path / "in.txt").write_text("a text\n")
    given = [str(tmp_path / "in.txt") if arg == "IN" else arg for arg in args]
    result = runner.invoke(app, ["predict", str(tmp_path / "model"), *given])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())
    assert result.stdout == ""


BUNDLED_MODEL = Path(__file__).resolve().parents[1] / "app" / "models" / "banking77"


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["--test", "T.txt", "--text-column", "body"], "--text-column names a column of a "
         ".tsv/.csv/.jsonl --test file", 2),
        (["--test", "T.txt", "--text-column", "body", "--label-column", "topic"],
         "--text-column and --label-column name columns of a .tsv/.csv/.jsonl --test file", 2),
        (["--test", "T.txt", "--label-column", "topic", "--ensemble"], "--label-column names a "
         "column of a .tsv/.csv/.jsonl --test file", 2),
        (["--corpus", "nosuch"], "unknown corpus 'nosuch'; known corpora: banking77", 1),
        (["--json", "--confusion"], "--confusion adds the whole matrix to the text report; "
         "--json holds it already", 2),
        ([], "give --corpus or --test (no metrics.json of this model beside MODEL says", 2),
    ],
)  # fmt: skip
def test_evaluate_refuses_a_bad_command_line_before_loading_the_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str], message: str, code: int
) -> None:
    """As predict's: the model's load can compile kernels for 15 s first (was: a --test file
    without columns, an unknown --corpus and a model whose corpus nothing says were refused
    after it)."""

    def unexpected(path: Path) -> None:
        raise AssertionError(f"the model was loaded: {path}")

    monkeypatch.setattr("textproj.cli._load_model", unexpected)
    monkeypatch.setattr("textproj.cli._load_ensemble", unexpected)
    model = tmp_path / "model.tpn"  # no metrics.json beside it
    model.write_bytes((BUNDLED_MODEL / "model.tpn").read_bytes())
    (tmp_path / "t.txt").write_text("__label__a a text\n")
    given = [str(tmp_path / "t.txt") if arg == "T.txt" else arg for arg in args]
    result = runner.invoke(app, ["evaluate", str(model), *given])
    assert result.exit_code == code, result.output
    assert message.replace("MODEL", str(model)) in " ".join(result.stderr.split())
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["predict", "OLD", "a text"],
        ["evaluate", "OLD", "--test", "TEST"],
        ["export", "OLD", "--c", "C"],
    ],
)
def test_a_model_files_load_warning_is_one_warning_line(tmp_path: Path, args: list[str]) -> None:
    """predict, evaluate and export show it as train does (was: a Python ``file:line:
    UserWarning`` with its source line)."""
    (tmp_path / "old").mkdir()
    model = tmp_path / "old" / "model.tpn"
    model.write_bytes(old_unicode_model(BUNDLED_MODEL))
    test = load_corpus("banking77", "test")
    write_dataset(Dataset(test.texts[:5], test.labels[:5], "t"), tmp_path / "t.tsv")
    paths = {"OLD": str(model), "TEST": str(tmp_path / "t.tsv"), "C": str(tmp_path / "c")}
    result = runner.invoke(app, [paths.get(arg, arg) for arg in args])
    assert result.exit_code == 0, result.output
    (warning,) = load_warnings(read_model(model)[0], str(model))
    assert [line for line in result.stderr.splitlines() if "Unicode" in line] == [
        f"warning: {warning}"
    ]
    assert "UserWarning" not in result.stderr


def test_evaluate_plot_without_matplotlib_is_refused_before_the_model_loads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--plot's matplotlib is checked with the command line (was: after the whole test set was
    scored)."""
    import importlib.util

    def unexpected(path: Path) -> None:
        raise AssertionError(f"the model was loaded: {path}")

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else find_spec(name, *a),
    )
    monkeypatch.setattr("textproj.cli._load_model", unexpected)
    plot = tmp_path / "c.png"
    result = runner.invoke(app, ["evaluate", str(BUNDLED_MODEL), "--plot", str(plot)])
    assert result.exit_code == 1, result.output
    assert result.stderr == f"error: {plot}: plotting needs matplotlib (pip install matplotlib)\n"
    assert result.stdout == "" and not plot.exists()


def test_evaluate_plot_of_a_multi_label_model_is_refused_before_scoring(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A multi-label model has no confusion matrix: refused once it loads (was: after the whole
    test set was scored)."""
    from types import SimpleNamespace

    def unexpected(*args: object) -> None:
        raise AssertionError("the test set was scored")

    multi_label = SimpleNamespace(multi_label=True, labels=("a", "b"))
    monkeypatch.setattr("textproj.cli._load_model", lambda path: multi_label)
    monkeypatch.setattr("textproj.evaluation.evaluate", unexpected)
    monkeypatch.setattr("textproj.cli._read", unexpected)
    (tmp_path / "t.tsv").write_text("text\tlabel\na text\ta|b\n")
    plot = tmp_path / "c.png"
    args = ["evaluate", str(BUNDLED_MODEL), "--test", str(tmp_path / "t.tsv"), "--plot", str(plot)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert result.stderr == f"error: {plot}: a multi-label model has no confusion matrix to plot\n"
    assert result.stdout == "" and not plot.exists()


@pytest.mark.parametrize("command", ["train", "sweep"])
@pytest.mark.parametrize(
    ("files", "columns", "message"),
    [
        ({"--train": "x.txt"}, ["--text-column", "body"],
         "--text-column names a column of a .tsv/.csv/.jsonl --train file"),
        ({"--train": "t.tsv", "--dev": "x.ft"}, ["--label-column", "topic"],
         "--label-column names a column of a .tsv/.csv/.jsonl --dev file"),
        ({"--train": "t.tsv", "--test": "x.txt"}, ["--text-column", "b", "--label-column", "y"],
         "--text-column and --label-column name columns of a .tsv/.csv/.jsonl --test file"),
    ],
)  # fmt: skip
def test_train_and_sweep_refuse_columns_of_a_columnless_file_as_usage(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    command: str,
    files: dict[str, str],
    columns: list[str],
    message: str,
) -> None:
    """A .txt/.ft data file has no columns to name: a usage error with the command line's
    checks, predict's and evaluate's message (was: exit 1 once the file was read)."""

    def unexpected(*args: object) -> None:
        raise AssertionError("a data file was read")

    monkeypatch.setattr("textproj.cli._read", unexpected)
    (tmp_path / "t.tsv").write_text("body\ttopic\na text\ta\nanother\tb\n")
    for name in ("x.txt", "x.ft"):
        (tmp_path / name).write_text("__label__a a text\n__label__b another\n")
    given = [part for option, name in files.items() for part in (option, str(tmp_path / name))]
    args = [command, *given, *columns, "--output", str(tmp_path / "out")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: {message}\n"
    assert result.stdout == "" and not (tmp_path / "out").exists()
