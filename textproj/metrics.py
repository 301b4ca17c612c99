"""Classification scores computed from label lists (no scikit-learn needed at run time)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence


def classification_scores(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, float | int]:
    """Accuracy and macro-F1 over the labels present in ``gold`` or ``predicted``.

    The F1s are summed exactly (``math.fsum``): a float sum in set order moved macro-F1's
    last bit from one process to the next (str hashes are salted per process).

    Returns ``{"accuracy", "macro_f1", "n"}``; an empty input scores 0 with ``n = 0``.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    n = len(gold)
    if n == 0:
        return {"accuracy": 0.0, "macro_f1": 0.0, "n": 0}
    pairs = list(zip(gold, predicted, strict=True))
    true_pos = Counter(g for g, p in pairs if g == p)
    n_gold, n_pred = Counter(gold), Counter(predicted)
    labels = n_gold.keys() | n_pred.keys()
    f1 = [2 * true_pos[label] / (n_gold[label] + n_pred[label]) for label in labels]
    return {"accuracy": true_pos.total() / n, "macro_f1": math.fsum(f1) / len(f1), "n": n}


def multilabel_scores(
    gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]
) -> dict[str, float | int]:
    """Subset accuracy, micro-F1 and macro-F1 (over labels in ``gold`` or ``predicted``).

    Returns ``{"accuracy", "micro_f1", "macro_f1", "n"}``; a label never gold nor predicted
    does not count in the macro average.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold label sets but {len(predicted)} predictions")
    n = len(gold)
    if n == 0:
        return {"accuracy": 0.0, "micro_f1": 0.0, "macro_f1": 0.0, "n": 0}
    true_pos: Counter[str] = Counter()
    n_gold: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    exact = 0
    for gold_set, pred_set in zip(map(set, gold), map(set, predicted), strict=True):
        true_pos.update(gold_set & pred_set)
        n_gold.update(gold_set)
        n_pred.update(pred_set)
        exact += gold_set == pred_set
    labels = n_gold.keys() | n_pred.keys()
    f1 = [2 * true_pos[label] / (n_gold[label] + n_pred[label]) for label in labels]
    total = n_gold.total() + n_pred.total()
    return {
        "accuracy": exact / n,
        "micro_f1": 2 * true_pos.total() / total if total else 0.0,
        "macro_f1": math.fsum(f1) / len(f1) if f1 else 0.0,
        "n": n,
    }


def per_label_scores(
    gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], labels: Sequence[str]
) -> dict[str, dict[str, float | int]]:
    """Precision, recall, F1 and support (gold count) of each of ``labels``.

    ``gold`` and ``predicted`` hold a label set per example (a one-label list for single-label
    data). A label never predicted has precision 0; one never gold has recall 0.
    """
    true_pos: Counter[str] = Counter()
    n_gold: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    for gold_set, pred_set in zip(map(set, gold), map(set, predicted), strict=True):
        true_pos.update(gold_set & pred_set)
        n_gold.update(gold_set)
        n_pred.update(pred_set)
    scores = {}
    for label in labels:
        precision = true_pos[label] / n_pred[label] if n_pred[label] else 0.0
        recall = true_pos[label] / n_gold[label] if n_gold[label] else 0.0
        total = n_gold[label] + n_pred[label]
        scores[label] = {
            "precision": precision,
            "recall": recall,
            "f1": 2 * true_pos[label] / total if total else 0.0,
            "support": n_gold[label],
        }
    return scores


def confusion_matrix(
    gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]
) -> list[list[int]]:
    """Counts ``matrix[i][j]`` of examples of gold ``labels[i]`` predicted as ``labels[j]``."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, predicted, strict=True):
        matrix[index[g]][index[p]] += 1
    return matrix


def confused_pairs(
    matrix: Sequence[Sequence[int]], labels: Sequence[str], n: int = 10
) -> list[dict[str, str | int]]:
    """The ``n`` largest off-diagonal cells: which gold label is most often taken for which."""
    cells = [
        (count, i, j)
        for i, row in enumerate(matrix)
        for j, count in enumerate(row)
        if i != j and count > 0
    ]
    cells.sort(key=lambda cell: (-cell[0], cell[1], cell[2]))
    return [{"gold": labels[i], "predicted": labels[j], "count": c} for c, i, j in cells[:n]]
