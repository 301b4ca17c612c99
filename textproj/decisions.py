"""From logits to labels, in numpy: arg-max, or per-label thresholds for multi-label networks,
tuned on dev. Shared by training and by the trainer's inference."""

from __future__ import annotations

import numpy as np

DEFAULT_THRESHOLD = 0.5  # a multi-label network's per-label threshold before tuning
THRESHOLD_GRID = np.linspace(0.05, 0.95, 19)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Each row's label probabilities of a single-label network (shifted by its maximum)."""
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Per-label probabilities of a multi-label network."""
    return 1.0 / (1.0 + np.exp(-logits))


def decide(logits: np.ndarray, thresholds: np.ndarray | None) -> np.ndarray:
    """Label indices (n,) by arg-max, or with ``thresholds`` a multi-hot (n, n_labels) bool."""
    if thresholds is None:
        return logits.argmax(1) if len(logits) else np.zeros(0, dtype=np.int64)
    return sigmoid(logits) >= thresholds


def label_names(
    proba: np.ndarray, labels: list[str], thresholds: np.ndarray | None
) -> list[str] | list[list[str]]:
    """The predicted label per row of probabilities (arg-max), or with ``thresholds`` every
    label at or above its threshold: what each model's ``predict`` returns."""
    if thresholds is None:
        return [labels[j] for j in proba.argmax(axis=1)]
    return [[labels[j] for j in np.flatnonzero(row)] for row in proba >= thresholds]


def tune_thresholds(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-label threshold maximising that label's F1 on a split (the default where it has no
    positives)."""
    proba = sigmoid(logits)
    thresholds = np.full(targets.shape[1], DEFAULT_THRESHOLD, dtype=np.float32)
    for j in np.flatnonzero(targets.sum(0) > 0):
        gold = targets[:, j] > 0
        f1 = [
            2 * (gold & (proba[:, j] >= t)).sum() / (gold.sum() + (proba[:, j] >= t).sum())
            for t in THRESHOLD_GRID
        ]
        thresholds[j] = THRESHOLD_GRID[int(np.argmax(f1))]
    return thresholds


def dev_score(decided: np.ndarray, targets: np.ndarray) -> float:
    """The early-stopping score: accuracy, or micro-F1 for multi-hot targets."""
    if len(targets) == 0:
        return 0.0
    if targets.ndim == 1:
        return float((decided == targets).mean())
    gold = targets > 0
    hits = (gold & decided).sum()
    return float(2 * hits / max(1, gold.sum() + decided.sum()))
