"""Scores of textproj.metrics: the same in every process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCORES = """
import json, random
from textproj.metrics import classification_scores, multilabel_scores
rng = random.Random(0)
labels = [f"intent_{i}" for i in range(60)]
gold = [rng.choice(labels) for _ in range(3000)]
predicted = [g if rng.random() < 0.8 else rng.choice(labels) for g in gold]
sets = [[p, g] if rng.random() < 0.1 else [p] for p, g in zip(predicted, gold)]
multi = multilabel_scores([[g] for g in gold], sets)
print(json.dumps([classification_scores(gold, predicted)["macro_f1"], multi["macro_f1"]]))
"""


def test_macro_f1_is_the_same_bits_whatever_the_string_hash_seed() -> None:
    """Labels are kept in sets, whose order follows str hashes (salted per process): a plain
    float sum over them moved macro-F1's last bit between two runs of one model."""
    seen = set()
    for seed in range(6):
        env = {**os.environ, "PYTHONHASHSEED": str(seed)}
        out = subprocess.run(
            [sys.executable, "-c", SCORES], env=env, capture_output=True, text=True, check=True
        )
        seen.add(tuple(json.loads(out.stdout)))
    assert len(seen) == 1
