"""The comparison harness (benchmarks/compare.py) in quick mode, so that it cannot rot.

Peers whose package is not installed (CI installs only ``.[dev]``) are skipped by the harness
itself; textproj always runs.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import compare  # noqa: E402
import tune  # noqa: E402
from harness import report  # noqa: E402

from textproj.config import TrainConfig  # noqa: E402
from textproj.data import Dataset  # noqa: E402
from textproj.metrics import classification_scores  # noqa: E402
from textproj.training import train  # noqa: E402


@pytest.mark.slow
def test_quick_run_measures_textproj_and_installed_peers(tmp_path: Path) -> None:
    compare.main(["--quick", "--corpora", "banking77", "--out", str(tmp_path)])

    results = tmp_path / "benchmarks-results"
    run = json.loads((results / "run.json").read_text("utf-8"))
    assert run["quick"] is True
    assert run["versions"]["textproj"] != "not installed"
    result = json.loads((results / "banking77.json").read_text("utf-8"))
    assert result["sizes"] == compare.QUICK_SIZES
    rows = {row["system"]: row for row in result["rows"]}
    expected_families = {"textproj"} | {
        family for family, ok in compare.installed_peers().items() if ok
    }
    assert {row["family"] for row in rows.values()} == expected_families

    ours = rows[report.ON_DEVICE]
    assert ours["n_test"] == compare.QUICK_SIZES["test"]
    # The reported scores are those of the model the same training gives (it is deterministic).
    splits = compare.load_splits("banking77", quick=True)
    again = train(
        splits.train, splits.dev, config=TrainConfig.from_dict(ours["params"]["train"]),
        progress=False,
    ).classifier  # fmt: skip
    expected = classification_scores(splits.test.labels, again.predict(splits.test.texts))
    assert (ours["accuracy"], ours["macro_f1"]) == pytest.approx(
        (expected["accuracy"], expected["macro_f1"])
    )
    assert 10_000 < ours["model_bytes"] < 1_000_000  # an int8 model.tpn
    trainer = rows["textproj trainer (torch)"]
    assert trainer["model_bytes"] > ours["model_bytes"]
    ensemble = rows["textproj ensemble (torch)"]
    assert ensemble["model_bytes"] == trainer["model_bytes"] + ours["model_bytes"]
    for row in rows.values():
        assert row["texts_per_second"] > 0
        assert row["predict_peak_delta_kib"] >= 0
        assert row["peak_rss_kib"] > 0

    stages = [row["stage"] for row in result["stages"]["rows"]]
    assert stages[-1] == "end to end (predict)"
    assert any("distinct tokens" in stage for stage in stages)

    text = (tmp_path / report.REPORT_NAME).read_text("utf-8")
    assert "## banking77" in text and "quick mode" in text
    assert f"| {report.ON_DEVICE} |" in text
    assert "Where textproj's predict time goes" in text
    plots = [report.ACCURACY_PLOT, report.SPEED_PLOT]
    if importlib.util.find_spec("matplotlib") is not None:
        assert all((tmp_path / name).stat().st_size > 0 for name in plots)

    (tmp_path / report.REPORT_NAME).unlink()
    compare.main(["--report-only", "--out", str(tmp_path)])
    assert (tmp_path / report.REPORT_NAME).read_text("utf-8") == text


def test_goal_lines_check_size_accuracy_and_speed() -> None:
    def row(system: str, family: str, accuracy: float, size: int, speed: float) -> dict:
        return {
            "system": system,
            "family": family,
            "accuracy": accuracy,
            "model_bytes": size,
            "texts_per_second": speed,
        }

    rows = [
        row(report.ON_DEVICE, "textproj", 0.90, 80_000, 50_000),
        row("fastText defaults, quantized", "fastText", 0.905, 500_000, 100_000),
        row("TF-IDF", "scikit-learn", 0.95, 30_000_000, 10_000),
    ]
    lines = "\n".join(report.goal_lines(rows))
    assert "6.2× larger (met" in lines
    assert "fastText defaults, quantized at 0.905" in lines and "0.5 points behind; met" in lines
    assert "= 0.50× (NOT met" in lines


def test_a_cut_train_split_keeps_as_many_texts_of_each_label_in_order() -> None:
    labels = ["a"] * 10 + ["b"] * 3 + ["c"] * 7
    data = Dataset([f"text {i}" for i in range(len(labels))], labels, "corpus")
    cut = tune.cut_train(data, 12)
    assert sorted(cut.labels) == ["a"] * 4 + ["b"] * 3 + ["c"] * 4  # b has only 3
    assert cut.texts == sorted(cut.texts, key=lambda t: int(t.split()[1]))  # original order
    assert [data.labels[int(t.split()[1])] for t in cut.texts] == cut.labels
    assert tune.cut_train(data, 12).texts == cut.texts
    assert tune.cut_train(data, 12, seed=1).texts != cut.texts


def test_train_folds_partition_each_label_and_keep_the_order() -> None:
    labels = ["a"] * 9 + ["b"] * 4 + ["c"] * 2
    data = Dataset([f"text {i}" for i in range(len(labels))], labels, "corpus")
    folds = [tune.train_fold(data, 3, f) for f in range(3)]
    devs = [dev.texts for _, dev in folds]
    assert sorted(t for texts in devs for t in texts) == sorted(data.texts)  # each dev once
    for (rest, dev), texts in zip(folds, devs, strict=True):
        assert sorted(rest.texts + dev.texts) == sorted(data.texts)
        assert rest.texts == [t for t in data.texts if t not in texts]  # the original order
        assert [data.labels[int(t.split()[1])] for t in dev.texts] == dev.labels
    assert [dev.labels.count("a") for _, dev in folds] == [3, 3, 3]  # dealt per label
    assert sorted(dev.labels.count("b") for _, dev in folds) == [1, 1, 2]
    assert tune.train_fold(data, 3, 1)[1].texts == devs[1]
    assert folds[0][1].source == "corpus[fold 0 of 3]"


def test_some_labels_keeps_the_same_drawn_labels_in_every_split() -> None:
    train_data = Dataset([f"t{i}" for i in range(12)], list("abcdef" * 2), "train")
    test_data = Dataset(["x", "y", "z"], ["a", "b", "f"], "test")
    kept_train, kept_test = tune.some_labels([train_data, test_data], 3)
    labels = set(kept_train.labels)
    assert len(labels) == 3 and set(kept_test.labels) <= labels
    assert kept_train.texts == [
        t for t, y in zip(train_data.texts, train_data.labels, strict=True) if y in labels
    ]
    assert kept_test.texts == [
        t for t, y in zip(test_data.texts, test_data.labels, strict=True) if y in labels
    ]
    assert kept_train.source == "train[3 labels]"
    assert tune.some_labels([train_data], 3, seed=0)[0].labels == kept_train.labels
    assert any(
        tune.some_labels([train_data], 3, seed=s)[0].labels != kept_train.labels for s in (1, 2, 3)
    )


def test_long_documents_join_texts_of_their_label_and_of_others() -> None:
    labels = ["a", "b", "c"] * 20
    data = Dataset([f"{label}{i}" for i, label in enumerate(labels)], labels, "corpus")
    docs = tune.long_documents(data, 7, seed=3)
    assert docs.labels == ["a", "b", "c", "a", "b", "c", "a"] and docs.source.endswith(
        "[7 long documents]"
    )
    for text, label in zip(docs.texts, docs.labels, strict=True):
        parts = [part.rstrip(".") for part in text.split()]
        assert len(parts) == tune.DOC_OWN + tune.DOC_OTHERS
        assert sum(part[0] == label for part in parts) == tune.DOC_OWN
        assert set(parts) <= set(data.texts)
    assert tune.long_documents(data, 7, seed=3).texts == docs.texts
    assert tune.long_documents(data, 7, seed=4).texts != docs.texts
