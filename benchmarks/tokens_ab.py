"""A/B of per-token projection: this checkout's ``project_tokens`` kernel against an older
commit's, and the whole ``predict_proba`` of a token model with each.

Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/tokens_ab.py --baseline 071e7ac~1 \
        [--model app/models/banking77] [--repeats 7]

The baseline's ``textproj/_kernels/projection.py`` is read with ``git show`` and imported beside
the current one (it must work with this checkout's other kernels). On each bundled corpus's test
split both run on one thread, alternating, after a warm-up; it prints whether the bits are
identical and the ratio baseline / current of the median CPU time (``time.process_time``) of
the projection alone and of ``predict_proba``. Ratios, not absolute speeds: run it on a quiet
machine and compare runs of the same script only.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np

import textproj
import textproj.projector as projector_module
from textproj._kernels import projection as current
from textproj.corpora import CORPORA, load_corpus

ROOT = Path(__file__).resolve().parent.parent
MODULE = "baseline_projection"


def baseline_kernels(revision: str, folder: Path) -> ModuleType:
    """``textproj/_kernels/projection.py`` as of ``revision``, imported as ``MODULE``."""
    source = subprocess.run(
        ["git", "show", f"{revision}:textproj/_kernels/projection.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = folder / f"{MODULE}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(MODULE, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE] = module  # numba's cache looks the module up by name
    spec.loader.exec_module(module)
    return module


def cpu_seconds(work: Callable[[], object]) -> float:
    start = time.process_time()
    work()
    return time.process_time() - start


def compare(
    clf: textproj.Classifier, kernels: dict[str, ModuleType], corpus: str, repeats: int
) -> tuple[int, int, bool, float, float]:
    """One corpus's test split: (texts, tokens, identical bits, projection ratio, predict ratio)."""
    texts = load_corpus(corpus, "test").texts
    bits, times = {}, {name: {"projection": [], "predict": []} for name in kernels}
    for module in kernels.values():  # warm-up (and compilation)
        projector_module._kp = module
        clf.predict_proba(texts[:5])
    for _ in range(repeats):
        for name, module in kernels.items():
            projector_module._kp = module
            times[name]["projection"].append(
                cpu_seconds(lambda: clf.projector.transform_tokens_words(texts))
            )
            times[name]["predict"].append(cpu_seconds(lambda: clf.predict_proba(texts)))
            bits[name] = clf.projector.transform_tokens_words(texts)[0]
    projector_module._kp = current
    medians = {
        name: {part: statistics.median(t) for part, t in parts.items()}
        for name, parts in times.items()
    }
    ratios = [
        medians["baseline"][part] / medians["current"][part] for part in ("projection", "predict")
    ]
    same = np.array_equal(bits["baseline"], bits["current"])
    return len(texts), len(bits["current"]), same, *ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True, help="git revision to compare against")
    parser.add_argument("--model", default=str(ROOT / "app" / "models" / "banking77"))
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    clf = textproj.load(args.model, n_jobs=1)
    if clf.design != "token":
        parser.error(f"{args.model} is a {clf.design} model; per-token projection needs 'token'")
    with tempfile.TemporaryDirectory() as folder:
        kernels = {"baseline": baseline_kernels(args.baseline, Path(folder)), "current": current}
        for corpus in CORPORA:
            n_texts, n_tokens, same, projection, predict = compare(
                clf, kernels, corpus, args.repeats
            )
            print(
                f"{corpus}: {n_texts} texts, {n_tokens} tokens, identical bits {same}; "
                f"baseline/current CPU time: projection {projection:.2f}x, "
                f"predict_proba {predict:.2f}x"
            )


if __name__ == "__main__":
    main()
