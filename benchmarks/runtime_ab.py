"""A/B of the torch-free runtime: this checkout's ``textproj.runtime`` against an older commit's.

Usage::

    python benchmarks/runtime_ab.py MODEL --baseline 40c3b45~1 [--corpus banking77] [--repeats 9]

The baseline's ``textproj/runtime.py`` is read with ``git show`` and imported beside the current
one (it must work with this checkout's other modules). Both classify the same texts on one
thread (``n_jobs=1``; run with ``OPENBLAS_NUM_THREADS=1``), alternating, after a warm-up each;
it prints the largest probability difference, whether the labels agree, and texts/s of each
from the median CPU time of a pass (``time.process_time``), with their ratio.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np

from textproj import runtime
from textproj.corpora import load_corpus

ROOT = Path(__file__).resolve().parent.parent


def baseline_runtime(revision: str, folder: Path) -> ModuleType:
    """``textproj/runtime.py`` as of ``revision``, imported as module ``baseline_runtime``."""
    source = subprocess.run(
        ["git", "show", f"{revision}:textproj/runtime.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = folder / "baseline_runtime.py"
    path.write_text(source, "utf-8")
    spec = importlib.util.spec_from_file_location("baseline_runtime", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--baseline", required=True, help="git revision of the old runtime")
    parser.add_argument("--corpus", default="banking77")
    parser.add_argument("--split", default="test")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    texts = list(load_corpus(args.corpus, args.split).texts)
    with tempfile.TemporaryDirectory() as tmp:
        old = baseline_runtime(args.baseline, Path(tmp)).load(args.model, n_jobs=1)
        new = runtime.load(args.model, n_jobs=1)
        p_old, p_new = old.predict_proba(texts), new.predict_proba(texts)
        times: dict[str, list[float]] = {"baseline": [], "current": []}
        for _ in range(args.repeats):
            for name, clf in (("baseline", old), ("current", new)):
                start = time.process_time()
                clf.predict(texts)
                times[name].append(time.process_time() - start)
    speed = {name: len(texts) / statistics.median(t) for name, t in times.items()}
    print(f"{args.corpus} {args.split}: {len(texts):,} texts, model {args.model}")
    print(f"max |probability difference| {np.abs(p_old - p_new).max():.2e}")
    print(f"same labels: {(p_old.argmax(1) == p_new.argmax(1)).mean():.4f}")
    print(f"baseline ({args.baseline}) {speed['baseline']:,.0f} texts/s")
    print(f"current {speed['current']:,.0f} texts/s")
    print(f"ratio current / baseline {speed['current'] / speed['baseline']:.2f}")


if __name__ == "__main__":
    main()
