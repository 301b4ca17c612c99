"""What ``textproj evaluate`` reports: scores, per-label scores, confusions, a predictions file.

:func:`evaluate` scores a classifier on a labelled dataset once and returns everything as a JSON
-ready dict; the writers turn that dict (and the predictions) into a TSV/JSONL file or a PNG.
Labels the model was not trained on count as errors and are listed.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from textproj import fsio
from textproj.data import Dataset, name_parts
from textproj.errors import ConfigError, DataError
from textproj.metrics import (
    classification_scores,
    confused_pairs,
    confusion_matrix,
    multilabel_scores,
    per_label_scores,
)

if TYPE_CHECKING:
    from textproj.ensemble import EnsembleModel
    from textproj.runtime import Classifier

WORST_PAIRS = 10  # confused pairs listed
PREDICTION_FORMATS = (".tsv", ".csv", ".jsonl")  # each may end in .gz too (gzipped)


def label_sets(labels: list) -> list[tuple[str, ...]]:
    """Each example's labels as a tuple (single-label data gives one-label tuples)."""
    return [tuple(label) if isinstance(label, tuple | list) else (label,) for label in labels]


def evaluate(
    classifier: Classifier | EnsembleModel, data: Dataset
) -> tuple[dict[str, Any], list, np.ndarray]:
    """(report, predictions, probabilities) of ``classifier`` (the on-device model, or the
    served ensemble) on ``data``.

    The report holds accuracy and macro-F1 (multi-label: subset accuracy and micro-F1 too),
    ``per_label`` precision/recall/F1/support, for single-label models the ``confusion`` matrix
    (rows gold, columns predicted, over the model's labels then any unseen gold labels) and the
    ``confused_pairs`` most often mistaken, and the ``unseen_labels``.
    """
    predictions = classifier.predict(data.texts)
    probabilities = classifier.predict_proba(data.texts)
    multi = classifier.multi_label
    score = multilabel_scores if multi else classification_scores
    report: dict[str, Any] = dict(score(data.labels, predictions))
    gold_sets = label_sets(data.labels)
    known = set(classifier.labels)
    unseen = sorted({label for labels in gold_sets for label in labels if label not in known})
    labels = [*classifier.labels, *unseen]
    report["per_label"] = per_label_scores(gold_sets, label_sets(predictions), labels)
    if not multi:
        matrix = confusion_matrix(data.labels, predictions, labels)
        report["confusion"] = {"labels": labels, "matrix": matrix}
        report["confused_pairs"] = confused_pairs(matrix, labels, WORST_PAIRS)
    report["unseen_labels"] = unseen
    report["unseen_examples"] = sum(not known.issuperset(labels) for labels in gold_sets)
    return report, predictions, probabilities


def predictions_format(path: str | os.PathLike[str]) -> tuple[str, bool]:
    """The format (one of ``PREDICTION_FORMATS``) and gzip flag a predictions file's name asks
    for; ConfigError for a name that asks for another (``x.json``, ``x.gz``), so nothing is
    written under a name that belies its content."""
    extension, gzipped = name_parts(Path(path))
    if extension not in PREDICTION_FORMATS:
        shown = ", ".join(PREDICTION_FORMATS)
        raise ConfigError(
            f"{path}: predictions are written as {shown} (each optionally .gz); "
            "give a name ending in one of them"
        )
    return extension, gzipped


def write_predictions(
    path: str | os.PathLike[str],
    data: Dataset,
    predictions: list,
    probabilities: np.ndarray,
    labels: list[str],
) -> None:
    """Each example's text, gold label, predicted label and its probability, as JSONL (``.jsonl``),
    CSV (``.csv``) or TSV (``.tsv``; multi-labels joined with ``|``), gzipped for a name ending
    in ``.gz``, written atomically: a file ``read_dataset`` reads back as the texts with their
    gold labels. Another name is refused (:func:`predictions_format`)."""
    extension, gzipped = predictions_format(path)
    index = {label: i for i, label in enumerate(labels)}
    rows = []
    for text, gold, predicted, row in zip(
        data.texts, data.labels, predictions, probabilities, strict=True
    ):
        chosen = predicted if isinstance(predicted, list) else [predicted]
        rows.append(
            {
                "text": text,
                "label": list(gold) if isinstance(gold, tuple) else gold,
                "predicted": predicted,
                "probability": [round(float(row[index[c]]), 6) for c in chosen]
                if isinstance(predicted, list)
                else round(float(row[index[predicted]]), 6),
                "correct": (set(gold) if isinstance(gold, tuple) else {gold}) == set(chosen),
            }
        )
    if extension == ".jsonl":
        content = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    else:
        buffer = io.StringIO()
        delimiter = "," if extension == ".csv" else "\t"
        writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
        writer.writerow(list(rows[0]) if rows else ["text", "label", "predicted", "probability"])
        for row in rows:
            writer.writerow(
                [
                    "|".join(v) if isinstance(v, list) and k != "probability" else v
                    for k, v in row.items()
                ]
            )
        content = buffer.getvalue()
    data_bytes = content.encode("utf-8")
    fsio.write_bytes(path, gzip.compress(data_bytes, mtime=0) if gzipped else data_bytes)


def check_plotting(path: str | os.PathLike[str]) -> None:
    """A DataError naming ``path`` unless matplotlib is installed: what :func:`plot_confusion`
    draws with, checked before a model loads and a test set is scored."""
    if importlib.util.find_spec("matplotlib") is None:
        raise DataError(f"{path}: plotting needs matplotlib (pip install matplotlib)")


def check_plottable(path: str | os.PathLike[str], multi_label: bool) -> None:
    """A DataError naming ``path`` for a multi-label model: its report has no confusion matrix
    (an example's labels are a set), known once the model loads, before the test set is scored."""
    if multi_label:
        raise DataError(f"{path}: a multi-label model has no confusion matrix to plot")


def plot_confusion(report: dict[str, Any], path: str | os.PathLike[str], title: str) -> None:
    """The confusion matrix as a PNG heat map (rows gold, columns predicted), written atomically."""
    check_plottable(path, "confusion" not in report)
    check_plotting(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, matrix = report["confusion"]["labels"], np.asarray(report["confusion"]["matrix"])
    side = min(4 + 0.18 * len(labels), 24)
    figure, axes = plt.subplots(figsize=(side, side))
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    axes.set_yticks(range(len(labels)), labels, fontsize=7)
    axes.set_xlabel("predicted")
    axes.set_ylabel("gold")
    axes.set_title(title)
    if len(labels) <= 20:
        for (i, j), count in np.ndenumerate(matrix):
            if count:
                color = "white" if count > matrix.max() / 2 else "black"
                axes.text(j, i, str(count), ha="center", va="center", color=color, fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    fsio.write_bytes(path, buffer.getvalue())


def render_text(report: dict[str, Any], source: str, full_matrix: bool) -> str:
    """The report as plain text: the summary line, a per-label table, the worst-confused pairs,
    and with ``full_matrix`` the confusion matrix (gold rows, predicted columns)."""
    out = [f"{source}: accuracy {report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f}"]
    if "micro_f1" in report:
        out[0] += f", micro-F1 {report['micro_f1']:.4f} (accuracy: exact label sets)"
    out[0] += f", n {report['n']}"
    width = max([5, *(len(label) for label in report["per_label"])])
    out.append("")
    out.append(f"{'label':<{width}}  precision  recall      f1  support")
    for label, s in report["per_label"].items():
        out.append(
            f"{label:<{width}}  {s['precision']:9.4f}  {s['recall']:6.4f}  {s['f1']:6.4f}  "
            f"{s['support']:7d}"
        )
    if report.get("confused_pairs"):
        out.append("")
        out.append("most confused (gold -> predicted: count)")
        for pair in report["confused_pairs"]:
            out.append(f"  {pair['gold']} -> {pair['predicted']}: {pair['count']}")
    if full_matrix and "confusion" in report:
        labels, matrix = report["confusion"]["labels"], report["confusion"]["matrix"]
        cell = max(3, *(len(str(c)) for row in matrix for c in row))
        out.append("")
        out.append("confusion matrix (rows gold, columns predicted in the same order)")
        for label, row in zip(labels, matrix, strict=True):
            out.append(f"{label:<{width}}  " + " ".join(f"{c:>{cell}}" for c in row))
    return "\n".join(out)
