"""Where textproj's predict time goes: each stage of ``Classifier.predict`` timed on its own.

Run in a one-thread process (``python -m harness.stages MODEL TEXTS OUT REPEATS``, or through
:func:`run`). Every figure is the median CPU time (``time.process_time``) of ``REPEATS`` calls
after a warm-up call, divided by the number of texts. The stages call the classifier's own
pieces (the distinct-token stages re-run the first steps of ``_token_logits`` on their own);
the later stages are what remains of the measured totals, so they carry the others' noise.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from textproj.data import Dataset


def _cpu_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def _distinct_taps(clf: Any, words: np.ndarray) -> np.ndarray:
    """What the token model computes once per distinct token: bottleneck, then every tap."""
    from textproj.runtime import unique_rows

    first, _ = unique_rows(words)
    return clf._first_layer(words[first], 0, len(first), relu=True) @ clf._taps


def measure_stages(model: Path, texts: list[str], repeats: int) -> dict[str, Any]:
    """Per-text CPU microseconds of each stage of a token model's predict."""
    import textproj
    from textproj.features import encode_texts
    from textproj.runtime import unique_rows

    clf = textproj.load(model, n_jobs=1)
    if clf.design != "token":
        raise ValueError(f"{model}: the stage breakdown covers the token design only")
    projector = clf.projector
    words, offsets = projector.transform_tokens_words(texts)
    seconds = {
        "predict": _cpu_seconds(lambda: clf.predict(texts), repeats),
        "encode": _cpu_seconds(lambda: encode_texts(texts, projector.features), repeats),
        "project": _cpu_seconds(lambda: projector.transform_tokens_words(texts), repeats),
        "distinct": _cpu_seconds(lambda: unique_rows(words), repeats),
        "taps": _cpu_seconds(lambda: _distinct_taps(clf, words), repeats),
        "network": _cpu_seconds(lambda: clf._token_logits(words, offsets), repeats),
    }
    us = {name: 1e6 * value / len(texts) for name, value in seconds.items()}
    rows = [
        ("normalise + encode (NFKC, casefold, UTF-8)", us["encode"]),
        ("featurise + hash + project to per-token bits", us["project"] - us["encode"]),
        ("find the distinct tokens (rows of bits)", us["distinct"]),
        ("bottleneck + convolution taps of distinct tokens", us["taps"] - us["distinct"]),
        ("window sums, softmax, attention pooling, output", us["network"] - us["taps"]),
        ("rest: softmax, labels, batching", us["predict"] - us["project"] - us["network"]),
    ]
    tokens = len(words) / max(len(texts), 1)
    distinct = len(unique_rows(words)[0]) if len(words) else 0
    network = clf.header["network"]
    macs = network["bottleneck"] * network["filters"] * 2 * sum(network["windows"])
    return {
        "rows": [{"stage": name, "us_per_text": max(value, 0.0)} for name, value in rows]
        + [{"stage": "end to end (predict)", "us_per_text": us["predict"], "part_of_total": False}],
        "notes": [
            f"Model: the on-device model trained above ({network['bottleneck']}-wide bottleneck, "
            f"{network['filters']} filters per window, windows {network['windows']}, "
            f"{projector.n_bits} bits per token); {len(texts):,} test texts, "
            f"{tokens:.1f} tokens per text, {distinct:,} distinct tokens among "
            f"{len(words):,}. Median CPU time of {repeats} calls per stage on one "
            "thread (`python -m harness.stages`, run by `compare.py`). Per distinct token the "
            f"bottleneck costs {projector.n_bits // 4} table-row additions and the convolution "
            f"taps {macs:,} multiply-adds; per token position the window sums cost "
            f"{2 * network['filters'] * sum(network['windows']):,} additions.",
        ],
        "us_per_text": us,
    }


def run(model: Path, test: Dataset, repeats: int) -> dict[str, Any]:
    """:func:`measure_stages` in a fresh one-thread process."""
    from harness.measure import worker_env

    with tempfile.TemporaryDirectory(prefix="textproj-stages-") as tmp:
        texts_path, out_path = Path(tmp) / "texts.json", Path(tmp) / "out.json"
        texts_path.write_text(json.dumps(list(test.texts)), "utf-8")
        command = [sys.executable, "-m", "harness.stages", str(model), str(texts_path)]
        command += [str(out_path), str(repeats)]
        done = subprocess.run(command, env=worker_env(), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"stage profile failed:\n{done.stderr[-3000:]}")
        return json.loads(out_path.read_text("utf-8"))


def main(model: str, texts_path: str, out_path: str, repeats: int) -> None:
    texts = json.loads(Path(texts_path).read_text("utf-8"))
    result = measure_stages(Path(model), texts, repeats)
    Path(out_path).write_text(json.dumps(result, indent=2), "utf-8")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
