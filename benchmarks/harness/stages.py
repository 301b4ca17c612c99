"""Where textproj's predict time goes: each stage of ``Classifier.predict`` timed on its own.

Run in a one-thread process (``python -m harness.stages MODEL TEXTS OUT REPEATS``, or through
:func:`run`). Every figure is the median CPU time (``time.process_time``) of ``REPEATS`` calls
after a warm-up call, divided by the number of texts. The stages call the classifier's own
pieces; the convolution stage re-runs the runtime's shifted-row matmuls (in the runtime's
chunks) on their own, and the pooling and the last row are what remains of the measured totals,
so they carry the other rows' timing noise.
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


def _convolutions(clf: Any, x: np.ndarray, offsets: np.ndarray) -> None:
    """The token model's window matmuls: rows shifted as ``_pool_rows`` does, then multiplied
    ``CHUNK_TOKEN_ROWS`` rows at a time as the runtime does."""
    from textproj.runtime import CHUNK_TOKEN_ROWS

    lengths = np.diff(offsets)
    lengths = lengths[lengths > 0]
    width = x.shape[1]
    longest = max(k for k, _, _ in clf._window_kernels)
    shifted = np.zeros((len(x), longest * width), dtype=np.float32)
    shifted[:, :width] = x
    left = np.repeat(np.cumsum(lengths), lengths) - np.arange(len(x))
    for i in range(1, longest):
        np.copyto(
            shifted[:-i, i * width : (i + 1) * width],
            x[i:],
            where=(left[:-i] > i)[:, None],
        )
    for lo in range(0, len(x), CHUNK_TOKEN_ROWS):
        for k, weight, bias in clf._window_kernels:
            scores = shifted[lo : lo + CHUNK_TOKEN_ROWS, : k * width] @ weight
            scores += bias


def measure_stages(model: Path, texts: list[str], repeats: int) -> dict[str, Any]:
    """Per-text CPU microseconds of each stage of a token model's predict."""
    import textproj
    from textproj.features import encode_texts

    clf = textproj.load(model, n_jobs=1)
    if clf.design != "token":
        raise ValueError(f"{model}: the stage breakdown covers the token design only")
    projector = clf.projector
    words, offsets = projector.transform_tokens_words(texts)
    x = clf._first_layer(words, 0, len(words), relu=True)
    seconds = {
        "predict": _cpu_seconds(lambda: clf.predict(texts), repeats),
        "encode": _cpu_seconds(lambda: encode_texts(texts, projector.features), repeats),
        "project": _cpu_seconds(lambda: projector.transform_tokens_words(texts), repeats),
        "bottleneck": _cpu_seconds(lambda: clf._first_layer(words, 0, len(words), True), repeats),
        "convolutions": _cpu_seconds(lambda: _convolutions(clf, x, offsets), repeats),
        "network": _cpu_seconds(lambda: clf._token_logits(words, offsets), repeats),
    }
    us = {name: 1e6 * value / len(texts) for name, value in seconds.items()}
    rows = [
        ("normalise + encode (NFKC, casefold, UTF-8)", us["encode"]),
        ("featurise + hash + project to per-token bits", us["project"] - us["encode"]),
        ("bottleneck from packed bits (nibble tables)", us["bottleneck"]),
        ("convolutions (one matmul per window size)", us["convolutions"]),
        (
            "attention pooling + output layer",
            us["network"] - us["bottleneck"] - us["convolutions"],
        ),
        ("rest: softmax, labels, batching", us["predict"] - us["project"] - us["network"]),
    ]
    tokens = len(words) / max(len(texts), 1)
    network = clf.header["network"]
    macs = network["bottleneck"] * network["filters"] * 2 * sum(network["windows"])
    return {
        "rows": [{"stage": name, "us_per_text": max(value, 0.0)} for name, value in rows]
        + [{"stage": "end to end (predict)", "us_per_text": us["predict"], "part_of_total": False}],
        "notes": [
            f"Model: the on-device model trained above ({network['bottleneck']}-wide bottleneck, "
            f"{network['filters']} filters per window, windows {network['windows']}, "
            f"{projector.n_bits} bits per token); {len(texts):,} test texts, "
            f"{tokens:.1f} tokens per text. Median CPU time of {repeats} calls per stage on one "
            "thread (`python -m harness.stages`, run by `compare.py`); the convolutions cost "
            f"{macs:,} multiply-adds per token, the bottleneck {projector.n_bits // 4} table-row "
            "additions per token.",
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
