"""Run ``predict_worker`` on one trained system and score what it predicted."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness.common import Trained, model_bytes
from textproj.data import Dataset
from textproj.metrics import classification_scores

HARNESS_ROOT = Path(__file__).resolve().parent.parent  # benchmarks/, so `-m harness...` resolves
ONE_THREAD = {
    name: "1"
    for name in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "BLIS_NUM_THREADS",
        "NUMBA_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
    )
}


def worker_env() -> dict[str, str]:
    """This process's environment with every thread pool pinned to one thread."""
    env = {**os.environ, **ONE_THREAD}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HARNESS_ROOT), env.get("PYTHONPATH")]))
    return env


def measure(trained: Trained, test: Dataset, repeats: int) -> dict[str, Any]:
    """Accuracy, macro-F1, bytes, throughput and predict memory of ``trained`` on ``test``.

    Throughput is the number of test texts over the median CPU time of ``repeats`` timed
    passes (wall-time throughput is kept too), in a fresh process on one thread; memory is how
    much one pass over the test texts raised that process's peak resident set (see
    ``predict_worker``).
    """
    with tempfile.TemporaryDirectory(prefix="textproj-bench-") as tmp:
        texts_path, out_path = Path(tmp) / "texts.json", Path(tmp) / "out.json"
        texts_path.write_text(json.dumps(list(test.texts)), "utf-8")
        command = [
            sys.executable,
            "-m",
            "harness.predict_worker",
            trained.kind,
            str(trained.model_path),
            str(texts_path),
            str(out_path),
            str(repeats),
        ]
        done = subprocess.run(command, env=worker_env(), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{trained.system}: predict worker failed:\n{done.stderr[-3000:]}")
        result = json.loads(out_path.read_text("utf-8"))
    scores = classification_scores(list(test.labels), result["predictions"])
    cpu, wall = statistics.median(result["cpu_seconds"]), statistics.median(result["seconds"])
    return {
        "system": trained.system,
        "family": trained.family,
        "accuracy": scores["accuracy"],
        "macro_f1": scores["macro_f1"],
        "n_test": scores["n"],
        "model_bytes": model_bytes(trained.model_path),
        "train_seconds": trained.train_seconds,
        "tune_seconds": trained.tune_seconds,
        "texts_per_second": len(test) / cpu if cpu > 0 else float("inf"),
        "wall_texts_per_second": len(test) / wall if wall > 0 else float("inf"),
        "predict_peak_delta_kib": result["predict_peak_delta_kib"],
        "peak_rss_kib": result["peak_rss_kib"],
        "memory_method": result["memory_method"],
        "params": trained.params,
        "notes": trained.notes,
    }
