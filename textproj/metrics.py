"""Classification scores computed from label lists (no scikit-learn needed at run time)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence


def classification_scores(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, float | int]:
    """Accuracy and macro-F1 over the labels present in ``gold`` or ``predicted``.

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
    return {"accuracy": true_pos.total() / n, "macro_f1": sum(f1) / len(f1), "n": n}


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
        "macro_f1": sum(f1) / len(f1) if f1 else 0.0,
        "n": n,
    }
