"""Measure one trained model in a fresh process: predictions, time per pass, peak memory.

Run by ``harness.measure`` as ``python -m harness.predict_worker KIND MODEL TEXTS OUT REPEATS``
with every thread pool pinned to one thread. It loads the model, warms it up on a few texts
(numba and BLAS set-up), then predicts every text once and records how far that pass raised
the resident set above where it started (:func:`predict_peak_kib`; resident memory counts
numpy, numba, torch and C++ allocations alike) and the process's peak RSS overall, then
times ``REPEATS`` more passes in wall time and in CPU time (``time.process_time``: the CPU
seconds of all the process's threads, so a pass is not charged for time the shared machine
gave to other processes).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.common import read_labels

Predict = Callable[[Sequence[str]], list[str]]
WARM_UP_TEXTS = 32


def _textproj(path: Path) -> Predict:
    import textproj

    return textproj.load(path, n_jobs=1).predict


def _textproj_trainer(path: Path) -> Predict:
    """The trainer network saved beside model.tpn, run by torch on one thread."""
    import torch

    from textproj.trainer_model import load_trainer

    torch.set_num_threads(1)
    return load_trainer(path).predict


def _fasttext(path: Path) -> Predict:
    import fasttext

    model = fasttext.load_model(str(path))
    labels = read_labels(path.parent)
    prefix = len("__label__")

    def predict(texts: Sequence[str]) -> list[str]:
        found, _ = model.predict([t.replace("\n", " ") for t in texts], k=1)
        return [labels[int(f[0][prefix:])] if f else labels[0] for f in found]

    return predict


def _sklearn(path: Path) -> Predict:
    import pickle

    with path.open("rb") as f:
        pipeline = pickle.load(f)  # written by harness.systems_sklearn in this same run

    def predict(texts: Sequence[str]) -> list[str]:
        return [str(label) for label in pipeline.predict(list(texts))]

    return predict


def _spacy(path: Path) -> Predict:
    import spacy

    nlp = spacy.load(path)

    def predict(texts: Sequence[str]) -> list[str]:
        return [max(doc.cats, key=doc.cats.get) for doc in nlp.pipe(texts, batch_size=256)]

    return predict


def _textproj_ensemble(path: Path) -> Predict:
    """The trainer and model.tpn of one run, their probabilities averaged, on one thread."""
    import torch

    from textproj.ensemble import load_ensemble

    torch.set_num_threads(1)
    return load_ensemble(path, n_jobs=1).predict


LOADERS: dict[str, Callable[[Path], Predict]] = {
    "textproj": _textproj,
    "textproj-trainer": _textproj_trainer,
    "textproj-ensemble": _textproj_ensemble,
    "fasttext": _fasttext,
    "sklearn": _sklearn,
    "spacy": _spacy,
}


def _status_kib(field: str) -> int | None:
    """A ``/proc/self/status`` memory field (VmRSS, VmHWM) in KiB, or None off Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _process_peak_kib() -> int:
    """This process's peak RSS so far: VmHWM (``ru_maxrss`` outlives exec on Linux, so in a
    child of a large process it reports the parent's peak; VmHWM belongs to this program)."""
    peak = _status_kib("VmHWM")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss if peak is None else peak


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return True


def predict_peak_kib(predict: Predict, texts: list[str]) -> tuple[list[str], int, str]:
    """Predictions, and how far one pass raised the resident set above where it started.

    On Linux the peak mark is reset first, so this is the pass's own peak (VmHWM after minus
    VmRSS before); elsewhere it falls back to the rise of ``ru_maxrss``, which misses a pass
    that stays below an earlier peak.
    """
    if _reset_peak() and _status_kib("VmRSS") is not None:
        before = _status_kib("VmRSS")
        predictions = predict(texts)
        return predictions, _status_kib("VmHWM") - before, "VmHWM - VmRSS"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    predictions = predict(texts)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return predictions, after - before, "ru_maxrss rise"


def main(kind: str, model: str, texts_path: str, out_path: str, repeats: int) -> None:
    texts = json.loads(Path(texts_path).read_text("utf-8"))
    started = time.perf_counter()
    predict = LOADERS[kind](Path(model))
    predict(texts[:WARM_UP_TEXTS])
    load_seconds = time.perf_counter() - started
    peak_before = _process_peak_kib()
    predictions, predict_kib, method = predict_peak_kib(predict, texts)
    seconds, cpu_seconds = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        predict(texts)
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
    result = {
        "predictions": predictions,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "load_seconds": load_seconds,
        "peak_rss_kib": max(peak_before, _process_peak_kib()),
        "predict_peak_delta_kib": predict_kib,
        "memory_method": method,
    }
    Path(out_path).write_text(json.dumps(result), "utf-8")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
